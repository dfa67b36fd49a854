"""Checkers for notebook 03 (LoRA from scratch): counting adapters, the zero-zero init, merging by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lora_edu.exercises._feedback import Feedback, answered, numeric_answer, right, wrong
from lora_edu.models import SMOLLM2_135M

_C = SMOLLM2_135M
_D = _C["hidden_size"]
_KV = _C["num_key_value_heads"] * _C["head_dim"]
_BLOCKS = _C["num_hidden_layers"]
# (d, k) = (out, in) of the four attention projections
_ATTENTION = {"q_proj": (_D, _D), "k_proj": (_KV, _D), "v_proj": (_KV, _D), "o_proj": (_D, _D)}


def _lora_count(r: int, names=tuple(_ATTENTION)) -> int:
    return _BLOCKS * sum(r * (d + k) for d, k in (_ATTENTION[n] for n in names))


@numeric_answer
def check_trainable_count(value: float) -> Feedback:
    """Exercise 03.1: trainable parameters of LoRA with r = 16 on q, k, v and o_proj of SmolLM2-135M (all blocks)."""
    expected = _lora_count(16)
    if value == expected:
        return right(
            f"{expected:,} = 30 blocks x 16 x [(576+576) + (192+576) + (192+576) + (576+576)]: "
            f"about {expected / 134.5e6:.1%} of the model."
        )
    if value == expected // _BLOCKS:
        return wrong("that is one block; every one of the 30 blocks gets its own adapters.")
    if value == _BLOCKS * 16 * 4 * (_D + _D):
        return wrong("k_proj and v_proj are 576 -> 192 (grouped-query attention), not 576 -> 576.")
    if value == expected // 2:  # also the r = 8 count
        return wrong(
            "that is half the answer: either r = 8 instead of 16, or one of the two factors only "
            "(each adapter has A (r x k) and B (d x r), r(d + k) in all)."
        )
    if value == _BLOCKS * sum(d * k for d, k in _ATTENTION.values()):
        return wrong("that is the frozen weights W0 themselves (d x k each); LoRA trains r(d + k) per layer.")
    return wrong("per layer LoRA trains r(d + k) numbers (B: d x r, A: r x k); add the four layers, times 30 blocks.")


_BOTH_ZERO_OPTIONS = {
    "a": "the model's output changes at initialisation",
    "b": "both gradients are zero at every step, so nothing ever trains",
    "c": "training diverges because the update explodes",
    "d": "only B trains, A stays at zero",
}


@answered
def check_both_zero(answer: object) -> Feedback:
    """Exercise 03.2: what goes wrong when A and B both start at zero? One letter, a-d."""
    if not isinstance(answer, str) or answer.strip().lower().strip("()") not in _BOTH_ZERO_OPTIONS:
        return wrong(f"answer with one letter among {', '.join(_BOTH_ZERO_OPTIONS)} (a string, e.g. 'a').")
    letter = answer.strip().lower().strip("()")
    if letter == "b":
        return right(
            "dL/dA = s B^T (dL/dh) x^T is zero because B = 0, and dL/dB = s (dL/dh) (A x)^T is zero because "
            "A = 0. Gradient descent then never leaves (0, 0): a saddle point. That is why A starts random."
        )
    hints = {
        "a": "B A = 0 either way, so the output at initialisation is the base model's exactly, just as with B = 0 alone.",
        "c": "nothing moves at all: look at both gradient formulas with A = 0 and B = 0.",
        "d": "B's gradient is s (dL/dh) (A x)^T; with A = 0 the vector A x is zero, so B's gradient is zero too.",
    }
    return wrong(hints[letter])


@answered
def check_merge(answer: object) -> Feedback:
    """Exercise 03.3: a function ``merge(W0, A, B, alpha, r) -> W'`` that returns ``W0 + (alpha / r) B A``."""
    if not callable(answer):
        return wrong(f"pass the function itself (e.g. `my_merge`, without calling it), got {type(answer).__name__}.")
    fn: Callable = answer
    gen = torch.Generator().manual_seed(0)
    d, k, r, alpha = 12, 20, 4, 8.0
    W0 = torch.randn(d, k, generator=gen)
    A = torch.randn(r, k, generator=gen)
    B = torch.randn(d, r, generator=gen)
    W0_before = W0.clone()
    try:
        out = fn(W0.clone(), A.clone(), B.clone(), alpha, r)
    except RuntimeError as exc:
        if "shape" in str(exc) or "size" in str(exc):
            return wrong(f"a shape error ({exc}). The update is B @ A: (d x r) @ (r x k) = (d x k), not A @ B.")
        return wrong(f"your function raised {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a learner's function may raise anything
        return wrong(f"your function raised {type(exc).__name__}: {exc}")
    if not isinstance(out, torch.Tensor):
        return wrong(f"return the merged weight as a tensor, got {type(out).__name__} (did you forget `return`?).")
    if out.shape != (d, k):
        return wrong(f"the merged weight must have W0's shape {(d, k)}, got {tuple(out.shape)}.")
    expected = W0_before + (alpha / r) * B @ A
    if torch.allclose(out, expected, atol=1e-5, rtol=1e-5):
        return right("W' = W0 + (alpha/r) B A: same shape as W0, so the merged layer costs exactly what the plain one did.")
    if torch.allclose(out, W0_before + B @ A, atol=1e-5, rtol=1e-5):
        return wrong("you forgot the scaling alpha / r.")
    if torch.allclose(out, W0_before + (r / alpha) * B @ A, atol=1e-5, rtol=1e-5):
        return wrong("the scaling is alpha / r, not r / alpha.")
    if torch.allclose(out, (alpha / r) * B @ A, atol=1e-5, rtol=1e-5):
        return wrong("that is only the update ΔW; the merged weight is W0 + ΔW.")
    if torch.allclose(out, W0_before - (alpha / r) * B @ A, atol=1e-5, rtol=1e-5):
        return wrong("that subtracts the update (that is unmerge); merging adds it.")
    return wrong("return W0 + (alpha / r) * (B @ A).")
