"""4-bit quantisation of a frozen base model: NF4, blockwise absmax, double quantisation (QLoRA).

QLoRA (Dettmers et al., 2023, arXiv:2305.14314) fine-tunes LoRA adapters on top of a base model
whose frozen weights are stored in 4 bits. Three ideas make that work (paper section 3):

1. **Blockwise absmax.** Cut the flattened weight into blocks of 64 numbers, divide each block by
   its largest magnitude (its *absmax*, one fp32 constant per block) so it lies in [-1, 1], and
   round every number to the nearest of 16 levels. One outlier only spoils its own block.

       w (n,)  ->  blocks (n/64, 64)  ->  / absmax  ->  nearest level  ->  4-bit code (0..15)

2. **NormalFloat (NF4) levels.** Pretrained weights are roughly normal, so the 16 levels are put
   at quantiles of N(0, 1): each level covers the same probability mass, with an exact zero and
   one more positive level than negative (all 16 codes used). Int4 spreads levels evenly and
   FP4 crowds them near zero; both waste codes on that distribution.

3. **Double quantisation.** 32 bits of absmax per 64 weights is 0.5 bits per weight. Quantising
   the absmax constants themselves to 8 bits (blocks of 256, mean subtracted) brings the total
   from 4.5 to about 4.127 bits per parameter.

The LoRA adapters stay in 16/32-bit and are the only thing trained: gradients flow *through* the
dequantised base, they are never quantised. The frozen 4-bit layer that does this, and the surgery
that puts it into a model, are in :mod:`lora_edu.qlinear`.

Two codes share one byte: element ``2i`` in the high nibble, ``2i + 1`` in the low nibble, the
order bitsandbytes uses, so our codes and constants match ``bitsandbytes.functional.quantize_4bit``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CODES = ("nf4", "int4", "fp4")
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


# --------------------------------------------------------------------------- code books (levels)


def nf4_code() -> torch.Tensor:
    """The 16 NF4 levels in [-1, 1], sorted: quantiles of N(0, 1) (QLoRA section 3, eq. 4).

    The outermost probability is ``offset`` = (1 - 1/(2*15) + 1 - 1/(2*16)) / 2 = 0.9677083: the
    tails of the normal distribution are cut off there, or the outer levels would sit at infinity.
    8 positive levels come from 9 evenly spaced probabilities in [0.5, offset] (dropping 0.5),
    7 negative ones from 8 (dropping 0.5), plus an exact zero; all are divided by the largest.
    Rounding ``offset`` to 7 digits and the probabilities to float32, as bitsandbytes does, makes
    the levels identical to its table bit for bit (so ties round the same way).
    """
    offset = round(0.5 * ((1 - 1 / (2 * 15)) + (1 - 1 / (2 * 16))), 7)  # 0.9677083
    positive = torch.special.ndtri(torch.linspace(offset, 0.5, 9)[:-1].double())  # (8,) in std devs
    negative = -torch.special.ndtri(torch.linspace(offset, 0.5, 8)[:-1].double())  # (7,)
    levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).float().sort().values
    return levels / levels.max()  # (16,)


def int4_code() -> torch.Tensor:
    """Symmetric Int4: the 15 evenly spaced levels k/7, k = -7..7 (one code of 16 is unused)."""
    return torch.arange(-7, 8, dtype=torch.float32) / 7


def fp4_code() -> torch.Tensor:
    """bitsandbytes' FP4 (1 sign, 2 exponent, 1 mantissa bit), its 15 distinct levels in [-1, 1].

    Normal numbers 2^e (1 + m/2) for e = 1..3, m = 0, 1 give 2, 3, 4, 6, 8, 12; the subnormals are
    0 and 1/16. Divided by 12. +0 and -0 take two codes, so only 15 values are distinct.
    """
    magnitudes = [0.0, 0.0625] + [2.0**e * (1 + m / 2) for e in (1, 2, 3) for m in (0, 1)]
    positive = torch.tensor(magnitudes, dtype=torch.float32) / 12
    return torch.cat([-positive[1:], positive]).sort().values  # (15,)


def get_code(code: str) -> torch.Tensor:
    """The sorted levels of a 4-bit code book: ``"nf4"``, ``"int4"`` or ``"fp4"``."""
    if code not in CODES:
        raise ValueError(f"Unknown 4-bit code {code!r}; choose one of {', '.join(CODES)}.")
    return _levels(code, "cpu").clone()


@functools.lru_cache(maxsize=None)
def _levels(code: str, device: str) -> torch.Tensor:
    """Cached code books (read-only use: every forward of a 4-bit layer looks its levels up)."""
    books = {"nf4": nf4_code, "int4": int4_code, "fp4": fp4_code, "dynamic8": dynamic_map_8bit}
    if code not in books:
        raise ValueError(f"Unknown 4-bit code {code!r}; choose one of {', '.join(CODES)}.")
    return books[code]().to(device)


@functools.lru_cache(maxsize=None)
def _pair_table(code: str, device: str) -> torch.Tensor:
    """(256, 2): the two levels a packed byte decodes to, so one lookup decodes two codes."""
    levels = _levels(code, device)
    byte = torch.arange(256, device=device)
    last = len(levels) - 1  # int4/fp4 have 15 levels: the unused 16th code decodes as the last
    return torch.stack([levels[(byte >> 4).clamp(max=last)], levels[(byte & 15).clamp(max=last)]], dim=1)


def dynamic_map_8bit() -> torch.Tensor:
    """The 256 signed 8-bit levels double quantisation uses (bitsandbytes' dynamic map, sorted).

    A dynamic-exponent float (Dettmers, 2016, arXiv:1511.04561): for exponent i = 0..6 it places
    2^i evenly spaced values in 10^(i-6) * [0.1, 1], both signs, plus 0 and 1. Small constants
    keep their relative precision, as a float's do.
    """
    values = [0.0, 1.0]
    for i in range(7):
        edges = torch.linspace(0.1, 1, 2**i + 1, dtype=torch.float32)
        means = (edges[:-1] + edges[1:]) / 2 * 10.0 ** (i - 6)  # (2^i,)
        values += means.tolist() + (-means).tolist()
    return torch.tensor(sorted(values), dtype=torch.float32)  # (256,)


# --------------------------------------------------------------------------- validation, packing


def _check_weights(w: object) -> torch.Tensor:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of weights, got {type(w).__name__}.")
    if w.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"can only quantise floating-point weights, got dtype {w.dtype}. "
            "Convert first, e.g. `w.float()` (integer tensors are already quantised)."
        )
    if w.numel() == 0:
        raise ValueError("cannot quantise an empty tensor.")
    return w


def _check_finite(w: torch.Tensor, absmax: torch.Tensor) -> None:
    """A NaN or inf anywhere makes its block's absmax NaN or inf: checking (n_blocks,) is enough."""
    if not bool(torch.isfinite(absmax).all()):
        bad = int((~torch.isfinite(w)).sum())
        raise ValueError(
            f"the weights hold {bad} NaN or inf value(s); absmax scaling would spread them over "
            "their whole block. Fix the weights (e.g. look for a diverged training run) before quantising."
        )


def _check_block_size(block_size: object) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise TypeError(f"block_size must be an int, got {block_size!r}.")
    if block_size < 2 or block_size & (block_size - 1):
        raise ValueError(
            f"block_size must be a power of two >= 2 (QLoRA uses 64), got {block_size}."
        )
    return block_size


def _blocks(flat: torch.Tensor, block_size: int) -> torch.Tensor:
    """Pad a flat fp32 tensor with zeros to whole blocks: (n,) -> (n_blocks, block_size).

    Zeros never change a block's absmax, so the last, partial block is quantised like the rest.
    """
    pad = -flat.numel() % block_size
    return (F.pad(flat, (0, pad)) if pad else flat).view(-1, block_size)


def _nearest(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index of the nearest of the sorted ``levels`` for every element (ties go to the lower one)."""
    midpoints = (levels[:-1] + levels[1:]) / 2  # (L-1,)
    return torch.bucketize(x, midpoints, out_int32=True)


def pack_4bit(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte: (n,) ints in 0..15 -> (ceil(n/2),) uint8, element 2i in the high nibble."""
    codes = codes.reshape(-1).to(torch.uint8)
    if codes.numel() % 2:
        codes = F.pad(codes, (0, 1))
    return (codes[0::2] << 4) | codes[1::2]  # (ceil(n/2),)


def unpack_4bit(packed: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of :func:`pack_4bit`: (ceil(n/2),) uint8 -> (n,) uint8 codes."""
    return torch.stack([packed >> 4, packed & 0x0F], dim=-1).view(-1)[:n]


# --------------------------------------------------------------------------- quantised tensors


@dataclass(frozen=True)
class Blockwise8bit:
    """Double quantisation's output: the absmax constants as 8-bit codes (QLoRA section 3).

    Attributes:
        codes: (n,) uint8, indices into :func:`dynamic_map_8bit` of (absmax - offset) / absmax2.
        absmax: (ceil(n / block_size),) float32, the second-level constants.
        offset: the mean that was subtracted (the constants are all positive, so centring them
            uses the signed 8-bit levels on both sides).
        block_size: constants per second-level block (256 in QLoRA).
    """

    codes: torch.Tensor
    absmax: torch.Tensor
    offset: float
    block_size: int

    @property
    def nbytes(self) -> int:
        return self.codes.numel() + 4 * self.absmax.numel() + 4  # + the fp32 offset


@dataclass(frozen=True)
class QuantizedTensor:
    """A tensor in 4 bits: packed codes plus one absmax constant per block. Made by :func:`quantize_4bit`.

    Attributes:
        packed: (ceil(n/2),) uint8, two codes per byte (element 2i in the high nibble).
        absmax: (n_blocks,) float32 constants, or :class:`Blockwise8bit` when double-quantised.
        shape: the original tensor's shape; dtype: its dtype (what dequantising returns by default).
        block_size: numbers per block; code: the code book's name (``"nf4"``, ``"int4"``, ``"fp4"``).
    """

    packed: torch.Tensor
    absmax: torch.Tensor | Blockwise8bit
    shape: tuple[int, ...]
    dtype: torch.dtype
    block_size: int
    code: str = "nf4"

    @property
    def numel(self) -> int:
        n = 1
        for size in self.shape:
            n *= size
        return n

    @property
    def double_quantized(self) -> bool:
        return isinstance(self.absmax, Blockwise8bit)

    @property
    def nbytes(self) -> int:
        """Bytes stored: the packed codes plus the constants (both levels when double-quantised)."""
        constants = self.absmax.nbytes if self.double_quantized else 4 * self.absmax.numel()
        return self.packed.numel() + constants

    @property
    def bits_per_parameter(self) -> float:
        return 8 * self.nbytes / self.numel

    def constants(self) -> torch.Tensor:
        """The (n_blocks,) float32 absmax constants (decoded first when double-quantised)."""
        return double_dequantize(self.absmax) if self.double_quantized else self.absmax

    def codes(self) -> torch.Tensor:
        """The (n,) uint8 codes, unpacked, in the flattened tensor's order."""
        return unpack_4bit(self.packed, self.numel)


def double_quantize(absmax: torch.Tensor, block_size: int = 256) -> Blockwise8bit:
    """Quantise (n,) positive fp32 absmax constants to 8 bits in blocks of ``block_size``."""
    _check_weights(absmax)
    block_size = _check_block_size(block_size)
    absmax = absmax.reshape(-1).float()
    _check_finite(absmax, absmax)
    offset = absmax.mean()
    blocks = _blocks(absmax - offset, block_size)  # (n2, block_size), centred
    absmax2 = blocks.abs().amax(dim=1)  # (n2,)
    scaled = blocks * (1.0 / absmax2.clamp(min=1e-38))[:, None]
    codes = _nearest(scaled.clamp(-1, 1), _levels("dynamic8", str(absmax.device))).to(torch.uint8)
    return Blockwise8bit(codes.view(-1)[: absmax.numel()], absmax2, float(offset), block_size)


def double_dequantize(q: Blockwise8bit) -> torch.Tensor:
    """The inverse of :func:`double_quantize`: (n,) float32 absmax constants."""
    n = q.codes.numel()
    levels = _levels("dynamic8", str(q.codes.device))[q.codes.long()]  # (n,)
    return (_blocks(levels, q.block_size) * q.absmax[:, None]).view(-1)[:n] + q.offset


def quantize_4bit(
    w: torch.Tensor, code: str = "nf4", block_size: int = 64, double_quant: bool = False
) -> QuantizedTensor:
    """Blockwise absmax quantisation of any float tensor to a 4-bit code book.

    Args:
        w: float weights of any shape and size (a partial last block is fine).
        code: ``"nf4"`` (QLoRA), ``"int4"`` or ``"fp4"``.
        block_size: numbers sharing one absmax constant, a power of two (QLoRA: 64).
        double_quant: also quantise the absmax constants to 8 bits (blocks of 256).
    """
    _check_weights(w)
    block_size = _check_block_size(block_size)
    levels = _levels(code, str(w.device))
    blocks = _blocks(w.detach().reshape(-1).float(), block_size)  # (n_blocks, block_size)
    absmax = blocks.abs().amax(dim=1)  # (n_blocks,)
    _check_finite(w, absmax)
    scaled = blocks * (1.0 / absmax.clamp(min=1e-38))[:, None]  # in [-1, 1] (up to rounding)
    codes = _nearest(scaled, levels)  # (n_blocks, block_size) int32 in 0..15
    packed = pack_4bit(codes)[: (w.numel() + 1) // 2]  # (ceil(n/2),)
    constants = double_quantize(absmax) if double_quant else absmax
    return QuantizedTensor(packed, constants, tuple(w.shape), w.dtype, block_size, code)


def dequantize_4bit(q: QuantizedTensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The inverse of :func:`quantize_4bit`: level[code] * absmax, in ``q.shape`` and ``dtype`` (default: q.dtype)."""
    if not isinstance(q, QuantizedTensor):
        raise TypeError(f"expected a QuantizedTensor (from quantize_4bit), got {type(q).__name__}.")
    # A byte decodes to two fp32 levels: 8 bytes, read as one int64 so a single lookup fetches both.
    table = _pair_table(q.code, str(q.packed.device)).view(torch.int64).view(-1)  # (256,)
    values = table.index_select(0, q.packed.int()).view(torch.float32)  # (2 * ceil(n/2),) in [-1, 1]
    absmax = q.constants()  # (n_blocks,)
    if values.numel() != absmax.numel() * q.block_size:
        values = F.pad(values, (0, absmax.numel() * q.block_size - values.numel()))
    out = values.view(-1, q.block_size).mul_(absmax[:, None]).view(-1)[: q.numel]  # (n,)
    return out.view(q.shape).to(dtype or q.dtype)


def nf4_quantize(w: torch.Tensor, block_size: int = 64, double_quant: bool = False) -> QuantizedTensor:
    """NF4 blockwise quantisation (QLoRA): :func:`quantize_4bit` with ``code="nf4"``."""
    return quantize_4bit(w, "nf4", block_size, double_quant)


def nf4_dequantize(q: QuantizedTensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Back from NF4 to floats, in the original shape: :func:`dequantize_4bit`."""
    return dequantize_4bit(q, dtype)


def bits_per_parameter(block_size: int = 64, double_quant: bool = False, block_size2: int = 256) -> float:
    """Storage per weight: 4 bits of code + the constants' share (QLoRA section 3).

    Without double quantisation: 4 + 32/64 = 4.5 bits. With it: 4 + 8/64 + 32/(64*256) = 4.127 bits.
    """
    block_size = _check_block_size(block_size)
    if not double_quant:
        return 4 + 32 / block_size
    return 4 + 8 / block_size + 32 / (block_size * _check_block_size(block_size2))


def quantization_error(w: torch.Tensor, code: str = "nf4", block_size: int = 64) -> float:
    """Relative round-trip error ||w - dequant(quant(w))|| / ||w|| (Frobenius norms)."""
    w = _check_weights(w).detach().float()
    return float(torch.linalg.vector_norm(w - dequantize_4bit(quantize_4bit(w, code, block_size), torch.float32))
                 / torch.linalg.vector_norm(w).clamp(min=1e-30))
