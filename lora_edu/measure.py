"""Measured training memory: run one real step and count the bytes each part holds.

:mod:`lora_edu.memory` predicts the memory of a training step from a model's shape; this module
checks the prediction against reality. :func:`measure_training_memory` runs one forward, backward
and optimizer step on random tokens and counts, tensor by tensor (tied or shared storage once):

    weights      the parameters, and the packed 4-bit codes of a quantized base (QLoRA)
    adapters     parameters whose name holds ``lora_``
    constants    the 4-bit layers' absmax constants
    gradients    ``p.grad`` of every trainable parameter
    optimizer    the optimizer's state tensors (AdamW: m and v)
    activations  what autograd saves for backward, caught with ``torch.autograd.graph.saved_tensors_hooks``

On CUDA it also records ``torch.cuda.max_memory_allocated``: everything, temporary buffers
included. For PyTorch on the CPU the estimate and this count agree byte for byte
(tests/test_memory.py checks fp32 and bf16, SDPA and eager attention, full fine-tune, LoRA, QLoRA).
"""

from __future__ import annotations

import torch
from torch import nn

from lora_edu.memory import OPTIMIZERS, MemoryBreakdown, _check_choice, _check_positive_int


def measure_training_memory(model: nn.Module, batch_size: int = 2, seq_len: int = 32, optimizer: str = "adamw",
                            lr: float = 0.0, seed: int = 0) -> MemoryBreakdown:
    """Run one real training step on random tokens and count the bytes actually held.

    Counts exactly, by tensor: weights, adapters (names with ``lora_``), 4-bit codes and constants
    (buffers of modules holding integer buffers), gradients, optimizer states, and the tensors
    autograd saved for backward (via ``torch.autograd.graph.saved_tensors_hooks``). On CUDA it also
    records ``torch.cuda.max_memory_allocated``. With the default ``lr=0`` the weights do not
    change; gradients and optimizer are freed before returning.

    Args:
        model: a Hugging Face causal LM (called as ``model(input_ids=..., labels=...)``); its
            trainable parameters are those with ``requires_grad``.
    """
    _check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("seq_len", seq_len)
    if not isinstance(getattr(getattr(model, "config", None), "vocab_size", None), int):
        raise TypeError("measure_training_memory needs a Hugging Face causal LM (a model with config.vocab_size)")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameter (requires_grad=True); nothing to measure")
    device = params[0].device
    opt = (torch.optim.AdamW(params, lr=lr) if optimizer == "adamw"
           else torch.optim.SGD(params, lr=lr, momentum=0.9 if optimizer == "sgd-momentum" else 0.0))
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch_size, seq_len), generator=gen).to(device)
    owned = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in owned:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    was_training = model.training
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        weights, adapters, constants = _weight_bytes(model)
        grads = _unique_bytes(p.grad for p in params)
        states = _unique_bytes(t for st in opt.state.values() for t in st.values() if isinstance(t, torch.Tensor))
    finally:
        opt.zero_grad(set_to_none=True)
        model.train(was_training)
    n_total = sum(p.numel() for p in model.parameters())
    return MemoryBreakdown(weights=weights, adapters=adapters, quant_constants=constants, gradients=grads,
                           optimizer_states=states, activations=sum(saved.values()),
                           label=f"measured, {optimizer}, batch {batch_size} x {seq_len} tokens",
                           num_params=n_total, trainable_params=sum(p.numel() for p in params), peak_allocated=peak)


def _weight_bytes(model: nn.Module) -> tuple[int, int, int]:
    """(base weights incl. 4-bit codes, LoRA adapters, quantization constants), tied tensors once."""
    seen: set[int] = set()

    def size(t: torch.Tensor) -> int:
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            return 0
        seen.add(ptr)
        return t.numel() * t.element_size()

    weights = adapters = constants = 0
    for name, p in model.named_parameters():
        if "lora_" in name:
            adapters += size(p)
        else:
            weights += size(p)
    for module in model.modules():
        buffers = dict(module.named_buffers(recurse=False))
        if not any(not b.is_floating_point() for b in buffers.values()):
            continue  # no packed integer codes: e.g. rotary tables, not weights
        for name, b in buffers.items():
            if name in ("packed", "weight", "bias"):
                weights += size(b)
            else:
                constants += size(b)
    return weights, adapters, constants


def _unique_bytes(tensors) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        if t is not None:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())
