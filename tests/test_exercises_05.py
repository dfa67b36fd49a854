"""Notebook 05's exercise checkers: right answers pass, typical mistakes get a specific hint."""

from __future__ import annotations

import pytest

import lora_edu
from lora_edu.exercises import check_adapter_bytes, check_all_linear_params, check_smallest_good_rank
from lora_edu.exercises._feedback import NOT_ANSWERED

QV_R4 = 30 * 4 * ((576 + 576) + (192 + 576))  # trainable numbers of an r=4 adapter on q_proj and v_proj


def test_adapter_bytes_agree_with_a_saved_adapter(tmp_path):
    from lora_edu.adapters import save_adapter

    skeleton = lora_edu.inject_lora(lora_edu.model_skeleton(), lora_edu.LoRAConfig(r=4, target_modules=("q_proj", "v_proj")))
    tensors = sum(p.numel() * 4 for n, p in skeleton.named_parameters() if "lora_" in n)
    assert tensors == 4 * QV_R4
    assert check_adapter_bytes(tensors) and check_adapter_bytes(tensors + 5000)  # a header's worth of slack
    tiny = lora_edu.inject_lora(lora_edu.tiny_model(), lora_edu.LoRAConfig(r=4))
    folder = save_adapter(tiny, tmp_path / "a")
    file_bytes = (folder / "adapter_model.safetensors").stat().st_size
    assert 0 < file_bytes - sum(p.numel() * 4 for n, p in tiny.named_parameters() if "lora_" in n) < 5000


@pytest.mark.parametrize("answer, hint", [
    (QV_R4, "number of parameters"),
    (2 * QV_R4, "16-bit"),
    (4 * QV_R4 // 30, "one block"),
    (4 * 30 * 4 * (576 + 576) * 2, "grouped-query"),
    (4 * 30 * (576 * 576 + 192 * 576), "full q and v weights"),
    (12345, "r (d + k)"),
])
def test_adapter_bytes_hints(answer, hint):
    feedback = check_adapter_bytes(answer)
    assert not feedback and hint in feedback.message


def test_all_linear_params_agree_with_inject_lora():
    skeleton = lora_edu.inject_lora(
        lora_edu.model_skeleton(), lora_edu.LoRAConfig(r=8, target_modules=lora_edu.LINEAR_NAMES)
    )
    assert check_all_linear_params(lora_edu.count_parameters(skeleton).trainable)
    attention = lora_edu.inject_lora(
        lora_edu.model_skeleton(), lora_edu.LoRAConfig(r=8, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
    )
    assert "gate_proj" in check_all_linear_params(lora_edu.count_parameters(attention).trainable).message


def test_smallest_good_rank():
    sweep = {1: 0.70, 2: 0.88, 4: 0.90, 8: 0.92, 16: 0.91}
    assert check_smallest_good_rank(2, sweep)
    assert "best rank" in check_smallest_good_rank(8, sweep).message
    assert "more than 5 points" in check_smallest_good_rank(1, sweep).message
    assert "smaller rank" in check_smallest_good_rank(4, sweep).message
    assert "ranks the sweep tried" in check_smallest_good_rank(3, sweep).message
    assert check_smallest_good_rank(1, {1: 0.8, 8: 0.79})  # the smallest can be the best


@pytest.mark.parametrize("checker", [check_adapter_bytes, check_all_linear_params])
def test_unanswered_and_not_numbers(checker):
    assert checker(None) == NOT_ANSWERED
    assert not checker("a lot") and "number" in checker("a lot").message
    assert check_smallest_good_rank(None, {1: 1.0}) == NOT_ANSWERED
