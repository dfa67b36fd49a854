"""Rank, the SVD and the best rank-r approximation: the maths under LoRA's "low-rank".

A matrix of rank r is a sum of r outer products, so it factors into two thin matrices:

        n                 r          n
     +-----+            +---+     +-----+
     |     |            |   |     |  A  | r        W = B @ A
   m |  W  |   =      m | B |  @  +-----+          stores  mn  ->  r(m + n)  numbers
     |     |            |   |
     +-----+            +---+

The singular value decomposition W = U diag(S) V^T writes every matrix as such a sum, largest piece
first: W = sum_i s_i u_i v_i^T with s_1 >= s_2 >= ... >= 0. Keeping the first r pieces gives the best
rank-r approximation in the Frobenius and spectral norms, with error sqrt(sum_{i>r} s_i^2) and
s_{r+1} (Eckart & Young 1936; Mirsky 1960). This module uses LoRA's names for the two factors,
B (m x r) and A (r x n), so that B @ A reads like LoRA's update (Hu et al. 2021, arXiv:2106.09685, §4.1).

LoRA does *not* factor the pretrained W0: W0 stays whole and frozen, only the update dW = B A is low
rank. ``collect_spectra`` measures why that distinction matters: pretrained weights are (nearly) full rank.

Two choices explained:

* **Numerical rank.** In floating point, a rank-1 3 x 3 matrix has two singular values of about 1e-7,
  not 0. A backward-stable SVD computes each s_i to within about eps * s_1 times a modest function of
  the size, so we count s_i > s_1 * max(m, n) * eps, the rule of ``numpy.linalg.matrix_rank`` and
  ``torch.linalg.matrix_rank``. eps belongs to the matrix's own dtype (bf16 weights are only that precise).
* **Effective rank.** Numerical rank ignores *how much* each direction matters. The entropy effective
  rank of Roy & Vetterli (2007, "The effective rank: a measure of effective dimensionality") is
  exp(H(p)) with p_i = s_i / sum_j s_j: it equals k for k equal singular values, falls smoothly as the
  spectrum decays, needs no threshold and ignores the matrix's scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lora_edu.models import LINEAR_NAMES

_HALF = (torch.float16, torch.bfloat16)  # LAPACK has no half precision: compute these in float32


def _as_matrix(W: object, what: str = "W") -> torch.Tensor:
    """W as a real floating-point 2-D tensor, or a clear error."""
    if isinstance(W, np.ndarray):
        W = torch.from_numpy(W)
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor or numpy array, got {type(W).__name__}.")
    if W.ndim != 2:
        raise ValueError(
            f"{what} must be a 2-D matrix (m, n), got shape {tuple(W.shape)}. For a vector use "
            f"W.reshape(-1, 1); for a stack of matrices call this once per matrix."
        )
    if W.is_complex() or not W.is_floating_point():
        raise TypeError(
            f"{what} has dtype {W.dtype}; the SVD needs real floating-point numbers. Convert with W.float()."
        )
    if W.numel() == 0:
        raise ValueError(f"{what} is empty (shape {tuple(W.shape)}); a rank needs at least one entry.")
    if not torch.isfinite(W).all():
        raise ValueError(f"{what} holds NaN or inf entries; the SVD of such a matrix is undefined.")
    return W.detach()


def _spectrum(W_or_s: object) -> torch.Tensor:
    """Singular values (descending) of a 2-D matrix, or a 1-D tensor taken to already be them."""
    if isinstance(W_or_s, (np.ndarray, list, tuple)):
        W_or_s = torch.as_tensor(np.asarray(W_or_s, dtype=np.float64))
    if isinstance(W_or_s, torch.Tensor) and W_or_s.ndim == 1:
        s = W_or_s.detach().double()
        if s.numel() == 0 or not torch.isfinite(s).all() or (s < 0).any():
            raise ValueError("singular values must be a non-empty 1-D tensor of finite numbers >= 0.")
        return torch.sort(s, descending=True).values
    return singular_values(W_or_s)


def _check_rank(r: object, limit: int, what: str = "min(m, n)") -> int:
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
        raise TypeError(f"r must be an int, got {r!r} ({type(r).__name__}).")
    if not 1 <= r <= limit:
        raise ValueError(f"r must satisfy 1 <= r <= {what} = {limit}, got r={r}.")
    return int(r)


def singular_values(W: torch.Tensor) -> torch.Tensor:
    """The singular values of W (m, n), descending: shape (min(m, n),)."""
    W = _as_matrix(W)
    return torch.linalg.svdvals(W.float() if W.dtype in _HALF else W)


def default_tolerance(W: torch.Tensor) -> float:
    """The threshold below which a singular value counts as zero: s_1 * max(m, n) * eps(W.dtype)."""
    W = _as_matrix(W)
    return float(singular_values(W)[0]) * max(W.shape) * torch.finfo(W.dtype).eps


def numerical_rank(W: torch.Tensor, tol: float | None = None) -> int:
    """How many singular values of W exceed ``tol`` (default: :func:`default_tolerance`)."""
    W = _as_matrix(W)
    s = singular_values(W)
    tol = float(s[0]) * max(W.shape) * torch.finfo(W.dtype).eps if tol is None else float(tol)
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}.")
    return int((s > tol).sum())


def truncated_svd(W: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two factors of the best rank-r approximation of W (m, n): ``B`` (m, r) and ``A`` (r, n).

    With W = U diag(S) V^T, the singular values are split evenly: B = U_r diag(sqrt(S_r)) and
    A = diag(sqrt(S_r)) V_r^T, so ``B @ A`` = U_r diag(S_r) V_r^T. (PiSSA, arXiv:2404.02948,
    initialises LoRA's B and A this way; plain LoRA does not.)
    """
    W = _as_matrix(W)
    r = _check_rank(r, min(W.shape))
    U, S, Vh = torch.linalg.svd(W.float() if W.dtype in _HALF else W, full_matrices=False)
    root = S[:r].sqrt()                     # (r,)
    B = U[:, :r] * root                      # (m, r): column i scaled by sqrt(s_i)
    A = root[:, None] * Vh[:r]               # (r, n): row i scaled by sqrt(s_i)
    return B, A


def low_rank_approximation(W: torch.Tensor, r: int) -> torch.Tensor:
    """The best rank-r approximation of W, the (m, n) matrix B @ A from :func:`truncated_svd`."""
    B, A = truncated_svd(W, r)
    return B @ A                             # (m, r) @ (r, n) -> (m, n)


def factorize(W: torch.Tensor, r: int | None = None, tol: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact factors B (m, r) and A (r, n) of a matrix of rank r, with B @ A == W up to rounding.

    ``r`` defaults to the numerical rank. Raises ValueError when W's rank is larger than ``r``:
    then no exact rank-r factorisation exists and :func:`truncated_svd` gives the best approximation.
    """
    W = _as_matrix(W)
    rank = numerical_rank(W, tol)
    if rank == 0:
        raise ValueError("W is (numerically) zero: it has rank 0 and needs no factors.")
    r = rank if r is None else _check_rank(r, min(W.shape))
    if r < rank:
        raise ValueError(
            f"W has numerical rank {rank} > r={r}, so it has no exact rank-{r} factorisation. "
            f"Use truncated_svd(W, {r}) for the best rank-{r} approximation, or pass r >= {rank}."
        )
    return truncated_svd(W, r)


def tail_norm(W_or_s: torch.Tensor, r: int, norm: str = "fro") -> float:
    """Eckart-Young's error of the best rank-r approximation, from the spectrum alone.

    ``norm="fro"``: sqrt(sum_{i>r} s_i^2);  ``norm="spectral"``: s_{r+1} (0 when r is the full size).
    ``W_or_s`` is a matrix (m, n) or its singular values (k,).
    """
    s = _spectrum(W_or_s)
    r = _check_rank(r, len(s), "the number of singular values")
    if norm == "fro":
        return float(s[r:].square().sum().sqrt())
    if norm == "spectral":
        return float(s[r]) if r < len(s) else 0.0
    raise ValueError(f"norm must be 'fro' or 'spectral', got {norm!r}.")


def approximation_error(W: torch.Tensor, r: int, norm: str = "fro", relative: bool = False) -> float:
    """||W - B A|| for the truncated-SVD factors at rank r, measured on the reconstruction.

    ``relative=True`` divides by ||W|| in the same norm. Eckart-Young says this equals :func:`tail_norm`.
    """
    W = _as_matrix(W)
    if norm not in ("fro", "spectral"):
        raise ValueError(f"norm must be 'fro' or 'spectral', got {norm!r}.")
    ord_ = "fro" if norm == "fro" else 2
    Wc = W.float() if W.dtype in _HALF else W
    error = float(torch.linalg.matrix_norm(Wc - low_rank_approximation(Wc, r), ord=ord_))
    return error / float(torch.linalg.matrix_norm(Wc, ord=ord_)) if relative else error


def energy_curve(W_or_s: torch.Tensor) -> torch.Tensor:
    """Cumulative energy: entry r-1 is the share of sum s_i^2 kept by the first r singular values."""
    energy = _spectrum(W_or_s).square()      # (k,)
    total = energy.sum()
    if total == 0:
        raise ValueError("the matrix is zero, so it has no energy to keep.")
    return energy.cumsum(0) / total


def energy_kept(W_or_s: torch.Tensor, r: int) -> float:
    """The share (0..1] of the squared Frobenius norm kept at rank r: sum_{i<=r} s_i^2 / sum_i s_i^2."""
    curve = energy_curve(W_or_s)
    return float(curve[_check_rank(r, len(curve), "the number of singular values") - 1])


def rank_for_energy(W_or_s: torch.Tensor, fraction: float) -> int:
    """The smallest r whose truncated SVD keeps at least ``fraction`` (0 < fraction <= 1) of the energy."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}; 90% is 0.9.")
    curve = energy_curve(W_or_s)
    # a hair of slack so fraction=1.0 is reached despite rounding in the cumulative sum
    return min(int(torch.searchsorted(curve, torch.tensor(fraction, dtype=curve.dtype) - 1e-12)) + 1, len(curve))


def effective_rank(W_or_s: torch.Tensor) -> float:
    """Roy & Vetterli's (2007) entropy effective rank: exp(-sum_i p_i log p_i), p_i = s_i / sum_j s_j."""
    s = _spectrum(W_or_s)
    if s.sum() == 0:
        raise ValueError("the matrix is zero; its effective rank is undefined.")
    p = s / s.sum()
    return float(torch.exp(-torch.special.xlogy(p, p).sum()))  # xlogy: 0 log 0 = 0


def factored_size(m: int, n: int, r: int) -> int:
    """Numbers stored by a rank-r factorisation of an (m, n) matrix: r (m + n), against m n for W."""
    for name, value in (("m", m), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return _check_rank(r, min(m, n)) * (m + n)


def break_even_rank(m: int, n: int) -> float:
    """The rank mn / (m + n) above which two factors store more numbers than W itself."""
    factored_size(m, n, 1)  # validates m and n
    return m * n / (m + n)


# ---- spectra of a real model ------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpectrum:
    """The singular values of one linear layer's weight and of a random Gaussian twin.

    The twin has the same shape and the same Frobenius norm, so the two spectra hold the same total
    energy and differ only in how it is spread.
    """

    name: str                       # module name, e.g. "model.layers.3.self_attn.q_proj"
    kind: str                       # the last part of the name, e.g. "q_proj"
    block: int | None               # transformer block index, when the name has one
    shape: tuple[int, int]          # (out_features, in_features)
    eps: float                      # machine epsilon of the weight's dtype (for the numerical rank)
    singular_values: torch.Tensor   # (min(shape),) descending
    random_singular_values: torch.Tensor

    def _values(self, random: bool) -> torch.Tensor:
        return self.random_singular_values if random else self.singular_values

    def numerical_rank(self, random: bool = False) -> int:
        """Singular values above s_1 * max(m, n) * eps (of the weight, or of its twin if ``random``)."""
        s = self._values(random)
        return int((s > s[0] * max(self.shape) * self.eps).sum())

    @property
    def full_rank(self) -> bool:
        """Whether the weight's numerical rank is min(m, n)."""
        return self.numerical_rank() == min(self.shape)

    def energy_kept(self, r: int, random: bool = False) -> float:
        """Share of the energy kept at rank r (an r beyond min(m, n) keeps all of it)."""
        return energy_kept(self._values(random), min(r, min(self.shape)))

    def effective_rank(self, random: bool = False) -> float:
        """Roy & Vetterli's entropy effective rank of the weight (or of its twin)."""
        return effective_rank(self._values(random))


def _block_index(name: str) -> int | None:
    match = re.search(r"\.(\d+)\.", f".{name}.")
    return int(match.group(1)) if match else None


def pick_blocks(num_blocks: int, count: int) -> list[int]:
    """``count`` block indices spread evenly from the first to the last (0 or >= num_blocks: all)."""
    if count <= 0 or count >= num_blocks:
        return list(range(num_blocks))
    if count == 1:
        return [0]
    return sorted({round(i * (num_blocks - 1) / (count - 1)) for i in range(count)})


def collect_spectra(
    model: nn.Module,
    names: Iterable[str] = LINEAR_NAMES,
    blocks: int | Sequence[int] = 0,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, LayerSpectrum]:
    """The spectra of the model's linear layers whose last name part is in ``names``, with random twins.

    ``blocks`` is a count of blocks spread evenly through the depth (0 = all, e.g.
    ``profile.spectrum_layers``) or a list of block indices. The twins' entries are i.i.d. Gaussian
    (from ``seed``; one draw per shape, since a large Gaussian matrix's spectrum barely changes from draw
    to draw), rescaled to each weight's Frobenius norm. Returns ``{module name: LayerSpectrum}``.
    """
    names = tuple(names)
    found = [(n, m) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in names and hasattr(m, "weight")]
    if not found:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no module named one of {list(names)} in the model; its linear layers are called {linear}.")
    indices = [b for b in (_block_index(n) for n, _ in found) if b is not None]
    if isinstance(blocks, int):
        chosen = set(pick_blocks(max(indices) + 1, blocks)) if indices else None
    else:
        chosen = {int(b) for b in blocks}
        if indices and not chosen <= set(indices):
            raise ValueError(f"blocks {sorted(chosen - set(indices))} do not exist; the model has blocks 0..{max(indices)}.")
    selected = [(n, m) for n, m in found if chosen is None or _block_index(n) in chosen]
    generator = torch.Generator().manual_seed(seed)
    unit_random: dict[tuple[int, int], torch.Tensor] = {}  # shape -> spectrum of a Gaussian with norm 1
    if progress:
        from tqdm.auto import tqdm
        selected = tqdm(selected, desc="spectra", unit="matrix")
    spectra = {}
    for name, module in selected:
        W = _as_matrix(module.weight, name).cpu()                       # (out_features, in_features)
        s = singular_values(W)                                           # (min(m, n),)
        shape = tuple(W.shape)
        if shape not in unit_random:  # one draw per shape: a large Gaussian's spectrum barely varies
            noise = torch.randn(shape, generator=generator, dtype=s.dtype)
            unit_random[shape] = singular_values(noise / torch.linalg.matrix_norm(noise))
        spectra[name] = LayerSpectrum(
            name=name, kind=name.rsplit(".", 1)[-1], block=_block_index(name), shape=shape,
            eps=torch.finfo(W.dtype).eps, singular_values=s,
            random_singular_values=unit_random[shape] * s.square().sum().sqrt(),  # same Frobenius norm
        )
    return spectra


def summarize_spectra(spectra: dict[str, LayerSpectrum], ranks: Sequence[int] = (8, 64, 256)) -> list[dict]:
    """One row per projection kind (mean over the blocks measured): rank, effective rank, energy kept."""
    rows = []
    for kind in dict.fromkeys(s.kind for s in spectra.values()):
        group = [s for s in spectra.values() if s.kind == kind]
        mean = lambda f: sum(f(s) for s in group) / len(group)  # noqa: E731
        row = {
            "layer": kind,
            "shape": "x".join(map(str, group[0].shape)),
            "matrices": len(group),
            "full rank": sum(s.full_rank for s in group),
            "eff. rank": mean(lambda s: s.effective_rank()),
            "eff. rank (random)": mean(lambda s: s.effective_rank(random=True)),
        }
        for r in ranks:
            row[f"energy r={r}"] = mean(lambda s: s.energy_kept(r))
            row[f"energy r={r} (random)"] = mean(lambda s: s.energy_kept(r, random=True))
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict], digits: int = 2) -> str:
    """Rows of equal keys as a Markdown table (floats rounded to ``digits``), for ``IPython.display.Markdown``."""
    if not rows:
        return ""
    cell = lambda v: f"{v:.{digits}f}" if isinstance(v, float) and not math.isnan(v) else f"{v}"  # noqa: E731
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(row[k]) for k in head) + " |" for row in rows]
    return "\n".join(lines)
