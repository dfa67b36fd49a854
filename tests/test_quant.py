"""Tests of lora_edu.quant: NF4 against bitsandbytes, round-trip bounds, packing, double quantisation
and the errors bad input gets. (The frozen 4-bit layer is tested in test_qlinear.py.)"""

from __future__ import annotations

import logging
import math

import pytest
import torch

from lora_edu import quant as Q

SHAPES = [(3, 70), (128, 256), (7,), (33, 17), (5, 5, 9), (1000,), (64, 576)]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(scope="module")
def bnb_functional():
    """bitsandbytes.functional, when its CPU path works here (else the parity tests skip, saying why)."""
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # its CPU backend logs a missing optional kernel
    functional = pytest.importorskip("bitsandbytes.functional")
    try:
        functional.quantize_4bit(torch.randn(4, 64), blocksize=64, quant_type="nf4")
    except Exception as exc:  # noqa: BLE001 - any failure means there is no usable CPU path
        pytest.skip(f"bitsandbytes has no working CPU path here: {exc}")
    return functional


def weights(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.02).to(dtype)


# --------------------------------------------------------------------------- code books


def test_nf4_code_matches_bitsandbytes(bnb_functional):
    ours = Q.nf4_code()
    theirs = bnb_functional.get_4bit_type("nf4", device="cpu")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert torch.equal(ours, theirs)  # bit for bit, so values on a midpoint round the same way


def test_nf4_code_shape():
    code = Q.nf4_code()
    assert code.shape == (16,) and torch.all(code[1:] > code[:-1])  # 16 distinct sorted levels
    assert code[0] == -1 and code[-1] == 1 and (code == 0).sum() == 1
    assert (code < 0).sum() == 7 and (code > 0).sum() == 8  # asymmetric: every one of the 16 codes is used


def test_nf4_levels_are_normal_quantiles():
    # Each positive level (before scaling to 1) sits at an evenly spaced probability of N(0, 1).
    code = Q.nf4_code().double()
    positive = code[code > 0]
    scale = torch.special.ndtri(torch.tensor(0.5 * ((1 - 1 / 30) + (1 - 1 / 32)), dtype=torch.float64))
    probs = torch.special.ndtr(positive * scale)
    gaps = probs.diff()
    torch.testing.assert_close(gaps, torch.full_like(gaps, float(gaps.mean())), rtol=1e-5, atol=1e-6)


def test_fp4_and_dynamic_map_match_bitsandbytes(bnb_functional):
    fp4 = bnb_functional.get_4bit_type("fp4", device="cpu").unique()
    torch.testing.assert_close(Q.fp4_code(), fp4.sort().values, rtol=0, atol=1e-6)
    torch.testing.assert_close(Q.dynamic_map_8bit(), bnb_functional.create_dynamic_map(), rtol=0, atol=0)


def test_int4_is_symmetric_and_even():
    code = Q.int4_code()
    assert code.shape == (15,)
    torch.testing.assert_close(code, -code.flip(0))
    torch.testing.assert_close(code.diff(), torch.full((14,), 1 / 7))


def test_get_code_returns_a_copy():
    Q.get_code("nf4").zero_()
    assert Q.get_code("nf4").abs().sum() > 0


# --------------------------------------------------------------------------- parity of the quantiser


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("block_size", [64, 128])
def test_nf4_codes_and_constants_match_bitsandbytes(bnb_functional, shape, dtype, block_size):
    w = weights(shape, dtype)
    packed, state = bnb_functional.quantize_4bit(w, blocksize=block_size, quant_type="nf4")
    q = Q.nf4_quantize(w, block_size)
    assert torch.equal(q.packed, packed.view(-1)), "packed codes (and their nibble order) differ"
    assert torch.equal(q.absmax, state.absmax)


def _bnb_dequantize(functional, packed, state) -> torch.Tensor:
    """bitsandbytes' dequantisation in float32.

    Its CPU C kernel (0.50.2) assumes blocks never straddle rows: for shapes whose last dimension is
    even but not a multiple of the block size (e.g. 64 x 96 with blocks of 64) it disagrees with its
    own quantize_4bit. Those shapes are compared with bitsandbytes' pure-torch reference instead.
    """
    last = state.shape[-1]
    state.dtype = torch.float32
    if last % 2 == 1 or last % state.blocksize == 0:
        return functional.dequantize_4bit(packed, state)
    reference = pytest.importorskip("bitsandbytes.backends.default.ops")
    return reference._dequantize_4bit_compute(packed.view(-1), state.absmax, state.code, state.blocksize,
                                              state.shape, torch.float32)


@pytest.mark.parametrize("code", ["nf4", "fp4"])
@pytest.mark.parametrize("shape", SHAPES + [(64, 96)], ids=str)
def test_dequantized_values_match_bitsandbytes(bnb_functional, shape, code):
    w = weights(shape)
    packed, state = bnb_functional.quantize_4bit(w, blocksize=64, quant_type=code)
    theirs = _bnb_dequantize(bnb_functional, packed, state)
    ours = Q.dequantize_4bit(Q.quantize_4bit(w, code, 64))
    assert ours.shape == w.shape
    torch.testing.assert_close(ours, theirs.view(w.shape), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(128, 256), (300, 301), (4096,)], ids=str)
def test_double_quantisation_matches_bitsandbytes(bnb_functional, shape):
    w = weights(shape)
    packed, state = bnb_functional.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    q = Q.nf4_quantize(w, 64, double_quant=True)
    assert torch.equal(q.packed, packed.view(-1))
    dq = q.absmax
    assert math.isclose(dq.offset, float(state.offset), rel_tol=1e-6)
    torch.testing.assert_close(dq.absmax, state.state2.absmax)
    # bitsandbytes' C kernel rounds a rare constant that lies almost exactly between two 8-bit
    # levels the other way: codes agree almost everywhere and never by more than one level.
    diff = (dq.codes.int() - state.absmax.int()).abs()
    assert diff.max() <= 1 and (diff == 0).float().mean() > 0.99
    state.dtype = torch.float32
    torch.testing.assert_close(Q.dequantize_4bit(q), bnb_functional.dequantize_4bit(packed, state).view(shape),
                               rtol=1e-2, atol=1e-4)


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("code", Q.CODES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trip_error_is_at_most_half_a_level_gap(shape, code):
    w = weights(shape)
    q = Q.quantize_4bit(w, code, 32)
    err = (Q.dequantize_4bit(q) - w).abs().reshape(-1)
    levels = Q.get_code(code)
    half_gap = float(levels.diff().max()) / 2
    absmax = q.absmax.repeat_interleave(32)[: w.numel()]
    assert torch.all(err <= absmax * half_gap * (1 + 1e-5) + 1e-12)


@pytest.mark.parametrize("code", Q.CODES)
def test_quantising_twice_changes_nothing(code):
    once = Q.dequantize_4bit(Q.quantize_4bit(weights((50, 64)), code))
    twice = Q.dequantize_4bit(Q.quantize_4bit(once, code))
    torch.testing.assert_close(twice, once, rtol=1e-6, atol=0)


def test_absmax_is_kept_exactly():
    w = weights((8, 64))
    d = Q.nf4_dequantize(Q.nf4_quantize(w))
    # the largest magnitude of each block maps to the level -1 or +1, so it survives exactly
    torch.testing.assert_close(d.abs().amax(dim=1), w.abs().amax(dim=1), rtol=0, atol=0)


def test_nf4_beats_int4_and_fp4_on_normal_weights():
    w = weights((256, 512))
    errors = {code: Q.quantization_error(w, code) for code in Q.CODES}
    assert errors["nf4"] < errors["int4"] and errors["nf4"] < errors["fp4"], errors


def test_zero_blocks_stay_zero():
    w = torch.zeros(3, 64)
    w[1, 5] = 0.5
    d = Q.nf4_dequantize(Q.nf4_quantize(w, 64))
    assert torch.isfinite(d).all()
    assert torch.equal(d, w)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_shape_dtype_and_sizes_survive(dtype):
    w = weights((37, 11), dtype)  # 407 numbers: an odd count, not a multiple of the block
    q = Q.nf4_quantize(w, 64)
    assert q.packed.dtype == torch.uint8 and q.packed.numel() == 204  # ceil(407 / 2)
    assert q.absmax.numel() == 7  # ceil(407 / 64)
    d = Q.nf4_dequantize(q)
    assert d.shape == w.shape and d.dtype == dtype
    assert Q.nf4_dequantize(q, torch.float32).dtype == torch.float32


# --------------------------------------------------------------------------- packing


def test_packing_order_and_inverse():
    codes = torch.tensor([1, 2, 3], dtype=torch.uint8)
    packed = Q.pack_4bit(codes)
    assert packed.tolist() == [0x12, 0x30]  # first code in the high nibble, odd count padded
    for n in (1, 2, 15, 64, 101):
        codes = torch.randint(0, 16, (n,), dtype=torch.uint8)
        assert torch.equal(Q.unpack_4bit(Q.pack_4bit(codes), n), codes)


def test_codes_are_the_unpacked_bytes():
    w = weights((5, 13))
    q = Q.nf4_quantize(w, 32)
    codes = q.codes()
    assert codes.shape == (65,) and int(codes.max()) < 16
    expected = (Q.nf4_code()[codes.long()].view(-1) * q.absmax.repeat_interleave(32)[:65]).view(5, 13)
    torch.testing.assert_close(Q.nf4_dequantize(q), expected)


# --------------------------------------------------------------------------- double quantisation, bits


def test_bits_per_parameter():
    assert Q.bits_per_parameter(64) == 4.5
    assert Q.bits_per_parameter(64, double_quant=True) == pytest.approx(4.127, abs=1e-3)
    assert Q.bits_per_parameter(64, True) == 4 + 8 / 64 + 32 / (64 * 256)
    assert Q.bits_per_parameter(128) < Q.bits_per_parameter(64) < Q.bits_per_parameter(32)


@pytest.mark.parametrize("double_quant", [False, True])
def test_measured_bits_approach_the_formula(double_quant):
    w = weights((1024, 1024))
    q = Q.nf4_quantize(w, 64, double_quant)
    assert q.double_quantized is double_quant
    assert q.bits_per_parameter == pytest.approx(Q.bits_per_parameter(64, double_quant), abs=1e-3)


def test_double_quantised_constants_are_close():
    absmax = weights((20480,)).abs().view(-1, 64).amax(1) + 0.01
    dq = Q.double_quantize(absmax, 256)
    assert dq.codes.dtype == torch.uint8 and dq.absmax.numel() == math.ceil(absmax.numel() / 256)
    back = Q.double_dequantize(dq)
    # the 8-bit dynamic map's widest gap near +-1 is about 0.014: the error stays below that share of absmax2
    bound = 0.0075 * dq.absmax.repeat_interleave(256)[: absmax.numel()]
    assert torch.all((back - absmax).abs() <= bound + 1e-7)


def test_double_quantisation_costs_little_accuracy():
    w = weights((512, 512))
    plain = Q.nf4_dequantize(Q.nf4_quantize(w))
    double = Q.nf4_dequantize(Q.nf4_quantize(w, double_quant=True))
    e_plain = float((plain - w).norm() / w.norm())
    e_double = float((double - w).norm() / w.norm())
    assert e_double < 1.05 * e_plain


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (torch.arange(10), TypeError, "floating-point"),
        (torch.ones(4, dtype=torch.bool), TypeError, "floating-point"),
        ([0.1, 0.2], TypeError, "torch.Tensor"),
        (torch.tensor([0.1, float("nan"), 0.3]), ValueError, "NaN or inf"),
        (torch.tensor([0.1, float("inf")]), ValueError, "NaN or inf"),
        (torch.empty(0), ValueError, "empty"),
    ],
)
def test_bad_weights_raise(bad, error, words):
    with pytest.raises(error, match=words):
        Q.nf4_quantize(bad)


@pytest.mark.parametrize("block_size", [0, 1, 3, 48, 100, -64])
def test_block_size_must_be_a_power_of_two(block_size):
    with pytest.raises(ValueError, match="power of two"):
        Q.nf4_quantize(torch.randn(128), block_size)


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="block_size"):
        Q.nf4_quantize(torch.randn(128), 64.0)
    with pytest.raises(ValueError, match="nf4, int4, fp4"):
        Q.quantize_4bit(torch.randn(128), "int3")
    with pytest.raises(TypeError, match="QuantizedTensor"):
        Q.nf4_dequantize(torch.randn(8))


# --------------------------------------------------------------------------- plots, widget, figure


def test_quant_plots_return_figures():
    from matplotlib.figure import Figure

    from lora_edu import plot

    levels = {code: Q.get_code(code) for code in Q.CODES}
    fig = plot.plot_quant_levels(torch.rand(1000) * 2 - 1, levels, "test")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    errors = {"q_proj": {"nf4": 0.1, "int4": 0.12, "fp4": 0.13}, "k_proj": {"nf4": 0.1, "int4": 0.11, "fp4": 0.14}}
    assert isinstance(plot.plot_quant_errors(errors), Figure)
    assert isinstance(plot.plot_loss_curves({"LoRA": [1.0, 0.5], "QLoRA": [1.1, 0.6]}), Figure)


def test_quant_explorer_widget_follows_its_controls():
    from lora_edu.widgets import quant_explorer

    box = quant_explorer(weights((64, 128)))
    assert box.result["code"] == "nf4" and box.result["bits_per_parameter"] == pytest.approx(4.127, abs=1e-3)
    assert bytes(box.picture.value[:4]) == b"\x89PNG"
    nf4_error = box.result["relative_error"]
    box.code.value = "int4"
    assert box.result["code"] == "int4" and box.result["relative_error"] > nf4_error
    box.double_quant.value = False
    assert box.result["bits_per_parameter"] == 4.5
    box.block_size.value = 1024
    assert box.result["bits_per_parameter"] == 4 + 32 / 1024 and "1024" in box.info.value


def test_nf4_levels_figure_is_registered():
    from lora_edu.figures import FIGURES

    assert "nf4_levels.png" in FIGURES
