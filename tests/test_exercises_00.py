"""Notebook 00's exercise checkers: right answers pass, typical mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lora_edu.exercises import check_attention_params, check_embedding_share, check_linear_layer_count
from lora_edu.models import model_skeleton


def _attention_of_one_block() -> int:
    block = model_skeleton().model.layers[0].self_attn
    return sum(p.numel() for p in block.parameters())


def test_attention_checker_agrees_with_the_model():
    assert check_attention_params(_attention_of_one_block())
    assert check_attention_params(np.int64(_attention_of_one_block()))
    assert check_attention_params(torch.tensor(_attention_of_one_block()))


@pytest.mark.parametrize("answer, hint", [
    (4 * 576 * 576, "grouped-query"),
    (884_736 + 576, "RMSNorm"),
    (30 * 884_736, "all 30 blocks"),
    (576 * 576, "only some"),
    (12345, "in_features x out_features"),
])
def test_attention_checker_explains_typical_mistakes(answer, hint):
    feedback = check_attention_params(answer)
    assert not feedback and hint in feedback.message


def test_embedding_share_checker():
    skeleton = model_skeleton()
    share = skeleton.model.embed_tokens.weight.numel() / sum(p.numel() for p in skeleton.parameters())
    assert check_embedding_share(share)
    assert not check_embedding_share(share * 100) and "percentage" in check_embedding_share(share * 100).message
    assert "ties" in check_embedding_share(2 * 28_311_552 / (134_515_008 + 28_311_552)).message
    assert not check_embedding_share(0.5)


def test_linear_layer_count_checker():
    skeleton = model_skeleton()
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    count = sum(1 for name, _ in skeleton.named_modules() if name.rsplit(".", 1)[-1] in targets)
    assert check_linear_layer_count(count)
    assert "one block" in check_linear_layer_count(7).message
    assert "lm_head" in check_linear_layer_count(count + 1).message


@pytest.mark.parametrize("checker", [check_attention_params, check_embedding_share, check_linear_layer_count])
def test_checkers_handle_no_answer_and_non_numbers(checker):
    assert not checker(None) and "no answer yet" in checker(None).message
    assert not checker("many") and "expected a number" in checker("many").message
    assert not checker(True)
    assert repr(checker(None)).startswith("❌")
