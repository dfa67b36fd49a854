"""QLoRA's frozen base: a linear layer stored in 4 bits, and the surgery that puts it in a model.

QLoRA (Dettmers et al., 2023, arXiv:2305.14314, section 3) keeps the frozen base weights in 4-bit
NF4 (the maths is in :mod:`lora_edu.quant`) and trains LoRA adapters on top. The LoRA adapters
stay in 16/32-bit and are the only thing trained: gradients flow *through* the dequantised base
(:class:`FrozenLinear4bit`), they are never quantised.

    y = W x + (alpha / r) B A x     W: a FrozenLinear4bit, 4-bit codes + absmax, frozen, no gradient
                                    A, B: the LoRA adapters (LoRALinear), 16/32-bit, trained

* :class:`FrozenLinear4bit` holds the packed codes and the constants as *buffers* (nothing to
  train) and dequantises its weight in every forward, and again in backward: only the packed
  codes are kept for backward, never a full-precision copy of the weight.
* :func:`quantize_model` puts one in place of each targeted ``nn.Linear``; inject LoRA after.
* :func:`weight_bytes` measures what the weights then occupy: codes, constants, dense base, adapters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import nn

from lora_edu.quant import (
    Blockwise8bit,
    QuantizedTensor,
    _check_block_size,
    _levels,
    dequantize_4bit,
    quantize_4bit,
)


class _Dequantize4bitLinear(torch.autograd.Function):
    """y = x W^T with W dequantised on the fly, in forward and again in backward.

    Only the packed codes are kept for backward (a plain F.linear would keep the dequantised W of
    every layer alive until backward, undoing the memory saving). W gets no gradient: it is frozen.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: FrozenLinear4bit) -> torch.Tensor:
        ctx.layer = layer
        return x @ layer.dequantized_weight(x.dtype).t()  # (..., in) @ (in, out) -> (..., out)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None
        return grad_out @ ctx.layer.dequantized_weight(grad_out.dtype), None  # (..., out) @ (out, in)


class FrozenLinear4bit(nn.Module):
    """A frozen linear layer stored in 4 bits; it dequantises its weight in every forward.

    Put LoRA on it (``inject_lora``) and you have QLoRA: the adapters train in full precision,
    the 4-bit base never changes and never gets a gradient. Build one with :meth:`from_linear`.

    Attributes:
        in_features, out_features: as in ``nn.Linear``.
        compute_dtype: the dtype of the weight in forward (default: the input's dtype).
    """

    def __init__(self, q: QuantizedTensor, bias: torch.Tensor | None = None,
                 compute_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if not isinstance(q, QuantizedTensor) or len(q.shape) != 2:
            raise ValueError("FrozenLinear4bit needs a QuantizedTensor of a 2-D (out, in) weight.")
        self.out_features, self.in_features = q.shape
        self.code, self.block_size, self.weight_dtype = q.code, q.block_size, q.dtype
        self.compute_dtype = compute_dtype
        self.register_buffer("packed", q.packed)  # (out*in/2,) uint8
        if q.double_quantized:
            dq = q.absmax
            self.register_buffer("absmax_codes", dq.codes)  # (n_blocks,) uint8
            self.register_buffer("absmax2", dq.absmax)  # (n_blocks/256,) float32
            self.register_buffer("absmax_offset", torch.tensor(dq.offset, dtype=torch.float32))
            self.block_size2 = dq.block_size
        else:
            self.register_buffer("absmax", q.absmax)  # (n_blocks,) float32
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, code: str = "nf4", block_size: int = 64,
                    double_quant: bool = True, compute_dtype: torch.dtype | None = None) -> FrozenLinear4bit:
        """Quantise an ``nn.Linear``'s weight (QLoRA defaults: NF4, blocks of 64, double quantisation)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_linear expects an nn.Linear, got {type(linear).__name__}.")
        q = quantize_4bit(linear.weight.detach(), code, block_size, double_quant)
        return cls(q, linear.bias, compute_dtype)

    def quantized(self) -> QuantizedTensor:
        """The stored weight as a :class:`QuantizedTensor` (views of the buffers, no copy)."""
        if hasattr(self, "absmax_codes"):
            absmax = Blockwise8bit(self.absmax_codes, self.absmax2, float(self.absmax_offset), self.block_size2)
        else:
            absmax = self.absmax
        return QuantizedTensor(self.packed, absmax, (self.out_features, self.in_features),
                               self.weight_dtype, self.block_size, self.code)

    def dequantized_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The (out_features, in_features) weight, decoded to ``dtype`` (default: the compute dtype)."""
        return dequantize_4bit(self.quantized(), dtype or self.compute_dtype or self.weight_dtype)

    @property
    def nbytes(self) -> int:
        """Bytes of the packed codes and constants (and bias, if any)."""
        bias = 0 if self.bias is None else self.bias.numel() * self.bias.element_size()
        return self.quantized().nbytes + bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.compute_dtype) if self.compute_dtype is not None else x
        y = _Dequantize4bitLinear.apply(x, self)  # (..., out_features)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def extra_repr(self) -> str:
        dq = ", double_quant" if hasattr(self, "absmax_codes") else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"code={self.code}, block_size={self.block_size}{dq}")


def quantize_model(model: nn.Module, target_modules: Iterable[str] | None = None, code: str = "nf4",
                   block_size: int = 64, double_quant: bool = True,
                   compute_dtype: torch.dtype | None = None) -> nn.Module:
    """Replace, in place, every ``nn.Linear`` whose name ends in ``target_modules`` by a FrozenLinear4bit.

    ``target_modules`` defaults to the seven projections of a Llama block (``LINEAR_NAMES``), as in
    QLoRA: embeddings, norms and the output head stay in full precision. Returns ``model``.
    """
    from lora_edu.lora import LoRALinear
    from lora_edu.models import LINEAR_NAMES

    targets = set(LINEAR_NAMES if target_modules is None else target_modules)
    _levels(code, "cpu")  # validate before touching the model
    _check_block_size(block_size)
    wrapped = [name for name, m in model.named_modules()
               if isinstance(m, LoRALinear) and name.rsplit(".", 1)[-1] in targets]
    if wrapped:
        raise ValueError(
            f"{wrapped[0]} already carries LoRA. QLoRA quantises the base first and injects LoRA after: "
            "call quantize_model(model) before inject_lora(model, config)."
        )
    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if not found:
        linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear named {sorted(targets)} in the model; its linear layers are: {linear}.")
    for name, linear in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, FrozenLinear4bit.from_linear(linear, code, block_size, double_quant, compute_dtype))
    return model


class WeightBytes(NamedTuple):
    """Bytes of a model's weights, by kind (from :func:`weight_bytes`)."""

    codes: int  # packed 4-bit codes of the quantised layers
    constants: int  # their absmax constants (both levels when double-quantised)
    dense: int  # every other base weight, kept in full precision (embeddings, norms, unquantised layers)
    adapters: int  # LoRA parameters (names containing "lora_")

    @property
    def base(self) -> int:
        """The frozen base model: codes + constants + dense."""
        return self.codes + self.constants + self.dense


def weight_bytes(model: nn.Module) -> WeightBytes:
    """Measure the bytes a model's weights occupy: quantised codes, constants, dense base, adapters.

    Shared (tied) tensors are counted once. Buffers other than the 4-bit layers' are not weights
    (e.g. rotary tables) and are left out.
    """
    seen: set[int] = set()

    def size(t: torch.Tensor | None) -> int:
        if t is None or t.data_ptr() in seen:
            return 0
        seen.add(t.data_ptr())
        return t.numel() * t.element_size()

    codes = constants = dense = adapters = 0
    for module in model.modules():
        if isinstance(module, FrozenLinear4bit):
            codes += size(module.packed)
            for name in ("absmax", "absmax_codes", "absmax2", "absmax_offset"):
                constants += size(getattr(module, name, None))
            dense += size(module.bias)
    for name, p in model.named_parameters(remove_duplicate=False):
        if "lora_" in name:
            adapters += size(p)
        else:
            dense += size(p)
    return WeightBytes(codes, constants, dense, adapters)
