"""Notebook 02's exercise checkers: right answers pass, typical mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from lora_edu.exercises import check_backprop_methods, check_conv_lora_share, check_soft_prompt_params
from lora_edu.exercises._feedback import NOT_ANSWERED
from lora_edu.lora import conv_lora_param_count
from lora_edu.models import model_skeleton


def test_soft_prompt_checker_agrees_with_the_model():
    width = model_skeleton().config.hidden_size
    assert check_soft_prompt_params(50 * width)
    assert check_soft_prompt_params(np.int64(50 * width))


@pytest.mark.parametrize("answer, hint", [
    (50 * 49152, "vocabulary"), (50, "whole vector"), (50 * 576 * 30, "prefix tuning"), (7, "n_tokens"),
    ("many", "expected a number"),
])
def test_soft_prompt_checker_hints(answer, hint):
    feedback = check_soft_prompt_params(answer)
    assert not feedback and hint in feedback.message


def test_conv_share_checker_agrees_with_a_real_conv():
    weight = nn.Conv2d(64, 64, 3, bias=False).weight.numel()
    share = conv_lora_param_count(64, 64, 3, 8) / weight
    assert check_conv_lora_share(share)
    assert "percentage" in check_conv_lora_share(share * 100).message


@pytest.mark.parametrize("answer, hint", [
    (8 * 128 / (64 * 64 * 9), "r x 64 x 9"), (8 * 128 / (64 * 64), "3x3 kernel"), (0.5, "unfold"),
])
def test_conv_share_checker_hints(answer, hint):
    feedback = check_conv_lora_share(answer)
    assert not feedback and hint in feedback.message


def test_backprop_checker():
    assert check_backprop_methods({"full", "prompt", "lora"})
    assert check_backprop_methods(["LoRA", "Prompt ", "full"])
    for answer, hint in [
        ({"full", "prompt", "lora", "head"}, "after the last block"),
        ({"full", "lora"}, "input"),
        ({"full", "prompt"}, "every block"),
        ({"prompt", "lora"}, "full fine-tune"),
        ({"adapters"}, "unknown"),
        ("lora", "set of method names"),
    ]:
        feedback = check_backprop_methods(answer)
        assert not feedback and hint in feedback.message, answer


@pytest.mark.parametrize("checker", [check_soft_prompt_params, check_conv_lora_share, check_backprop_methods])
def test_none_is_not_answered(checker):
    assert checker(None) is NOT_ANSWERED
