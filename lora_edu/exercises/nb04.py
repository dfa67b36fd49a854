"""Checkers for notebook 04 (memory accounting): bytes per parameter, what fits on a GPU, NF4's bits."""

from __future__ import annotations

from lora_edu.exercises._feedback import Feedback, numeric_answer, right, wrong

_FULL_PARAMS = 13e9  # exercise 04.1: a 13B model
_GPU_GB, _OVERHEAD_GB = 24.0, 2.0  # exercise 04.2: a 24 GB GPU, 2 GB for adapters, their optimizer and activations
_QLORA_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # exercise 04.3: NF4 codes + double-quantized constants


def _close(value: float, target: float, rel: float = 0.01) -> bool:
    return abs(value - target) <= rel * abs(target)


@numeric_answer
def check_full_finetune_memory(value: float) -> Feedback:
    """Exercise 04.1: GB (1e9 bytes) a 13B full fine-tune needs with mixed-precision AdamW, before activations."""
    expected = 16 * _FULL_PARAMS / 1e9  # 208 GB
    if _close(value, expected):
        return right(
            f"13e9 x 16 bytes = {expected:.0f} GB: 2 (bf16 weights) + 2 (bf16 gradients) + 4 (fp32 master copy) "
            "+ 4 + 4 (Adam's m and v in fp32). Nearly three 80 GB GPUs before a single activation."
        )
    hints = {
        4: "that is only the weights in fp32 (4 bytes each). Training also stores gradients and Adam's two moments.",
        2: "that is only the bf16 weights. Add the gradients, the fp32 master copy and Adam's two moments.",
        8: "8 bytes per parameter leaves something out: mixed precision keeps 16-bit weights and gradients "
           "(2 + 2) *and* an fp32 master copy plus two fp32 moments (4 + 4 + 4).",
        12: "12 bytes per parameter: you left out the fp32 master copy of the weights (4 bytes) that mixed "
            "precision updates, or counted Adam's moments in 16-bit.",
    }
    for per_param, hint in hints.items():
        if _close(value, per_param * _FULL_PARAMS / 1e9):
            return wrong(hint)
    if _close(value, expected * 1e9 / 2**30):
        return wrong("that is in GiB (2^30 bytes); the papers, and this exercise, use GB = 1e9 bytes.")
    if _close(value, expected * 1e9):
        return wrong("that is in bytes; give the answer in GB (divide by 1e9).")
    return wrong("count the bytes per trainable parameter under mixed-precision AdamW, then multiply by 13e9 "
                 "and divide by 1e9.")


@numeric_answer
def check_largest_lora_model(value: float) -> Feedback:
    """Exercise 04.2: the largest model (billions of parameters) whose bf16 base fits a 24 GB GPU with 2 GB to spare."""
    expected = (_GPU_GB - _OVERHEAD_GB) / 2  # 11 B parameters at 2 bytes each
    if _close(value, expected, 0.02):
        return right(
            f"(24 - 2) GB / 2 bytes = {expected:g} billion parameters. The frozen base costs only its weights; a "
            "full fine-tune of the same GPU tops out near (24 - 2) / 16 = 1.4 B parameters."
        )
    if _close(value, _GPU_GB / 2, 0.02):
        return wrong("you gave the whole 24 GB to the base; keep the 2 GB for adapters, optimizer state and activations.")
    if _close(value, expected / 2, 0.02):
        return wrong("that assumes 4 bytes per weight (fp32); the question says the base is in bf16.")
    if _close(value, (_GPU_GB - _OVERHEAD_GB) / 16, 0.02):
        return wrong("16 bytes per parameter is a full fine-tune. With LoRA the base is frozen: no gradients, "
                     "no optimizer state, no master copy for it.")
    if _close(value, expected * 4, 0.05) or _close(value, (_GPU_GB - _OVERHEAD_GB) * 8 / _QLORA_BITS, 0.05):
        return wrong("about half a byte per weight is QLoRA's 4-bit base; the question asks for a bf16 base.")
    if _close(value, expected * 1e9, 0.02):
        return wrong("give the answer in billions of parameters (e.g. 7 for a 7B model).")
    return wrong("the frozen bf16 base costs 2 bytes per parameter; divide the GB left after the 2 GB by 2.")


@numeric_answer
def check_qlora_bits(value: float) -> Feedback:
    """Exercise 04.3: bits per parameter of an NF4 base with double quantization (blocks of 64, then 256)."""
    if abs(value - _QLORA_BITS) < 0.0015:
        return right(
            f"4 + 8/64 + 32/(64 x 256) = {_QLORA_BITS:.3f} bits: the 4-bit code, an 8-bit absmax shared by 64 "
            "weights, and an fp32 constant shared by 256 of those absmaxes (QLoRA, section 3)."
        )
    if abs(value - 4.5) < 0.0015:
        return wrong("4.5 bits is NF4 *without* double quantization (a 32-bit absmax per 64 weights). "
                     "Double quantization stores those constants in 8 bits instead.")
    if abs(value - 4) < 0.0015:
        return wrong("4 bits is only the code; every block of 64 weights also needs its absmax constant.")
    if abs(value - (_QLORA_BITS - 4)) < 0.0015:
        return wrong("that is the constants' share alone; add the 4 bits of the code itself.")
    if abs(value - (4 + 8 / 64)) < 0.0015:
        return wrong("close: the 8-bit absmaxes need their own fp32 constant, one per 256 of them: + 32/(64 x 256).")
    if abs(value - _QLORA_BITS / 8) < 0.0015:
        return wrong("that is in bytes; the question asks for bits.")
    return wrong("add the bits per weight: the 4-bit code, 8 bits per block of 64, 32 bits per block of 64 x 256.")
