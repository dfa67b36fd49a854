"""lora_edu.rank: properties of rank, the SVD and the best rank-r approximation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lora_edu import rank


def _rank_r(m: int, n: int, r: int, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, r, generator=g, dtype=dtype) @ torch.randn(r, n, generator=g, dtype=dtype)


SHAPES = [(3, 3, 1), (20, 7, 3), (7, 20, 5), (64, 48, 8), (50, 50, 50)]


@pytest.mark.parametrize("m, n, r", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rank_r_matrix_has_rank_r_and_factors_exactly(m, n, r, dtype):
    W = _rank_r(m, n, r, dtype)
    assert rank.numerical_rank(W) == r == torch.linalg.matrix_rank(W)
    B, A = rank.factorize(W)
    assert B.shape == (m, r) and A.shape == (r, n)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(B @ A, W, rtol=tol, atol=tol * W.abs().max().item())
    assert rank.factored_size(m, n, r) == B.numel() + A.numel() == r * (m + n)


def test_three_by_three_outer_product_is_rank_one():
    u, v = torch.tensor([2.0, -1.0, 3.0]), torch.tensor([1.0, 2.0, 3.0])
    W = torch.outer(u, v)
    assert rank.numerical_rank(W) == 1
    assert rank.factored_size(3, 3, 1) == 6 < W.numel() == 9
    assert rank.effective_rank(W) == pytest.approx(1.0, abs=1e-5)


def test_factorize_refuses_a_rank_it_cannot_reach():
    W = _rank_r(10, 8, 4)
    with pytest.raises(ValueError, match="truncated_svd"):
        rank.factorize(W, r=2)
    B, A = rank.factorize(W, r=6)  # more room than needed is fine
    torch.testing.assert_close(B @ A, W)
    with pytest.raises(ValueError, match="rank 0"):
        rank.factorize(torch.zeros(3, 3))


def test_tolerance_decides_the_numerical_rank():
    W = _rank_r(30, 30, 5) + 1e-9 * torch.randn(30, 30, dtype=torch.float64)
    assert rank.numerical_rank(W) == 30  # float64 resolves the tiny noise
    assert rank.numerical_rank(W, tol=1e-6) == 5
    s = rank.singular_values(W)
    assert rank.default_tolerance(W) == pytest.approx(float(s[0]) * 30 * torch.finfo(torch.float64).eps)
    assert rank.numerical_rank(W.float()) == 5  # float32 cannot see noise 1e-9 below the signal


@pytest.mark.parametrize("m, n", [(40, 30), (30, 40), (25, 25)])
@pytest.mark.parametrize("r", [1, 5, 24])
def test_truncated_svd_error_is_the_norm_of_the_dropped_singular_values(m, n, r):
    W = torch.randn(m, n, dtype=torch.float64)
    s = rank.singular_values(W)
    B, A = rank.truncated_svd(W, r)
    assert B.shape == (m, r) and A.shape == (r, n)
    assert torch.linalg.matrix_rank(B @ A) == r
    assert rank.approximation_error(W, r) == pytest.approx(float(s[r:].norm()), rel=1e-9)
    assert rank.approximation_error(W, r) == pytest.approx(rank.tail_norm(W, r), rel=1e-9)
    assert rank.approximation_error(W, r, norm="spectral") == pytest.approx(float(s[r]), rel=1e-9)
    assert rank.tail_norm(s, r, norm="spectral") == pytest.approx(float(s[r]))
    assert rank.approximation_error(W, r, relative=True) == pytest.approx(float(s[r:].norm() / s.norm()))


def test_truncated_svd_factors_are_balanced_and_nested():
    W = torch.randn(30, 20, dtype=torch.float64)
    B, A = rank.truncated_svd(W, 6)
    torch.testing.assert_close(B.norm(dim=0), A.norm(dim=1))  # each |b_i| = |a_i| = sqrt(s_i)
    B3, A3 = rank.truncated_svd(W, 3)
    torch.testing.assert_close(B3 @ A3, B[:, :3] @ A[:3])


def test_no_random_rank_r_matrix_beats_the_truncated_svd():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(40, 30, generator=g, dtype=torch.float64)
    r = 4
    best = rank.approximation_error(W, r)
    for _ in range(50):
        A = torch.randn(r, 30, generator=g, dtype=torch.float64)
        B = torch.linalg.lstsq(A.T, W.T).solution.T  # the best B for this A
        assert torch.linalg.matrix_norm(W - B @ A) >= best - 1e-9


@pytest.mark.parametrize("m, n", [(30, 20), (16, 64)])
def test_energy_is_monotone_and_reaches_one(m, n):
    W = torch.randn(m, n, dtype=torch.float64)
    k = min(m, n)
    kept = [rank.energy_kept(W, r) for r in range(1, k + 1)]
    assert all(a <= b + 1e-12 for a, b in zip(kept, kept[1:]))
    assert kept[-1] == pytest.approx(1.0)
    torch.testing.assert_close(rank.energy_curve(W), torch.tensor(kept, dtype=torch.float64))
    for r in (1, k // 2):  # energy lost = relative squared error
        assert 1 - kept[r - 1] == pytest.approx(rank.approximation_error(W, r, relative=True) ** 2)
    assert rank.rank_for_energy(W, 1.0) == k
    r90 = rank.rank_for_energy(W, 0.9)
    assert kept[r90 - 1] >= 0.9 and (r90 == 1 or kept[r90 - 2] < 0.9)


def test_spectrum_inputs_agree_with_matrix_inputs():
    W = torch.randn(12, 9, dtype=torch.float64)
    s = rank.singular_values(W)
    assert rank.energy_kept(s, 3) == pytest.approx(rank.energy_kept(W, 3))
    assert rank.energy_kept(s.flip(0).numpy(), 3) == pytest.approx(rank.energy_kept(W, 3))  # order-free
    assert rank.effective_rank(list(s.tolist())) == pytest.approx(rank.effective_rank(W))


def test_effective_rank_counts_equal_directions_and_ignores_scale():
    assert rank.effective_rank(torch.ones(7)) == pytest.approx(7.0)
    assert rank.effective_rank(torch.tensor([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0)
    W = torch.randn(20, 15, dtype=torch.float64)
    assert rank.effective_rank(W) == pytest.approx(rank.effective_rank(1000 * W))
    assert 1.0 <= rank.effective_rank(W) <= 15
    decaying = torch.tensor([2.0**-i for i in range(15)])
    assert rank.effective_rank(decaying) < rank.effective_rank(torch.ones(15))


def test_half_precision_inputs_work():
    W = _rank_r(16, 12, 3, torch.float32).to(torch.bfloat16)
    assert rank.numerical_rank(W) == 3
    assert rank.singular_values(W).dtype == torch.float32
    B, A = rank.truncated_svd(W, 3)
    assert B.shape == (16, 3)


def test_storage_and_break_even():
    assert rank.factored_size(576, 576, 8) == 8 * 1152
    assert rank.break_even_rank(576, 576) == 288
    m, n = 4096, 4096
    r = math.floor(rank.break_even_rank(m, n))
    assert rank.factored_size(m, n, r) <= m * n < rank.factored_size(m, n, r + 1)


@pytest.mark.parametrize("bad, error, words", [
    (torch.ones(3), ValueError, "2-D"),
    (torch.ones(2, 3, 4), ValueError, "2-D"),
    (torch.ones(3, 3, dtype=torch.int64), TypeError, "float"),
    (torch.ones(3, 3, dtype=torch.complex64), TypeError, "float"),
    (torch.empty(0, 3), ValueError, "empty"),
    (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), ValueError, "NaN"),
    ([[1.0, 2.0], [3.0, 4.0]], TypeError, "torch.Tensor"),
])
def test_bad_matrices_raise_clear_errors(bad, error, words):
    for call in (rank.numerical_rank, rank.singular_values, lambda W: rank.truncated_svd(W, 1), rank.factorize):
        with pytest.raises(error, match=words):
            call(bad)


@pytest.mark.parametrize("r, error", [(0, ValueError), (-1, ValueError), (4, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_ranks_raise_clear_errors(r, error):
    W = torch.randn(3, 5)
    with pytest.raises(error, match="r"):
        rank.truncated_svd(W, r)
    with pytest.raises(error):
        rank.approximation_error(W, r)
    with pytest.raises(error):
        rank.energy_kept(W, r)


def test_other_bad_inputs():
    W = torch.randn(4, 4)
    with pytest.raises(ValueError, match="fro"):
        rank.approximation_error(W, 1, norm="nuclear")
    with pytest.raises(ValueError, match="0.9"):
        rank.rank_for_energy(W, 90)
    with pytest.raises(ValueError, match=">= 0"):
        rank.energy_kept(torch.tensor([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="zero"):
        rank.effective_rank(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="m must"):
        rank.factored_size(0, 4, 1)
    assert rank.numerical_rank(np.eye(3)) == 3  # numpy arrays are accepted


# ---- spectra of a model ----------------------------------------------------------------------------


def test_collect_spectra_on_a_tiny_model(tiny):
    spectra = rank.collect_spectra(tiny)
    assert len(spectra) == 7 * tiny.config.num_hidden_layers
    for name, spec in spectra.items():
        module = tiny.get_submodule(name)
        assert spec.shape == tuple(module.weight.shape) and spec.kind == name.rsplit(".", 1)[-1]
        torch.testing.assert_close(spec.singular_values, torch.linalg.svdvals(module.weight.detach()))
        # the random twin: same number of singular values, same total energy (Frobenius norm)
        assert spec.random_singular_values.shape == spec.singular_values.shape
        torch.testing.assert_close(spec.random_singular_values.norm(), spec.singular_values.norm())
        assert spec.energy_kept(10_000) == pytest.approx(1.0)
        assert 1 <= spec.effective_rank() <= min(spec.shape)
        assert spec.full_rank == (spec.numerical_rank() == min(spec.shape))


def test_collect_spectra_picks_blocks_names_and_is_seeded(tiny):
    only = rank.collect_spectra(tiny, names=("q_proj",), blocks=[1])
    assert list(only) == ["model.layers.1.self_attn.q_proj"]
    first = rank.collect_spectra(tiny, blocks=1)
    assert {s.block for s in first.values()} == {0}
    a, b = rank.collect_spectra(tiny, seed=3), rank.collect_spectra(tiny, seed=3)
    for name in a:
        torch.testing.assert_close(a[name].random_singular_values, b[name].random_singular_values)
    with pytest.raises(ValueError, match="q_proj"):
        rank.collect_spectra(tiny, names=("query",))
    with pytest.raises(ValueError, match="blocks"):
        rank.collect_spectra(tiny, blocks=[7])


def test_pick_blocks_spreads_through_depth():
    assert rank.pick_blocks(30, 2) == [0, 29]
    assert rank.pick_blocks(30, 0) == list(range(30))
    assert rank.pick_blocks(30, 6) == [0, 6, 12, 17, 23, 29]
    assert rank.pick_blocks(4, 9) == [0, 1, 2, 3]


def test_trained_structure_shows_in_the_spectrum():
    """A low-rank signal plus noise keeps more energy at small r than a Gaussian of the same norm."""
    model = torch.nn.Sequential()
    model.add_module("q_proj", torch.nn.Linear(64, 64, bias=False))
    with torch.no_grad():
        model.q_proj.weight.copy_(_rank_r(64, 64, 4, torch.float32) + 0.1 * torch.randn(64, 64))
    spec = rank.collect_spectra(model, names=("q_proj",))["q_proj"]
    assert spec.block is None and spec.full_rank
    assert spec.energy_kept(4) > 0.9 > spec.energy_kept(4, random=True)
    assert spec.effective_rank() < spec.effective_rank(random=True)
    rows = rank.summarize_spectra({"q_proj": spec}, ranks=(4,))
    assert rows[0]["layer"] == "q_proj" and rows[0]["energy r=4"] == pytest.approx(spec.energy_kept(4))
    table = rank.markdown_table(rows)
    assert table.startswith("| layer |") and table.count("\n") == 2


def test_real_model_spectra_match_the_lesson(real_model):
    """Claim 3 on SmolLM2 (two blocks): full rank, yet more energy in the top directions than random."""
    model, _ = real_model
    spectra = rank.collect_spectra(model, blocks=2)
    assert len(spectra) == 14
    assert all(s.numerical_rank() >= 0.99 * min(s.shape) for s in spectra.values())
    assert sum(s.energy_kept(8) > s.energy_kept(8, random=True) for s in spectra.values()) >= 10
