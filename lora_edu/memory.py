"""Memory accounting for fine-tuning: where the bytes go, estimated from the model's shape.

Training memory has four parts (Rajbhandari et al., 2019, "ZeRO", arXiv:1910.02054, §3):

    weights     the model itself                         N x 2 bytes in 16-bit, N x 4 in fp32
    gradients   one per *trainable* weight               same dtype as the weights
    optimizer   AdamW keeps two moments (m, v) per       2 x 4 bytes (fp32 states)
                trainable weight; mixed precision adds
                an fp32 master copy of the weights       4 bytes
    activations what the forward pass keeps for backward grows with batch x sequence length

Mixed-precision AdamW therefore needs 2 + 2 + 4 + 4 + 4 = 16 bytes per trainable parameter before
activations (ZeRO §3.1: "16Ψ"), so a 7B-parameter full fine-tune needs about 112 GB. LoRA
(Hu et al., 2021, arXiv:2106.09685, §4.2) freezes the base: its weights stay, but its gradients,
moments and master copy vanish; only the adapters' r(d + k) parameters pay the 16 bytes. QLoRA
(Dettmers et al., 2023, arXiv:2305.14314, §3) also stores the frozen base in 4-bit NF4: half a
byte per weight, plus one absmax constant per block of 64 weights (32/64 = 0.5 bits per weight, or
8/64 + 32/(64·256) = 0.127 bits with double quantization).

**Activations.** We count the tensors autograd saves for backward, the bookkeeping of Korthikanti
et al., 2022 ("Reducing Activation Recomputation in Large Transformer Models", arXiv:2205.05198,
§4), whose GPT block with dropout gives ``s b h (34 + 5 a s / h)`` bytes per layer in 16-bit.
We apply the same bookkeeping to a Llama block as PyTorch runs it (SDPA attention, SwiGLU MLP,
RMSNorm computed in fp32, no dropout). Per token and layer, in values of the activation dtype:

    2 norms       input x (fp32) + 1 fp32 rstd each; normalised x̂ (h) only if the norm weight trains
    attention     input (h, if q/k/v train) + Q (h) + K, V (2 kv) + output O (h) + logsumexp (a, fp32)
                  eager attention keeps the softmax probabilities (a·s) instead of O and logsumexp
    MLP (SwiGLU)  input (h, if gate/up train) + gate, SiLU(gate), up (3 i) + down's input (i, if down trains)
    LoRA          each adapted layer keeps A x (r)

plus, once: the final norm, the output layer's input (h, if it trains), the fp32 log-softmax of the
logits (vocabulary V per token, usually the largest single tensor of a small model), the rotary
tables and the token ids. Frozen layers need not keep their inputs (no weight gradient), which is
why LoRA saves a little activation memory, but every layer still keeps what the gradient needs to
flow *through* it. Gradient checkpointing keeps only each layer's input (``2 s b h L`` bytes in 16-bit, Korthikanti's
"full recomputation") and recomputes one layer at a time during backward: memory for one extra forward.

For PyTorch on the CPU this count is exact: tests/test_memory.py compares it byte for byte with the
tensors autograd really saves (fp32 and bf16, SDPA and eager attention, full fine-tune, LoRA, QLoRA),
counted by :func:`lora_edu.measure.measure_training_memory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from torch import nn

METHODS = ("full", "lora", "qlora")
PRECISIONS = ("fp32", "mixed", "bf16")  # mixed: 16-bit weights/grads + fp32 master; bf16: everything 16-bit
OPTIMIZERS = {"adamw": 2, "sgd-momentum": 1, "sgd": 0}  # state tensors per trainable parameter
ATTENTIONS = ("sdpa", "eager")
PARTS = ("weights", "adapters", "quant_constants", "gradients", "master_weights", "optimizer_states", "activations")


# ----------------------------------------------------------------------------- model shapes


@dataclass(frozen=True)
class ModelShape:
    """The shape of a decoder-only transformer: enough to count parameters and bytes, no weights.

    ``mlp="swiglu"`` is the Llama/Mistral block (gate, up, down); ``"gelu"`` the GPT block (up, down).
    """

    name: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    mlp: str = "swiglu"
    norm: str = "rmsnorm"
    tie_embeddings: bool = False
    bias: bool = False
    learned_positions: int = 0  # rows of a learned position table (GPT-3: its 2048-token context)
    source: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"ModelShape.{f.name} must be a non-negative int, got {value!r}")
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
                     "head_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelShape.{name} must be at least 1")
        if self.mlp not in ("swiglu", "gelu") or self.norm not in ("rmsnorm", "layernorm"):
            raise ValueError("mlp must be 'swiglu' or 'gelu', norm 'rmsnorm' or 'layernorm'")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")

    @property
    def kv_size(self) -> int:
        """Width of k_proj and v_proj outputs: num_kv_heads x head_dim (grouped-query attention)."""
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer in one block, by PEFT/Llama name."""
        h, q, kv, i = self.hidden_size, self.num_heads * self.head_dim, self.kv_size, self.intermediate_size
        shapes = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h)}
        if self.mlp == "swiglu":
            shapes["gate_proj"] = (h, i)
        return shapes | {"up_proj": (h, i), "down_proj": (i, h)}

    @property
    def linear_params(self) -> int:
        """Weights (no biases) of all linear layers in all blocks: what QLoRA quantizes."""
        return self.num_layers * sum(k * d for k, d in self.linear_shapes().values())

    @property
    def num_params(self) -> int:
        """Every parameter; a tied output head counts once (as ``model.parameters()`` does)."""
        h = self.hidden_size
        norm = h * (2 if self.norm == "layernorm" else 1)  # LayerNorm has a bias too
        biases = sum(d for _, d in self.linear_shapes().values()) if self.bias else 0
        embeddings = self.vocab_size * h * (1 if self.tie_embeddings else 2) + self.learned_positions * h
        return embeddings + self.linear_params + self.num_layers * (2 * norm + biases) + norm

    @classmethod
    def from_config(cls, config: Any, name: str | None = None) -> ModelShape:
        """The shape of a Llama-family transformers config (Llama, Mistral, Qwen2, SmolLM2, ...)."""
        try:
            h, heads = int(config.hidden_size), int(config.num_attention_heads)
            kv = int(getattr(config, "num_key_value_heads", None) or heads)
            return cls(
                name=name or str(getattr(config, "name_or_path", "")).rstrip("/").rsplit("/", 1)[-1]
                or getattr(config, "model_type", "model"),
                vocab_size=int(config.vocab_size), hidden_size=h, intermediate_size=int(config.intermediate_size),
                num_layers=int(config.num_hidden_layers), num_heads=heads, num_kv_heads=kv,
                head_dim=int(getattr(config, "head_dim", None) or h // heads),
                tie_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
                bias=bool(getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False)),
            )
        except AttributeError as err:
            raise TypeError(
                f"{type(config).__name__} is not a Llama-style config (hidden_size, intermediate_size, "
                f"num_hidden_layers, num_attention_heads, vocab_size); missing: {err}"
            ) from None

    @classmethod
    def llama_like(cls, num_params: float, vocab_size: int = 32000) -> ModelShape:
        """A made-up Llama-proportioned shape with ``num_params`` parameters (to a fraction of a percent).

        Llama keeps hidden_size about 128 x num_layers and intermediate_size about 8/3 hidden_size, so
        a block holds about 12 h^2 weights. We solve for the depth, then h (in steps of the head size),
        then pick the MLP width that makes the total come out right.
        """
        if isinstance(num_params, bool) or not isinstance(num_params, (int, float)) or not num_params >= 1e7:
            raise ValueError(f"a model size must be a number of parameters >= 1e7, got {num_params!r}")
        layers = max(2, round((num_params / (12 * 128**2)) ** (1 / 3)))
        a, b = 12 * layers, 2 * vocab_size  # 12 L h^2 + 2 V h = num_params
        head = 64 if num_params < 2e9 else 128
        h = max(head, head * round((-b + math.sqrt(b * b + 4 * a * num_params)) / (2 * a) / head))
        rest = num_params - 2 * vocab_size * h - layers * (4 * h * h + 2 * h) - h  # left for the MLPs
        i = max(head, round(rest / (3 * h * layers)))
        return cls(f"llama-like {num_params / 1e9:.3g}B", vocab_size, h, i, layers, h // head, h // head, head,
                   source="made-up Llama proportions")


def _smollm2() -> ModelShape:
    from lora_edu.models import SMOLLM2_135M as c

    return ModelShape(
        "smollm2-135m", c["vocab_size"], c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"],
        c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], tie_embeddings=c["tie_word_embeddings"],
        source="Allal et al., 2025, arXiv:2502.02737; config.json of HuggingFaceTB/SmolLM2-135M",
    )


PRESETS: dict[str, ModelShape] = {
    "smollm2-135m": _smollm2(),
    "mistral-7b": ModelShape(
        "mistral-7b", 32000, 4096, 14336, 32, 32, 8, 128,
        source="Jiang et al., 2023, arXiv:2310.06825, Table 1; config.json of mistralai/Mistral-7B-v0.1",
    ),
    "llama-65b": ModelShape(
        "llama-65b", 32000, 8192, 22016, 80, 64, 64, 128,
        source="Touvron et al., 2023, arXiv:2302.13971, Table 2 (FFN 22016 = 2/3 x 4 x 8192 rounded up to a "
               "multiple of 256, as in the released code)",
    ),
    "gpt3-175b": ModelShape(
        "gpt3-175b", 50257, 12288, 4 * 12288, 96, 96, 96, 128, mlp="gelu", norm="layernorm",
        tie_embeddings=True, bias=True, learned_positions=2048,
        source="Brown et al., 2020, arXiv:2005.14165, Table 2.1 (GPT-2's 50257-token vocabulary, 4 x d_model FFN)",
    ),
}


def model_shape(model: Any) -> ModelShape:
    """A :class:`ModelShape` from a preset name, a parameter count, a transformers config or a model."""
    if isinstance(model, ModelShape):
        return model
    if isinstance(model, str):
        if model not in PRESETS:
            raise ValueError(f"unknown model preset {model!r}; presets: {', '.join(PRESETS)} "
                             "(or pass a parameter count such as 7e9, a transformers config or a model)")
        return PRESETS[model]
    if isinstance(model, (int, float)) and not isinstance(model, bool):
        return ModelShape.llama_like(model)
    if isinstance(model, nn.Module):
        if not hasattr(model, "config"):
            raise TypeError("the model has no .config; pass a Hugging Face model, its config, or a preset name")
        return ModelShape.from_config(model.config)
    if hasattr(model, "hidden_size"):
        return ModelShape.from_config(model)
    raise TypeError(f"model must be a preset name, a parameter count, a config or a model, got {type(model).__name__}")


# ----------------------------------------------------------------------------- the breakdown


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes of a training setup by part; ``total`` is their sum. Renders as a table in a notebook.

    ``peak_allocated`` is only set by :func:`measure_training_memory` on CUDA
    (``torch.cuda.max_memory_allocated``: everything, including temporary buffers).
    """

    weights: int = 0
    adapters: int = 0
    quant_constants: int = 0
    gradients: int = 0
    master_weights: int = 0
    optimizer_states: int = 0
    activations: int = 0
    label: str = ""
    num_params: int = 0
    trainable_params: int = 0
    peak_allocated: int | None = field(default=None, compare=False)

    @property
    def parts(self) -> dict[str, int]:
        """The seven parts in bytes, in a fixed order."""
        return {name: getattr(self, name) for name in PARTS}

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def model_states(self) -> int:
        """Everything but activations: weights, adapters, constants, gradients, master copy, optimizer."""
        return self.total - self.activations

    def table(self) -> str:
        """A plain-text table of the parts, with readable units and shares of the total."""
        rows = [(name.replace("_", " "), n) for name, n in self.parts.items()] + [("total", self.total)]
        lines = [self.label] if self.label else []
        lines += [f"{name:<18}{format_bytes(n):>11}{n / max(self.total, 1):>8.1%}" for name, n in rows]
        if self.peak_allocated is not None:
            lines.append(f"{'CUDA peak':<18}{format_bytes(self.peak_allocated):>11}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{n.replace('_', ' ')}</td><td>{format_bytes(b)}</td><td>{b / max(self.total, 1):.1%}"
                       f"</td></tr>" for n, b in self.parts.items())
        peak = "" if self.peak_allocated is None else (
            f"<tr><td>CUDA peak allocated</td><td>{format_bytes(self.peak_allocated)}</td><td></td></tr>")
        return (f"<table><caption>{self.label}</caption><tr><th>part</th><th>bytes</th><th>share</th></tr>{body}"
                f"<tr><th>total</th><th>{format_bytes(self.total)}</th><th></th></tr>{peak}</table>")


def format_bytes(n: float) -> str:
    """Decimal units, as the papers quote them: ``format_bytes(112e9) == '112.0 GB'``."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


# ----------------------------------------------------------------------------- the estimate


def estimate_training_memory(
    model: Any = "mistral-7b",
    method: str = "full",
    precision: str = "mixed",
    optimizer: str = "adamw",
    r: int = 8,
    targets: tuple[str, ...] | str = ("q_proj", "v_proj"),
    batch_size: int = 1,
    seq_len: int = 512,
    gradient_checkpointing: bool = False,
    *,
    optimizer_bits: int | None = None,
    double_quant: bool = True,
    block_size: int = 64,
    attention: str = "sdpa",
) -> MemoryBreakdown:
    """Estimate the memory of one training step, part by part (see the module docstring).

    Args:
        model: a preset name (``"smollm2-135m"``, ``"mistral-7b"``, ``"llama-65b"``, ``"gpt3-175b"``),
            a parameter count (``7e9``: a Llama-proportioned shape), a transformers config, or a model.
        method: ``"full"`` fine-tune, ``"lora"`` (frozen base in the training dtype) or ``"qlora"``
            (frozen base in NF4, the adapters in the training dtype).
        precision: ``"fp32"``; ``"mixed"`` (16-bit weights and gradients, fp32 master weights and
            fp32 optimizer states, ZeRO's split; keeping fp32 adapters and casting on the fly, as
            PEFT does, moves bytes between rows but gives the same total); ``"bf16"`` (everything
            16-bit, optimizer states too, as ``torch.optim`` does for a bf16 model).
        optimizer: ``"adamw"`` (2 states), ``"sgd-momentum"`` (1) or ``"sgd"`` (0).
        r, targets: LoRA rank and the layer names it adapts (``"all-linear"`` for every projection).
        batch_size, seq_len: sequences per step and tokens per sequence.
        gradient_checkpointing: keep only each layer's input, recompute the rest in backward.
        optimizer_bits: override the optimizer states' width: 32, 16 or 8 (8-bit Adam).
        double_quant, block_size: QLoRA's constants: one absmax per ``block_size`` weights,
            themselves quantized to 8 bits in blocks of 256 when ``double_quant``.
        attention: ``"sdpa"`` (fused; keeps no a x s matrix) or ``"eager"`` (keeps the probabilities).

    Returns:
        A :class:`MemoryBreakdown` in bytes.
    """
    shape = model_shape(model)
    _check_positive_int("r", r)
    _check_choice("method", method, METHODS)
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
    _check_choice("attention", attention, ATTENTIONS)
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len), ("block_size", block_size)):
        _check_positive_int(name, value)
    if optimizer_bits not in (None, 32, 16, 8):
        raise ValueError(f"optimizer_bits must be 32, 16, 8 or None (the precision's default), got {optimizer_bits!r}")
    if not isinstance(gradient_checkpointing, bool) or not isinstance(double_quant, bool):
        raise TypeError("gradient_checkpointing and double_quant must be True or False")

    p = 4 if precision == "fp32" else 2  # bytes of a weight / gradient / activation value
    state = (optimizer_bits or (16 if precision == "bf16" else 32)) // 8  # bytes per optimizer state value
    n_states = OPTIMIZERS[optimizer]
    master = 4 if precision == "mixed" else 0
    n = shape.num_params
    label = f"{shape.name}, {method}, {precision}, {optimizer}"

    if method == "full":
        act = activation_bytes(shape, batch_size, seq_len, p, full=True, attention=attention,
                               gradient_checkpointing=gradient_checkpointing)
        return MemoryBreakdown(weights=p * n, gradients=p * n, master_weights=master * n,
                               optimizer_states=n_states * state * n, activations=act, label=label,
                               num_params=n, trainable_params=n)

    targets_set = _check_targets(shape, targets, r)
    n_adapters = lora_param_count_of(shape, r, targets_set)
    base, constants = p * n, 0
    if method == "qlora":
        dense = n - shape.linear_params  # embeddings, norms (and biases) stay in the training dtype
        base, constants = p * dense, 0
        for k, d in shape.linear_shapes().values():
            codes, consts = _nf4_bytes(k * d, block_size, double_quant)
            base += shape.num_layers * codes
            constants += shape.num_layers * consts
    act = activation_bytes(shape, batch_size, seq_len, p, full=False, targets=targets_set, r=r,
                           attention=attention, gradient_checkpointing=gradient_checkpointing)
    return MemoryBreakdown(
        weights=base, adapters=p * n_adapters, quant_constants=constants, gradients=p * n_adapters,
        master_weights=master * n_adapters, optimizer_states=n_states * state * n_adapters, activations=act,
        label=f"{label}, r={r}", num_params=n + n_adapters, trainable_params=n_adapters,
    )


def lora_param_count_of(shape: ModelShape | Any, r: int, targets: tuple[str, ...] | set[str] | str) -> int:
    """Trainable LoRA parameters of a whole model: r (d + k) per adapted layer, summed over blocks."""
    shape = model_shape(shape)
    chosen = _check_targets(shape, targets, r)
    return shape.num_layers * sum(r * (k + d) for name, (k, d) in shape.linear_shapes().items() if name in chosen)


def checkpoint_bytes(model: Any, method: str = "full", r: int = 8,
                     targets: tuple[str, ...] | str = ("q_proj", "v_proj"), bytes_per_value: int = 2) -> int:
    """Bytes of what a fine-tune saves: every weight (full) or only the adapters (LoRA, QLoRA)."""
    _check_choice("method", method, METHODS)
    _check_positive_int("bytes_per_value", bytes_per_value)
    shape = model_shape(model)
    n = shape.num_params if method == "full" else lora_param_count_of(shape, r, targets)
    return n * bytes_per_value


def activation_bytes(shape: ModelShape, batch_size: int, seq_len: int, bytes_per_value: int = 2, *,
                     full: bool = True, targets: set[str] | None = None, r: int = 0, attention: str = "sdpa",
                     gradient_checkpointing: bool = False) -> int:
    """Bytes autograd keeps for backward in one step (the formula in the module docstring).

    ``full`` means every weight trains; otherwise only LoRA adapters of rank ``r`` on ``targets``.
    With LoRA the first block keeps less: before its first adapter nothing needs a gradient yet.
    """
    h, p, f32 = shape.hidden_size, bytes_per_value, 4
    adapted = set(shape.linear_shapes()) if full else set(targets or ())
    first, _ = _layer_bytes(shape, p, seq_len, full, adapted, r, attention, grad=full)
    later, _ = _layer_bytes(shape, p, seq_len, full, adapted, r, attention, grad=True)
    if gradient_checkpointing:  # each layer's input, plus one layer recomputed during backward
        layers = shape.num_layers * p * h + later
    else:
        layers = first + (shape.num_layers - 1) * later
    head = _norm_bytes(shape, p, full) + (p * h if full else 0) + f32 * shape.vocab_size  # norm, lm_head in, log-softmax
    ids = 8 * (2 if full else 1)  # int64 targets; the token ids too when the embedding trains
    rotary = 2 * seq_len * shape.head_dim * p if shape.learned_positions == 0 else 0  # cos and sin tables
    return batch_size * seq_len * (layers + head + ids) + rotary + f32  # + the loss normaliser


def _norm_bytes(shape: ModelShape, p: int, full: bool) -> int:
    """Per token: LayerNorm keeps its input, mean and rstd; HF's RMSNorm its fp32 input, rstd and x̂."""
    if shape.norm == "layernorm":
        return p * shape.hidden_size + 2 * 4
    return 4 * shape.hidden_size + 4 + (p * shape.hidden_size if full else 0)


def _layer_bytes(shape: ModelShape, p: int, s: int, full: bool, adapted: set[str], r: int, attention: str,
                 grad: bool) -> tuple[int, bool]:
    """Bytes per token one block keeps, walking it in forward order.

    ``grad`` says whether the block's input already needs a gradient; parts that only serve to pass
    the gradient further back are kept only once it does (after the first adapted layer).
    """
    h, i, kv, a = shape.hidden_size, shape.intermediate_size, shape.kv_size, shape.num_heads
    q = a * shape.head_dim
    total = 0

    def linear_inputs(names: tuple[str, ...], width: int) -> int:  # what the adapted / trained layers keep
        hit = [n for n in names if n in adapted]
        return (p * width if hit else 0) + (0 if full else p * r * len(hit))

    total += _norm_bytes(shape, p, full) if grad else 0
    total += linear_inputs(("q_proj", "k_proj", "v_proj"), h)
    q_grad, k_grad, v_grad = (grad or name in adapted for name in ("q_proj", "k_proj", "v_proj"))
    if attention == "sdpa":  # one fused op keeps Q, K, V, its output O and the fp32 logsumexp
        core = q_grad or k_grad or v_grad
        total += p * (q + 2 * kv + q) + 4 * a if core else 0
        total += linear_inputs(("o_proj",), q) - (p * q if core and "o_proj" in adapted else 0)  # O is a view
    else:  # eager: K and V repeated to all heads, the a x s probabilities (fp32 softmax + 16-bit copy)
        probs_grad = q_grad or k_grad
        total += p * q * (q_grad + k_grad) + (4 * a * s + p * q if probs_grad else 0)  # K, Q; softmax, V
        total += ((p if p != 4 else 4 * (not probs_grad)) * a * s) if v_grad else 0  # probabilities for V's grad
        total += linear_inputs(("o_proj",), q)  # o_proj's input is a contiguous copy
    grad = q_grad or k_grad or v_grad or "o_proj" in adapted
    total += _norm_bytes(shape, p, full) if grad else 0
    if shape.mlp == "swiglu":
        total += linear_inputs(("gate_proj", "up_proj"), h)
        gate_grad, up_grad = grad or "gate_proj" in adapted, grad or "up_proj" in adapted
        total += p * i * (2 * gate_grad + up_grad)  # SiLU's input and up's output; SiLU's output
        grad = gate_grad or up_grad
    else:
        total += linear_inputs(("up_proj",), h)
        grad = grad or "up_proj" in adapted
        total += p * i if grad else 0  # GELU's input
    total += linear_inputs(("down_proj",), i)
    return total, grad or "down_proj" in adapted


# ----------------------------------------------------------------------------- helpers


def _nf4_bytes(numel: int, block_size: int, double_quant: bool) -> tuple[int, int]:
    """(packed 4-bit codes, constants) of one quantized weight (QLoRA §3; bitsandbytes' layout)."""
    blocks = math.ceil(numel / block_size)
    if double_quant:  # 8-bit absmax codes + one fp32 constant per 256 of them + the fp32 mean subtracted
        return math.ceil(numel / 2), blocks + 4 * math.ceil(blocks / 256) + 4
    return math.ceil(numel / 2), 4 * blocks


def _check_targets(shape: ModelShape, targets: Any, r: int) -> set[str]:
    _check_positive_int("r", r)
    names = shape.linear_shapes()
    if targets == "all-linear":
        targets = tuple(names)
    elif isinstance(targets, str):
        targets = (targets,)
    chosen = set(targets)
    unknown = chosen - set(names)
    if not chosen or unknown:
        raise ValueError(f"targets must name layers of {shape.name}: {', '.join(names)} (or 'all-linear'); "
                         f"got {sorted(unknown) or 'none'}")
    for name in chosen:
        k, d = names[name]
        if r > min(k, d):
            raise ValueError(f"r={r} is larger than {name}'s smaller side ({k} -> {d}); use r <= {min(k, d)}")
    return chosen


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
