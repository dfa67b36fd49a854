"""Checkers for notebook 02 (training few parameters): soft prompts, convolutions, and how far backward goes."""

from __future__ import annotations

from lora_edu.exercises._feedback import Feedback, answered, numeric_answer, right, wrong
from lora_edu.models import SMOLLM2_135M

_D = SMOLLM2_135M["hidden_size"]
_V = SMOLLM2_135M["vocab_size"]
METHODS = ("full", "head", "prompt", "lora")


@numeric_answer
def check_soft_prompt_params(value: float) -> Feedback:
    """Exercise 02.1: trainable parameters of a 50-token soft prompt on SmolLM2-135M."""
    expected = 50 * _D
    if value == expected:
        return right(f"50 x 576 = {expected:,}: one embedding-sized vector per virtual token, nothing else.")
    if value == 50 * _V:
        return wrong("a virtual token is not a vocabulary entry: it is one free vector of the model's width (576).")
    if value == 50:
        return wrong("each virtual token is a whole vector of hidden_size numbers, not one number.")
    if value == 50 * _D * SMOLLM2_135M["num_hidden_layers"]:
        return wrong("that is prefix tuning's count (a vector per layer); a soft prompt lives only at the input.")
    return wrong("a soft prompt is n_tokens trainable vectors, each as wide as the embedding (hidden_size = 576).")


@numeric_answer
def check_conv_lora_share(value: float) -> Feedback:
    """Exercise 02.2: LoRA r = 8 on a 3x3 Conv2d with 64 -> 64 channels: trainable share of the conv's weight (0..1)."""
    weight = 64 * 64 * 9
    expected = 8 * (64 * 9 + 64) / weight
    if 1 < value <= 100 and abs(value / 100 - expected) < 0.002:
        return wrong(f"that looks like a percentage; give a fraction, e.g. {expected:.3f}.")
    if abs(value - expected) < 0.002:
        return right(
            f"8 x (64·9 + 64) / (64·64·9) = {expected:.3f}: about 14%, five times the 2.8% of r = 8 on a 576 x 576 "
            "linear layer. Narrow layers leave little to save."
        )
    if abs(value - 8 * (64 + 64) / weight) < 0.002:
        return wrong("A is a 3x3 convolution from 64 channels to r: it has r x 64 x 9 numbers, not r x 64.")
    if abs(value - 8 * (64 + 64) / (64 * 64)) < 0.002:
        return wrong("the conv's weight has 64 x 64 x 9 numbers (the 3x3 kernel counts), and so does A's side.")
    return wrong("unfold the conv into a (64) x (64·9) matrix: LoRA trains r(d + k) with d = 64, k = 576; divide by d k.")


@answered
def check_backprop_methods(answer: object) -> Feedback:
    """Exercise 02.3: which of 'full', 'head', 'prompt', 'lora' must run backward through every block?"""
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        return wrong("answer with a set of method names, e.g. {'full', 'head'}.")
    names = {str(a).strip().lower() for a in answer}
    unknown = names - set(METHODS)
    if unknown:
        return wrong(f"unknown method name(s) {sorted(unknown)}; choose among {', '.join(METHODS)}.")
    expected = {"full", "prompt", "lora"}
    if names == expected:
        return right(
            "a gradient must reach every trainable tensor: the soft prompt sits below block 0, and LoRA has "
            "adapters in every block, so both pay for a backward pass through all 30 blocks (as a full fine-tune "
            "does); only the head stops at the top."
        )
    if "head" in names:
        return wrong("the head sits after the last block: its gradient needs only the last hidden states, no block.")
    if "prompt" not in names:
        return wrong("the soft prompt is the *input* of block 0, so its gradient has to travel back through all 30 blocks.")
    if "lora" not in names:
        return wrong("LoRA adds trainable A and B in every block, down to block 0: backward goes through all of them.")
    return wrong("a full fine-tune trains every block, so it needs the whole backward pass too.")
