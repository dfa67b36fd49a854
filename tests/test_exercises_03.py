"""Notebook 03's exercise checkers: right answers pass, typical mistakes get a specific hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lora_edu
from lora_edu.exercises import check_both_zero, check_merge, check_trainable_count
from lora_edu.exercises._feedback import NOT_ANSWERED

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


def test_trainable_count_agrees_with_inject_lora():
    skeleton = lora_edu.inject_lora(lora_edu.model_skeleton(), lora_edu.LoRAConfig(r=16, target_modules=ATTENTION))
    assert check_trainable_count(lora_edu.count_parameters(skeleton).trainable)


@pytest.mark.parametrize("answer, hint", [
    (16 * 3840, "one block"),
    (30 * 16 * 4 * 1152, "grouped-query"),
    (30 * 16 * 3840 // 2, "one of the two factors"),
    (30 * 8 * 3840, "r = 8 instead of 16"),
    (30 * (2 * 576 * 576 + 2 * 192 * 576), "frozen weights"),
    (1, "r(d + k)"),
])
def test_trainable_count_hints(answer, hint):
    feedback = check_trainable_count(answer)
    assert not feedback and hint in feedback.message


def test_both_zero_is_b_and_really_never_trains():
    layer = lora_edu.LoRALinear(nn.Linear(8, 8), r=2, alpha=4)
    with torch.no_grad():
        layer.lora_A.zero_()
    layer(torch.randn(4, 8)).square().sum().backward()
    assert not layer.lora_A.grad.any() and not layer.lora_B.grad.any()
    assert check_both_zero("b") and check_both_zero(" (B) ")
    for letter in "acd":
        assert not check_both_zero(letter)
    assert "one letter" in check_both_zero("e").message
    assert "one letter" in check_both_zero(2).message


def test_merge_checker():
    assert check_merge(lambda W0, A, B, alpha, r: W0 + alpha / r * B @ A)
    assert check_merge(lambda W0, A, B, alpha, r: W0.add_(alpha / r * B @ A))  # in place is fine too
    for fn, hint in [
        (lambda W0, A, B, alpha, r: W0 + alpha / r * A @ B, "B @ A"),
        (lambda W0, A, B, alpha, r: W0 + B @ A, "scaling"),
        (lambda W0, A, B, alpha, r: W0 + r / alpha * B @ A, "not r / alpha"),
        (lambda W0, A, B, alpha, r: alpha / r * B @ A, "only the update"),
        (lambda W0, A, B, alpha, r: W0 - alpha / r * B @ A, "unmerge"),
        (lambda W0, A, B, alpha, r: None, "forget `return`"),
        (lambda W0, A, B, alpha, r: W0[:2], "shape"),
        (lambda W0, A, B, alpha, r: 1 / 0, "ZeroDivisionError"),
        (lambda W0, A, B, alpha, r: W0 * 2, "W0 + (alpha / r)"),
    ]:
        feedback = check_merge(fn)
        assert not feedback and hint in feedback.message, hint
    assert "function itself" in check_merge(torch.zeros(2)).message


@pytest.mark.parametrize("checker", [check_trainable_count, check_both_zero, check_merge])
def test_none_is_not_answered(checker):
    assert checker(None) is NOT_ANSWERED
