"""A short training loop: the whole of fine-tuning, readable in one go.

No trainer framework: :func:`train` is one ``for`` loop you can read top to bottom. It trains
whatever parameters have ``requires_grad=True``: the LoRA matrices after
:func:`lora_edu.inject_lora`, or every weight for a full fine-tune. One step is::

    batch -> forward (bf16 autocast on CUDA) -> loss on the answer tokens -> backward
          -> clip the gradient norm -> AdamW step -> learning-rate schedule step

* **AdamW** (Loshchilov & Hutter, 2019, arXiv:1711.05101) keeps two running averages per trained
  number: that is why optimizer memory scales with *trainable* parameters, and why LoRA saves it.
* **Warmup then cosine decay** of the learning rate (the schedule the LoRA and QLoRA recipes use):
  a few small steps first, while Adam's averages are still noisy, then a smooth decay to the end.
* **Gradient clipping** rescales the gradient when its norm exceeds ``max_grad_norm``.
* **bf16 autocast on CUDA**: matrix products run in bfloat16, the weights (and the LoRA adapters)
  stay float32. On the CPU, float32 throughout (bf16 is often slower there).
* **Gradient checkpointing** (optional) recomputes each block's activations during backward instead
  of storing them. The known trap: PyTorch's older *re-entrant* checkpointing only tracks gradients
  when the block's *input* requires grad; with a frozen embedding it does not, so the LoRA weights
  inside silently get no gradient. We use the non-re-entrant variant (``use_reentrant=False``),
  which follows the parameters instead (PEFT's alternative fix: ``enable_input_require_grads()``).
* **Loss on the answer only**: logits are computed only at the positions that predict an answer
  token (``logits_to_keep``), which skips most of the 49k-word output layer's work.

Scoring the trained model (exact match, greedy decoding) is in :mod:`lora_edu.evaluation`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from lora_edu.data import IGNORE_INDEX, Example, collate, encode_example


@dataclass(frozen=True)
class TrainConfig:
    """How to train (validated; frozen).

    Attributes:
        steps: optimizer steps.
        batch_size: examples per step.
        lr: peak learning rate (LoRA tolerates ~10x the lr of a full fine-tune).
        warmup_steps: steps of linear warmup from ~0 to ``lr``.
        weight_decay: AdamW's decoupled weight decay (0 keeps a full fine-tune's update pure).
        max_grad_norm: clip the gradient's global norm to this (None: no clipping).
        seq_len: longest example in tokens (longer ones are an error, never cut).
        eval_every: validation loss every this many steps (0: only at the end).
        seed: seeds the order of the examples (and nothing else).
        gradient_checkpointing: recompute activations in backward to save memory.
        bf16: autocast matrix products to bfloat16 on CUDA (ignored on other devices).
        min_lr_ratio: the cosine schedule ends at ``lr * min_lr_ratio``.
        progress: show a tqdm progress bar.
    """

    steps: int = 100
    batch_size: int = 8
    lr: float = 2e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    seq_len: int = 128
    eval_every: int = 0
    seed: int = 0
    gradient_checkpointing: bool = False
    bf16: bool = True
    min_lr_ratio: float = 0.0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("warmup_steps", "eval_every", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an int >= 0, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"TrainConfig.max_grad_norm must be > 0 or None, got {self.max_grad_norm!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")


@dataclass
class History:
    """What a run measured, step by step (lists of equal length) plus a few totals."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    step_time: list[float] = field(default_factory=list)  # seconds
    tokens_per_s: list[float] = field(default_factory=list)  # non-padding tokens per second
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    trainable_params: int = 0
    state_bytes: int = 0  # weights + gradients + optimizer states, counted from the tensors
    peak_memory: int | None = None  # bytes on CUDA: the model's weights + the run's peak allocations (None off CUDA)
    total_time: float = 0.0
    device: str = "cpu"

    @property
    def mean_step_time(self) -> float:
        """Mean seconds per step, leaving out the first (warm-up) step when there are others."""
        return _mean(self.step_time[1:] or self.step_time)

    def summary(self) -> dict[str, object]:
        """The totals as a dict (for tables)."""
        return {
            "steps": len(self.step),
            "final loss": self.loss[-1] if self.loss else float("nan"),
            "final val loss": self.val_loss[-1] if self.val_loss else float("nan"),
            "trainable params": self.trainable_params,
            "s / step": self.mean_step_time,
            "tokens / s": _mean(self.tokens_per_s[1:] or self.tokens_per_s),
            "state MB": self.state_bytes / 2**20,
            "peak MB": None if self.peak_memory is None else self.peak_memory / 2**20,
            "total s": self.total_time,
        }

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine decay.

    Warmup: ``lr * (step + 1) / warmup_steps``; then ``lr * (m + (1 - m) (1 + cos(pi t)) / 2)``
    with ``t`` going from 0 to 1 over the remaining steps and ``m = min_lr_ratio``.
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.steps - config.warmup_steps)
    t = min(1.0, (step - config.warmup_steps) / decay_steps)
    m = config.min_lr_ratio
    return config.lr * (m + (1 - m) * 0.5 * (1 + math.cos(math.pi * t)))


def answer_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens of a batch (labels -100 carry no loss).

    The logit at position t predicts token t + 1, so targets are the labels shifted left by one.
    Only the positions where some row has a target are sent through the output layer.
    """
    labels = batch["labels"]  # (B, T)
    targets = labels[:, 1:]  # (B, T-1): what position t must predict
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)  # (K,) positions with a target
    if keep.numel() == 0:
        raise ValueError("the batch has no answer tokens (every label is -100)")
    out = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep, use_cache=False
    )
    logits = out.logits  # (B, K, vocab)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets[:, keep].flatten(), ignore_index=IGNORE_INDEX)


def train(
    model: nn.Module,
    tokenizer,
    examples: Sequence[Example],
    config: TrainConfig,
    val_examples: Sequence[Example] | None = None,
) -> History:
    """Train the model's ``requires_grad`` parameters on ``examples``; return the measured :class:`History`.

    The model is changed in place and left in ``eval()`` mode. On the CPU the run is deterministic
    for a fixed ``config.seed`` (and a fixed model).

    Raises:
        ValueError: no trainable parameters, no examples, or an example longer than ``config.seq_len``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "the model has no trainable parameters (all requires_grad=False); inject LoRA or unfreeze some"
        )
    if not examples:
        raise ValueError("train needs at least one example")
    device = next(model.parameters()).device
    features = [encode_example(tokenizer, ex, config.seq_len) for ex in examples]
    val_features = [encode_example(tokenizer, ex, config.seq_len) for ex in (val_examples or [])]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # fused: one kernel updates every tensor, without full-size temporaries (a big saving for a full fine-tune)
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, config) / config.lr)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda" and config.bf16
        else contextlib.nullcontext()
    )
    order = _batches(len(features), config.batch_size, config.steps, config.seed)
    history = History(trainable_params=sum(p.numel() for p in params), device=str(device))
    checkpointing_before = _is_checkpointing(model)
    if config.gradient_checkpointing and not checkpointing_before:
        _set_checkpointing(model, True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        resident = torch.cuda.memory_allocated(device)  # whatever else is on the GPU already

    bar = _progress(range(config.steps), config.progress, desc="training")
    start = time.perf_counter()
    model.train()
    try:
        for step in bar:
            t0 = time.perf_counter()
            batch = collate([features[i] for i in order[step]], pad)
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast:
                loss = answer_loss(model, batch)
            loss.backward()
            norm = (
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                if config.max_grad_norm is not None
                else torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
            )
            history.lr.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
            if step == config.steps - 1:
                history.state_bytes = _state_bytes(model, optimizer)
            optimizer.zero_grad(set_to_none=True)
            loss_value = loss.item()  # waits for the device, so the timing below is honest
            dt = time.perf_counter() - t0
            history.step.append(step + 1)
            history.loss.append(loss_value)
            history.grad_norm.append(float(norm))
            history.step_time.append(dt)
            history.tokens_per_s.append(int(batch["attention_mask"].sum()) / dt)
            due = (config.eval_every and (step + 1) % config.eval_every == 0) or step == config.steps - 1
            if val_features and due:
                history.val_step.append(step + 1)
                history.val_loss.append(_mean_loss(model, val_features, pad, config.batch_size, device, autocast))
                model.train()
            if config.progress:
                post = {"loss": f"{loss_value:.3f}", "lr": f"{history.lr[-1]:.1e}"}
                if history.val_loss:
                    post["val"] = f"{history.val_loss[-1]:.3f}"
                bar.set_postfix(post)
    finally:
        model.eval()
        if config.gradient_checkpointing and not checkpointing_before:
            _set_checkpointing(model, False)
    history.total_time = time.perf_counter() - start
    if device.type == "cuda":
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        history.peak_memory = torch.cuda.max_memory_allocated(device) - resident + weights
    return history


@torch.no_grad()
def validation_loss(
    model: nn.Module, tokenizer, examples: Sequence[Example], batch_size: int = 16, seq_len: int = 512
) -> float:
    """Mean cross-entropy per answer token over ``examples`` (teacher forcing, no generation)."""
    device = next(model.parameters()).device
    features = [encode_example(tokenizer, ex, seq_len) for ex in examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    return _mean_loss(model, features, pad, batch_size, device, autocast)


# ----------------------------------------------------------------------------- helpers


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _batches(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Example indices for every step: shuffled epochs, each example once per epoch."""
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        order += torch.randperm(n, generator=generator).tolist()
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def _mean_loss(model, features, pad, batch_size, device, autocast) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = {k: v.to(device) for k, v in collate(features[start : start + batch_size], pad).items()}
            tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            with autocast:
                total += answer_loss(model, batch).item() * tokens
            count += tokens
    return total / count


def _is_checkpointing(model: nn.Module) -> bool:
    return bool(getattr(model, "is_activation_checkpointing", False))


def _set_checkpointing(model: nn.Module, enable: bool) -> None:
    """Switch a Hugging Face model's activation (gradient) checkpointing on or off."""
    if not hasattr(model, "activation_checkpointing_enable"):
        raise TypeError(
            "gradient_checkpointing needs a Hugging Face model (activation_checkpointing_enable); "
            f"{type(model).__name__} has none"
        )
    if enable:
        # Non-re-entrant checkpointing tracks the parameters inside each block, so it works when the
        # block's input (the frozen embedding's output) does not require grad. (transformers also
        # hooks the embedding to make its output require grad: the re-entrant variant's fix.)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.activation_checkpointing_disable()
        if getattr(model, "_require_grads_hooks", None):
            model.disable_input_require_grads()


def _state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the weights, their gradients and the optimizer's states (tied weights once)."""
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size()
        if p.grad is not None:
            total += p.grad.numel() * p.grad.element_size()
    for state in optimizer.state.values():
        total += sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t) and t.dim() > 0)
    return total


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=True)
