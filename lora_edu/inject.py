"""Putting LoRA into a whole model: wrap the target layers, freeze everything else.

The LoRA paper adapts only the attention projections (Hu et al., 2021, arXiv:2106.09685, §4.2 and
§7.1: W_q and W_v); later work such as QLoRA (Dettmers et al., 2023, arXiv:2305.14314, §4) adapts
every linear layer. Either way the recipe is the same, and the same as PEFT's:

1. **Freeze** every parameter of the model explicitly (``requires_grad=False``), so autograd never
   computes or stores a gradient for the pretrained weights. Only hiding them from the optimizer
   would still compute those gradients and waste the memory LoRA is meant to save.
2. **Match by name.** A module is a target when the last part of its name (``q_proj`` in
   ``model.layers.3.self_attn.q_proj``) is in ``config.target_modules``, as PEFT matches.
3. **Wrap** each target in a :class:`~lora_edu.lora.LoRALinear`; its ``lora_A`` and ``lora_B`` are the
   only trainable parameters. B starts at zero, so the injected model is exactly the original.

The model is changed in place (no weight is copied) and returned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from torch import nn

from lora_edu.lora import LoRAConfig, LoRALinear


class ParamCount(NamedTuple):
    """Trainable and total parameters of a model (tied weights counted once)."""

    trainable: int
    total: int

    @property
    def share(self) -> float:
        """The trainable fraction of all parameters, 0..1."""
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"trainable {self.trainable:,} of {self.total:,} ({self.share:.3%})"


def _is_linear_like(module: nn.Module) -> bool:
    k, d = getattr(module, "in_features", None), getattr(module, "out_features", None)
    return all(isinstance(v, int) and not isinstance(v, bool) for v in (k, d))


def linear_layer_names(model: nn.Module) -> dict[str, int]:
    """The last parts of the names of the model's linear layers, with how many layers have each."""
    wrapped = {id(m.base) for m in model.modules() if isinstance(m, LoRALinear)}
    return dict(
        Counter(
            name.rsplit(".", 1)[-1]
            for name, m in model.named_modules()
            if name and _is_linear_like(m) and id(m) not in wrapped
        )
    )


def inject_lora(model: nn.Module, config: LoRAConfig) -> nn.Module:
    """Wrap every target layer of ``model`` in a :class:`LoRALinear` and freeze all other parameters.

    Args:
        model: any ``nn.Module`` (changed in place).
        config: rank, alpha, dropout, init and the ``target_modules`` names.

    Returns:
        The same model object, now with LoRA layers; only their ``lora_A``/``lora_B`` train.

    Raises:
        TypeError: ``config`` is not a :class:`LoRAConfig`, or ``model`` is not a module.
        ValueError: no module name matches ``target_modules`` (the message lists the names the
            model's linear layers do have), or the model already holds LoRA layers.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(config, LoRAConfig):
        raise TypeError(f"config must be a LoRAConfig, got {type(config).__name__}")
    existing = lora_layers(model)
    if existing:
        raise ValueError(
            f"the model already has {len(existing)} LoRA layers (e.g. {next(iter(existing))}); inject once, "
            "or load a fresh model"
        )
    targets = set(config.target_modules)
    matches = [
        name
        for name, module in model.named_modules()
        if name and name.rsplit(".", 1)[-1] in targets and _is_linear_like(module)
    ]
    if not matches:
        found = ", ".join(f"{n} (x{c})" for n, c in sorted(linear_layer_names(model).items())) or "none"
        raise ValueError(
            f"no layer of the model matches target_modules={config.target_modules}. "
            f"The model's linear layers are named: {found}"
        )
    missing = targets - {name.rsplit(".", 1)[-1] for name in matches}
    if missing:
        found = ", ".join(sorted(linear_layer_names(model)))
        raise ValueError(f"target_modules {sorted(missing)} match no linear layer of the model (it has: {found})")

    model.requires_grad_(False)  # freeze explicitly, before the adapters exist
    for name in matches:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear.from_config(getattr(parent, child), config))
    return model


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The model's LoRA layers by module name, in model order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def count_parameters(model: nn.Module) -> ParamCount:
    """Trainable (``requires_grad``) and total parameters; a weight shared by two modules counts once."""
    trainable = total = 0
    for p in model.parameters():  # parameters() yields a tied weight once
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return ParamCount(trainable, total)


def _layers_or_error(model: nn.Module) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA layers; call inject_lora(model, config) first")
    return layers


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRA layer's update into its base weight (layers already merged stay as they are)."""
    for layer in _layers_or_error(model).values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_lora`: subtract every merged update from its base weight."""
    for layer in _layers_or_error(model).values():
        layer.unmerge()
    return model


def set_adapter_enabled(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every LoRA layer's update on or off (off: the model computes the base model exactly)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {enabled!r}")
    for layer in _layers_or_error(model).values():
        layer.adapter_enabled = enabled
    return model


@contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """``with adapters_disabled(model): ...`` runs the base model; each layer's state is restored after."""
    layers = _layers_or_error(model)
    before = {name: layer.adapter_enabled for name, layer in layers.items()}
    try:
        for layer in layers.values():
            layer.adapter_enabled = False
        yield model
    finally:
        for name, layer in layers.items():
            layer.adapter_enabled = before[name]
