"""Checkers for notebook 06 (QLoRA): NF4 by hand, the error bound, what a 4-bit base weighs, what is 4-bit."""

from __future__ import annotations

from lora_edu.exercises._feedback import Feedback, answered, numeric_answer, right, wrong
from lora_edu.quant import bits_per_parameter, int4_code, nf4_code

# Exercise 06.1: the block the learner quantises by hand.
HAND_BLOCK = (0.9, -0.3, 0.1, -1.8)


def _nearest_codes(values: list[float], levels: list[float]) -> list[int]:
    return [min(range(len(levels)), key=lambda i: (abs(v - levels[i]), i)) for v in values]


def _hand_codes() -> list[int]:
    absmax = max(abs(v) for v in HAND_BLOCK)
    return _nearest_codes([v / absmax for v in HAND_BLOCK], nf4_code().tolist())


@answered
def check_nf4_codes(answer: object) -> Feedback:
    """Exercise 06.1: the NF4 codes (indices 0..15) of the block ``HAND_BLOCK``, quantised as one block."""
    try:
        codes = [int(c) for c in answer]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return wrong(f"give a list of {len(HAND_BLOCK)} integer codes between 0 and 15, e.g. [15, 7, 7, 0].")
    expected = _hand_codes()
    levels = nf4_code().tolist()
    if codes == expected:
        return right(
            f"{expected}: divide by the absmax 1.8, then take the nearest level: 0.5 -> {levels[expected[0]]:.4f}, "
            f"-0.167 -> {levels[expected[1]]:.4f}, 0.056 -> {levels[expected[2]]:.4f}, -1 -> -1. "
            "Stored: 4 bits per number plus the absmax of the block."
        )
    if len(codes) != len(HAND_BLOCK):
        return wrong(f"one code per number: the block has {len(HAND_BLOCK)} numbers.")
    if any(not 0 <= c <= 15 for c in codes):
        return wrong("codes are indices into the 16 NF4 levels, so each lies between 0 and 15.")
    if codes == _nearest_codes(list(HAND_BLOCK), levels):
        return wrong("you rounded the raw numbers. First divide the block by its absmax (1.8) so it lies in [-1, 1].")
    if codes == _nearest_codes([v / 1.8 for v in HAND_BLOCK], [-x for x in levels]):
        return wrong("the levels are sorted from -1 (code 0) to +1 (code 15); your codes run the other way.")
    if codes == _nearest_codes([v / 1.8 for v in HAND_BLOCK], int4_code().tolist()):
        return wrong("those are Int4 codes (even steps of 1/7). Use the NF4 levels printed above.")
    off = [c - e for c, e in zip(codes, expected)]
    if all(abs(d) <= 1 for d in off):
        return wrong("almost: at least one number went to a neighbouring level. Compare the distance to the "
                     "levels on both sides, e.g. 0.5 lies between 0.4407 and 0.5626.")
    return wrong("scale the block by 1 / absmax, then pick for each number the index of the closest NF4 level.")


@numeric_answer
def check_max_error(value: float) -> Feedback:
    """Exercise 06.2: the largest round-trip error NF4 can make in a block whose absmax is 0.1."""
    levels = nf4_code()
    gap = float(levels.diff().max())
    expected = 0.1 * gap / 2
    if abs(value - expected) < 2e-4:
        return right(
            f"0.1 x ({float(levels[1]):.4f} - (-1)) / 2 = {expected:.4f}: the widest gap is between -1 and the next "
            "level (the negative side has one level fewer), out in the tail where the normal distribution has the "
            "least mass; in the crowded middle the error is far smaller."
        )
    if abs(value - 0.1 * gap) < 2e-4:
        return wrong("that is the whole gap. A number is rounded to the *nearest* level, "
                     "so it is at most half a gap away.")
    if abs(value - gap / 2) < 2e-3:
        return wrong("that is the error on the [-1, 1] scale; multiply by the block's absmax (0.1).")
    if abs(value - 0.1 / 15) < 2e-4 or abs(value - 0.1 / 14) < 2e-4:
        return wrong("NF4's levels are not evenly spaced, so the error bound is not 0.1 / 15. Find the widest gap.")
    return wrong("find the widest gap between neighbouring NF4 levels, take half of it, and scale by the absmax.")


@numeric_answer
def check_base_gb(value: float) -> Feedback:
    """Exercise 06.3: GB (1e9 bytes) of a 7-billion-parameter base in NF4 with double quantisation."""
    n = 7e9
    expected = n * bits_per_parameter(64, double_quant=True) / 8 / 1e9
    if abs(value - expected) < 0.02:
        return right(f"7e9 x 4.127 bits / 8 = {expected:.2f} GB, against 14 GB in 16-bit: a 7B base fits a laptop GPU.")
    if abs(value - n * 4 / 8 / 1e9) < 0.02:
        return wrong("3.5 GB counts the 4-bit codes only; add the constants (4.127 bits per parameter in all).")
    if abs(value - n * 4.5 / 8 / 1e9) < 0.02:
        return wrong("that is NF4 without double quantisation (4.5 bits); with it the constants cost 0.127 bits.")
    if abs(value - expected * 1e9 / 2**30) < 0.02:
        return wrong("that is GiB (2^30 bytes); the question asks for GB = 1e9 bytes.")
    if abs(value - expected * 8) < 0.2:
        return wrong("that is gigabits; divide by 8 for bytes.")
    if abs(value - 14) < 0.2:
        return wrong("14 GB is the 16-bit base (2 bytes per parameter); QLoRA stores about 4.127 bits each.")
    return wrong("multiply the parameter count by the bits per parameter with double quantisation, "
                 "divide by 8 and by 1e9.")


QLORA_PARTS = {
    "a": "the frozen base weights",
    "b": "the LoRA matrices A and B",
    "c": "the gradients of A and B",
    "d": "Adam's states for A and B",
    "e": "the absmax constants (with double quantisation)",
}


@answered
def check_what_is_4bit(answer: object) -> Feedback:
    """Exercise 06.4: which of ``QLORA_PARTS`` QLoRA stores in 4 bits (answer: a set of letters)."""
    if isinstance(answer, str):
        answer = [c for c in answer if c.strip(", ")]
    try:
        chosen = {str(c).strip().lower() for c in answer}  # type: ignore[union-attr]
    except TypeError:
        return wrong('give a set of letters, e.g. {"a", "c"}.')
    unknown = chosen - set(QLORA_PARTS)
    if unknown:
        return wrong(f"choose among the letters {', '.join(QLORA_PARTS)}; {sorted(unknown)} is not one of them.")
    if chosen == {"a"}:
        return right("only the frozen base is 4-bit (NF4). A and B, their gradients and Adam's states stay in "
                     "16/32-bit, and the absmax constants are 8-bit with fp32 second-level constants.")
    if chosen & {"b", "c", "d"}:
        return wrong("a common misreading of QLoRA: the adapters, their gradients and the optimizer states are "
                     "*not* quantised; gradients flow through the dequantised base into full-precision A and B.")
    if "e" in chosen:
        return wrong("double quantisation stores the absmax constants in 8 bits (plus fp32 constants), not 4.")
    return wrong("QLoRA does store something in 4 bits: which part of the model never changes during training?")
