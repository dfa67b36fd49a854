"""Notebook 04's exercise checkers: right answers pass, typical mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest

from lora_edu.exercises import check_full_finetune_memory, check_largest_lora_model, check_qlora_bits
from lora_edu.memory import ModelShape, estimate_training_memory


def test_full_finetune_checker_agrees_with_the_estimator():
    shape = ModelShape.llama_like(13e9)
    per_param = estimate_training_memory(shape, "full", "mixed").model_states / shape.num_params
    assert per_param == 16
    assert check_full_finetune_memory(per_param * 13e9 / 1e9)
    assert check_full_finetune_memory(np.float64(208.0))


@pytest.mark.parametrize("answer, hint", [
    (52, "fp32"), (26, "bf16 weights"), (104, "8 bytes"), (156, "master copy"), (193.7, "GiB"), (208e9, "bytes"),
    (300, "bytes per trainable parameter"),
])
def test_full_finetune_checker_explains_typical_mistakes(answer, hint):
    feedback = check_full_finetune_memory(answer)
    assert not feedback and hint in feedback.message


def test_largest_lora_model_checker():
    assert check_largest_lora_model(11) and check_largest_lora_model(11.1)
    for answer, hint in [(12, "2 GB"), (5.5, "fp32"), (1.375, "full fine-tune"), (44, "QLoRA"), (11e9, "billions"),
                         (3, "divide")]:
        feedback = check_largest_lora_model(answer)
        assert not feedback and hint in feedback.message, answer


def test_qlora_bits_checker_agrees_with_the_quant_module():
    from lora_edu.quant import bits_per_parameter

    assert check_qlora_bits(bits_per_parameter(64, double_quant=True))
    for answer, hint in [(4.5, "without"), (4, "only the code"), (0.127, "add the 4 bits"), (4.125, "256"),
                         (0.516, "bytes"), (5, "add the bits")]:
        feedback = check_qlora_bits(answer)
        assert not feedback and hint in feedback.message, answer


@pytest.mark.parametrize("checker", [check_full_finetune_memory, check_largest_lora_model, check_qlora_bits])
def test_checkers_handle_no_answer_and_non_numbers(checker):
    assert not checker(None) and "no answer yet" in checker(None).message
    assert not checker("lots") and "expected a number" in checker("lots").message
    assert not checker(True)
