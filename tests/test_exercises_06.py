"""Notebook 06's exercise checkers: right answers pass, typical mistakes get a specific hint."""

from __future__ import annotations

import pytest
import torch

from lora_edu import quant as Q
from lora_edu.exercises import check_base_gb, check_max_error, check_nf4_codes, check_what_is_4bit
from lora_edu.exercises.nb06 import HAND_BLOCK


def test_nf4_codes_checker_agrees_with_the_quantiser():
    codes = Q.nf4_quantize(torch.tensor(HAND_BLOCK), block_size=4).codes().tolist()
    assert check_nf4_codes(codes)
    assert check_nf4_codes(torch.tensor(codes))


@pytest.mark.parametrize("answer, hint", [
    ([15, 4, 8, 0], "divide"), ([1, 2], "one code per number"), ([12, 5, 8, 16], "between 0 and 15"),
    ([13, 5, 8, 0], "neighbouring"), ("abc", "list"),
])
def test_nf4_codes_checker_explains_typical_mistakes(answer, hint):
    feedback = check_nf4_codes(answer)
    assert not feedback and hint in feedback.message, feedback


def test_max_error_checker():
    levels = Q.nf4_code()
    half_gap = float(levels.diff().max()) / 2
    assert check_max_error(0.1 * half_gap)
    # the bound is reached: a number (just past) halfway between -1 and the next level, in a block with absmax 0.1
    w = torch.tensor([0.1, 0.1 * float(levels[0] + levels[1]) / 2 + 1e-7])
    err = (Q.nf4_dequantize(Q.nf4_quantize(w, block_size=2)) - w).abs().max()
    assert check_max_error(float(err))
    for answer, hint in [(0.2 * half_gap, "half a gap"), (half_gap, "absmax"), (0.1 / 15, "evenly")]:
        feedback = check_max_error(answer)
        assert not feedback and hint in feedback.message, answer


def test_base_gb_checker():
    assert check_base_gb(7e9 * Q.bits_per_parameter(64, True) / 8 / 1e9)
    mistakes = [(3.5, "codes only"), (3.94, "without double"), (3.36, "GiB"), (28.9, "gigabits"), (14, "16-bit")]
    for answer, hint in mistakes:
        feedback = check_base_gb(answer)
        assert not feedback and hint in feedback.message, answer


def test_what_is_4bit_checker():
    assert check_what_is_4bit({"a"}) and check_what_is_4bit(["A"]) and check_what_is_4bit("a")
    for answer, hint in [({"a", "b"}, "misreading"), ({"a", "d"}, "misreading"), ({"a", "e"}, "8 bits"),
                         ({"z"}, "letters"), (set(), "never changes")]:
        feedback = check_what_is_4bit(answer)
        assert not feedback and hint in feedback.message, answer


@pytest.mark.parametrize("checker", [check_nf4_codes, check_max_error, check_base_gb, check_what_is_4bit])
def test_unanswered(checker):
    assert not checker(None) and "None" in checker(None).message
