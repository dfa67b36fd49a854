"""The synthetic tasks: deterministic, disjoint splits, well-formed answers, answer-only labels."""

from __future__ import annotations

import datetime
import json

import pytest
import torch

from lora_edu.data import (
    IGNORE_INDEX,
    SPLITS,
    TASKS,
    Example,
    collate,
    encode_example,
    exact_match,
    make_examples,
    prompt_text,
    split_of,
)


@pytest.mark.parametrize("task", TASKS)
def test_examples_are_deterministic_and_prefix_stable(task):
    a = make_examples(task, 50, "train", seed=3)
    assert a == make_examples(task, 50, "train", seed=3)
    assert make_examples(task, 20, "train", seed=3) == a[:20]
    assert make_examples(task, 50, "train", seed=4) != a
    assert len({ex.question for ex in a}) == 50


@pytest.mark.parametrize("task", TASKS)
def test_splits_share_no_answer(task):
    answers = {split: {ex.answer for ex in make_examples(task, 300, split)} for split in SPLITS}
    assert not answers["train"] & answers["validation"]
    assert not answers["train"] & answers["test"]
    assert not answers["validation"] & answers["test"]
    for split, found in answers.items():
        assert all(split_of(a) == split for a in found)


def test_split_shares_are_roughly_80_10_10():
    days = [datetime.date(2000, 1, 1) + datetime.timedelta(days=i) for i in range(3000)]
    splits = [split_of(d.isoformat()) for d in days]
    assert 0.75 < splits.count("train") / len(splits) < 0.85
    assert 0.07 < splits.count("test") / len(splits) < 0.13


def test_date_answers_are_the_dates_asked_for():
    for ex in make_examples("dates", 200, "test"):
        date = datetime.date.fromisoformat(ex.answer)  # a valid ISO date
        assert str(date.year) in ex.question and str(date.day) in ex.question
        assert date.strftime("%B")[:3] in ex.question
        if date.strftime("%A") in ex.question:
            assert date.strftime("%A, %B") in ex.question  # a named weekday is the right one


def test_extract_answers_are_one_line_json_of_the_sentence():
    for ex in make_examples("extract", 200, "validation"):
        assert "\n" not in ex.answer
        record = json.loads(ex.answer)
        assert list(record) == ["name", "age", "city"]
        assert record["name"] in ex.question and record["city"] in ex.question
        assert isinstance(record["age"], int) and str(record["age"]) in ex.question


def test_clear_errors():
    with pytest.raises(ValueError, match="Known tasks: dates, extract"):
        make_examples("poems", 3)
    with pytest.raises(ValueError, match="Known splits"):
        make_examples("dates", 3, split="dev")
    with pytest.raises(ValueError, match="n must be"):
        make_examples("dates", -1)
    with pytest.raises(ValueError):
        Example("", "x")


def test_exact_match_ignores_only_surrounding_whitespace():
    assert exact_match(" 2025-10-04\n", "2025-10-04")
    assert not exact_match("2025-10-4", "2025-10-04")
    assert not exact_match("The date is 2025-10-04", "2025-10-04")
    assert not exact_match("2025-10-04.", "2025-10-04")


@pytest.mark.parametrize("task", TASKS)
def test_only_answer_tokens_carry_loss(tok, task):
    ex = make_examples(task, 1)[0]
    enc = encode_example(tok, ex, max_len=256)
    ids, labels = enc["input_ids"], enc["labels"]
    assert len(ids) == len(labels)
    n_prompt = len(tok(prompt_text(tok, ex.question), add_special_tokens=False)["input_ids"])
    assert all(label == IGNORE_INDEX for label in labels[:n_prompt])
    assert labels[n_prompt:] == ids[n_prompt:]  # every answer token is a target
    assert tok.decode(labels[n_prompt:]) == ex.answer + tok.eos_token  # the answer, then the end token
    assert tok.decode(ids) == prompt_text(tok, ex.question) + ex.answer + tok.eos_token


def test_too_long_is_an_error_not_a_cut(tok):
    ex = make_examples("dates", 1)[0]
    with pytest.raises(ValueError, match="raise max_len"):
        encode_example(tok, ex, max_len=10)


def test_collate_pads_on_the_right_without_loss(tok):
    feats = [encode_example(tok, ex, 256) for ex in make_examples("extract", 2) + make_examples("dates", 2)]
    batch = collate(feats, tok.pad_token_id)
    longest = max(len(f["input_ids"]) for f in feats)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {k: (4, longest) for k in ("input_ids", "attention_mask", "labels")}
    for row, f in enumerate(feats):
        n = len(f["input_ids"])
        assert batch["input_ids"][row, :n].tolist() == f["input_ids"]
        assert batch["attention_mask"][row].sum() == n
        assert torch.all(batch["labels"][row, n:] == IGNORE_INDEX)
        assert torch.all(batch["input_ids"][row, n:] == tok.pad_token_id)
    with pytest.raises(ValueError):
        collate([], 0)
