"""Saving and loading LoRA adapters in PEFT's format: a few megabytes instead of a whole model.

After LoRA training only the ``lora_A`` / ``lora_B`` matrices differ from the base model, so only
they are saved (Hu et al., 2021, arXiv:2106.09685, §4.2: "we only need to store and load a very
small number of task-specific parameters in addition to the pre-trained model"). One base model
in memory then serves many tasks: load an adapter, answer, load another (notebook 05).

The folder is the one PEFT writes and reads, so it moves freely between this course and
``peft.PeftModel.from_pretrained(base, folder)``::

    folder/
      adapter_config.json          {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": [...], ...}
      adapter_model.safetensors    base_model.model.<module name>.lora_A.weight   (r, in_features)
                                   base_model.model.<module name>.lora_B.weight   (out_features, r)

The ``base_model.model.`` prefix is PEFT's: its wrapper (``PeftModel``) holds a ``LoraModel``
(``base_model``) that holds the original model (``model``). Weights are read with ``safetensors``
only, never with ``torch.load`` (which can run code hidden in a pickle).

Writing is atomic (a temporary folder renamed into place), and an existing folder is replaced only
when asked. Loading checks the adapter against the model first and names any mismatch: another
base model (layer names or shapes differ), another rank, other targets, another alpha.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from pathlib import Path

import torch
from torch import nn

from lora_edu.inject import inject_lora, lora_layers
from lora_edu.lora import LoRAConfig

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # PeftModel -> LoraModel (.base_model) -> your model (.model)


class AdapterMismatchError(ValueError):
    """An adapter does not fit the model it is loaded into; the message names the difference."""


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's LoRA matrices under PEFT's key names (detached, contiguous, on the CPU)."""
    layers = _layers_or_error(model)
    state = {}
    for name, layer in layers.items():
        state[f"{PEFT_PREFIX}{name}.lora_A.weight"] = layer.lora_A.detach().cpu().contiguous()  # (r, k)
        state[f"{PEFT_PREFIX}{name}.lora_B.weight"] = layer.lora_B.detach().cpu().contiguous()  # (d, r)
    return state


def adapter_config_dict(model: nn.Module, base_model_name: str | None = None) -> dict[str, object]:
    """``adapter_config.json`` for the model's LoRA layers, in PEFT's field names."""
    config = _config_of(model)
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name,
        "r": config.r,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": sorted(config.target_modules),
        "use_rslora": config.use_rslora,
        "init_lora_weights": True if config.init == "kaiming" else "gaussian",
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "inference_mode": True,
    }


def save_adapter(
    model: nn.Module, folder: str | os.PathLike, overwrite: bool = False, base_model_name: str | None = None
) -> Path:
    """Write the model's adapter to ``folder`` in PEFT's format; return the folder's path.

    Args:
        overwrite: replace an existing non-empty folder (default: refuse).
        base_model_name: recorded as ``base_model_name_or_path`` (e.g. a Hugging Face id).

    Raises:
        FileExistsError: ``folder`` exists, is not empty, and ``overwrite`` is False.
        ValueError: the model has no LoRA layers, or some are merged (unmerge first).
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    layers = _layers_or_error(model)
    merged = [name for name, layer in layers.items() if layer.merged]
    if merged:
        raise ValueError(f"{len(merged)} LoRA layers are merged (e.g. {merged[0]}); call unmerge_lora(model) before saving")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not overwrite:
        raise FileExistsError(f"{folder} already exists and is not empty; pass overwrite=True to replace it")
    config = adapter_config_dict(model, base_model_name)
    metadata = {"format": "pt", "lora_edu_base": json.dumps(_fingerprint(model))}

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file(adapter_state_dict(model), tmp / WEIGHTS_NAME, metadata=metadata)
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        if folder.exists():
            stale = folder.parent / f".{folder.name}.stale-{uuid.uuid4().hex[:8]}"
            os.replace(folder, stale)
            os.replace(tmp, folder)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def read_adapter_config(folder: str | os.PathLike) -> LoRAConfig:
    """The :class:`LoRAConfig` an adapter folder was saved with (ours or PEFT's)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} an adapter folder (saved with save_adapter)?")
    raw = json.loads(path.read_text())
    if raw.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{path} is a {raw.get('peft_type')} adapter; only LoRA adapters can be loaded")
    if raw.get("use_dora"):
        raise ValueError(f"{path} is a DoRA adapter; this loader reads plain LoRA only")
    if raw.get("rank_pattern") or raw.get("alpha_pattern"):
        raise ValueError(f"{path} gives some layers their own rank or alpha (rank_pattern/alpha_pattern); not supported here")
    targets = raw.get("target_modules")
    if isinstance(targets, str) or not targets:
        raise ValueError(f"{path}: target_modules must be a list of module names, got {targets!r}")
    init = raw.get("init_lora_weights", True)
    return LoRAConfig(
        r=int(raw["r"]),
        alpha=float(raw.get("lora_alpha", 8)),
        dropout=float(raw.get("lora_dropout", 0.0)),
        target_modules=tuple(sorted(targets)),
        init="gaussian" if init == "gaussian" else "kaiming",
        use_rslora=bool(raw.get("use_rslora", False)),
    )


def load_adapter(model: nn.Module, folder: str | os.PathLike) -> nn.Module:
    """Load an adapter into ``model`` (in place) and return the model.

    A model without LoRA layers gets them first (:func:`inject_lora` with the saved config); a
    model that has them must match the adapter's targets, rank and alpha, and its weights are
    replaced: this is how one base model swaps between tasks. The base weights are never touched.

    Raises:
        AdapterMismatchError: another base model (a layer is missing or has other shapes), another
            rank, other target modules, or another alpha / scaling; the message names it.
        ValueError: some LoRA layers are merged (unmerge first).
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_adapter_config(folder)
    weights_path = folder / WEIGHTS_NAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path} not found (an adapter folder holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    with safe_open(str(weights_path), "pt") as f:
        saved_base = json.loads((f.metadata() or {}).get("lora_edu_base", "null"))
    state = load_file(str(weights_path))  # safetensors: plain tensors, no pickle
    pairs = _pairs(state, weights_path)

    _check_base(model, saved_base, pairs)
    layers = lora_layers(model)
    if layers:
        _check_same_lora(layers, config, pairs)
    else:
        inject_lora(model, config)
        layers = lora_layers(model)
        missing = sorted(set(layers) - set(pairs))
        if missing:
            raise AdapterMismatchError(
                f"the adapter has no weights for {len(missing)} layers its targets match, e.g. {missing[0]}: "
                "it was saved from a model with other layers"
            )
    with torch.no_grad():
        for name, (lora_a, lora_b) in pairs.items():
            layers[name].lora_A.copy_(lora_a)
            layers[name].lora_B.copy_(lora_b)
    return model


def base_fingerprint(model: nn.Module) -> str:
    """A SHA-256 of every non-LoRA weight's bytes, in model order: equal fingerprints, identical base.

    Module names are left out, so wrapping a layer in LoRA (``q_proj`` -> ``q_proj.base``) does not
    change the fingerprint; changing any base weight by one bit does.
    """
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        if ".lora_" not in f".{name}":
            digest.update(str(tuple(param.shape)).encode())
            digest.update(param.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def adapter_size(folder: str | os.PathLike) -> int:
    """Bytes on disk of an adapter folder (all its files)."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


# ----------------------------------------------------------------------------- checks


def _layers_or_error(model: nn.Module) -> dict:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA layers; call inject_lora(model, config) first")
    return layers


def _config_of(model: nn.Module) -> LoRAConfig:
    """The single LoRAConfig shared by the model's LoRA layers (an error if they differ)."""
    layers = _layers_or_error(model)
    settings = {(lay.r, lay.alpha, lay.dropout, lay.init, lay.use_rslora) for lay in layers.values()}
    if len(settings) > 1:
        raise ValueError(f"the model's LoRA layers differ in (r, alpha, dropout, init, rslora): {sorted(settings)}")
    r, alpha, dropout, init, use_rslora = settings.pop()
    targets = tuple(sorted({name.rsplit(".", 1)[-1] for name in layers}))
    return LoRAConfig(r=r, alpha=alpha, dropout=dropout, target_modules=targets, init=init, use_rslora=use_rslora)


def _fingerprint(model: nn.Module) -> dict[str, object]:
    config = getattr(model, "config", None)
    keys = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size")
    return {k: getattr(config, k, None) for k in keys}


def _pairs(state: dict[str, torch.Tensor], path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module name -> (lora_A, lora_B) from PEFT-style keys."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        if not key.startswith(PEFT_PREFIX) or not key.endswith((".lora_A.weight", ".lora_B.weight")):
            raise AdapterMismatchError(f"{path} holds {key!r}, which is not a LoRA weight under PEFT's key names")
        module, part = key[len(PEFT_PREFIX) :].rsplit(".", 2)[:2]
        found.setdefault(module, {})[part] = tensor
    pairs = {}
    for module, parts in found.items():
        if set(parts) != {"lora_A", "lora_B"}:
            raise AdapterMismatchError(f"{path}: {module} has {sorted(parts)} but needs both lora_A and lora_B")
        pairs[module] = (parts["lora_A"], parts["lora_B"])
    if not pairs:
        raise AdapterMismatchError(f"{path} holds no LoRA weights")
    return pairs


def _check_base(model: nn.Module, saved_base: dict | None, pairs: dict) -> None:
    """Every adapted layer must exist in the model with the adapter's shapes."""
    if saved_base:
        here = _fingerprint(model)
        diff = [
            f"{key}: adapter {saved!r}, model {here.get(key)!r}"
            for key, saved in saved_base.items()
            if saved is not None and here.get(key) is not None and saved != here.get(key)
        ]
        if diff:
            raise AdapterMismatchError("the adapter was trained on another base model (" + "; ".join(diff) + ")")
    modules = dict(model.named_modules())
    for name, (lora_a, lora_b) in pairs.items():
        module = modules.get(name)
        if module is None:
            raise AdapterMismatchError(
                f"the adapter has weights for {name}, which this model does not have: it was trained on another base model"
            )
        k, d = getattr(module, "in_features", None), getattr(module, "out_features", None)
        if lora_a.dim() != 2 or lora_b.dim() != 2 or lora_a.shape[0] != lora_b.shape[1]:
            raise AdapterMismatchError(f"{name}: lora_A {tuple(lora_a.shape)} and lora_B {tuple(lora_b.shape)} do not form B A")
        if (lora_a.shape[1], lora_b.shape[0]) != (k, d):
            raise AdapterMismatchError(
                f"{name} maps {lora_a.shape[1]} -> {lora_b.shape[0]} features in the adapter but {k} -> {d} in this "
                "model: the adapter was trained on another base model"
            )


def _check_same_lora(layers: dict, config: LoRAConfig, pairs: dict) -> None:
    """A model that already has LoRA layers must have them where the adapter does, with its r and alpha."""
    if set(layers) != set(pairs):
        here = sorted({n.rsplit(".", 1)[-1] for n in layers})
        there = sorted({n.rsplit(".", 1)[-1] for n in pairs})
        detail = (f"the adapter targets {there}, the model's LoRA layers are on {here}" if here != there
                  else f"same names ({here}) but other layers, e.g. {sorted(set(layers) ^ set(pairs))[0]}")
        raise AdapterMismatchError(f"target modules differ: {detail}. Load it into a fresh base model instead")
    for name, layer in layers.items():
        r_saved = pairs[name][0].shape[0]
        if layer.r != r_saved:
            raise AdapterMismatchError(
                f"rank differs: the adapter has r={r_saved} ({name}), the model's LoRA layers r={layer.r}. "
                "Load it into a fresh base model instead"
            )
    if not math.isclose(layer.scaling, config.scaling):
        raise AdapterMismatchError(
            f"scaling differs: the adapter has alpha={config.alpha:g}{' (rsLoRA)' if config.use_rslora else ''}, "
            f"the model's LoRA layers alpha={layer.alpha:g}{' (rsLoRA)' if layer.use_rslora else ''}. "
            "Load it into a fresh base model instead"
        )
    merged = [n for n, lay in layers.items() if lay.merged]
    if merged:
        raise ValueError(f"{len(merged)} LoRA layers are merged (e.g. {merged[0]}); call unmerge_lora(model) before loading")
