"""The exact-match evaluation, on a fake model whose answers (and mistakes) are known in advance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lora_edu.data import Example, encode_example, make_examples
from lora_edu.evaluation import Mistake, evaluate, greedy_match_accuracy


class LookupLM(nn.Module):
    """A fake causal LM that knows the next token after each prefix of some token sequences.

    Its greedy generation and its teacher-forced logits follow the same table, so it gives
    evaluation known answers (and known mistakes) without any training.
    """

    def __init__(self, sequences: list[list[int]], vocab_size: int, eos: int) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device
        self.table = {tuple(seq[: t + 1]): seq[t + 1] for seq in sequences for t in range(len(seq) - 1)}
        self.vocab_size, self.eos = vocab_size, eos

    def forward(self, input_ids, attention_mask=None, logits_to_keep=0, use_cache=False):
        batch, length = input_ids.shape
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if isinstance(logits_to_keep, int):
            positions = list(range(length - logits_to_keep if logits_to_keep else 0, length))
        else:
            positions = logits_to_keep.tolist()
        logits = torch.zeros(batch, len(positions), self.vocab_size)
        for b in range(batch):
            for j, t in enumerate(positions):
                prefix = input_ids[b, : t + 1][mask[b, : t + 1].bool()].tolist()  # without the padding
                logits[b, j, self.table.get(tuple(prefix), self.eos)] = 1.0
        return SimpleNamespace(logits=logits)

    def generate(self, input_ids, attention_mask, max_new_tokens, pad_token_id, eos_token_id, **kwargs):
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        for _ in range(max_new_tokens):
            nxt = self(input_ids, attention_mask, logits_to_keep=1).logits[:, -1].argmax(-1)  # (B,)
            nxt = torch.where(done, torch.tensor(pad_token_id), nxt)
            done |= nxt == eos_token_id
            input_ids = torch.cat([input_ids, nxt[:, None]], dim=1)
            attention_mask = torch.cat([attention_mask, torch.ones_like(nxt)[:, None]], dim=1)
            if done.all():
                break
        return input_ids


@pytest.fixture(scope="module")
def known(tok):
    """Five test questions and a fake model that answers four right and the last one wrong."""
    examples = make_examples("dates", 5, "test")
    believed = list(examples[:4]) + [Example(examples[4].question, "1999-12-31")]
    sequences = [encode_example(tok, ex, 256)["input_ids"] for ex in believed]
    return LookupLM(sequences, len(tok), tok.eos_token_id), tok, examples


def test_evaluate_scores_known_answers(known):
    model, tok, examples = known
    for batch_size in (2, 5):  # batching (and left padding) changes nothing
        result = evaluate(model, tok, examples, batch_size=batch_size)
        assert (result.n, result.correct, result.accuracy) == (5, 4, 0.8)
        assert list(result.predictions) == [ex.answer for ex in examples[:4]] + ["1999-12-31"]
        assert result.mistakes == (Mistake(examples[4].question, examples[4].answer, "1999-12-31"),)
    assert str(result) == "exact match 4/5 = 80.0%"


def test_greedy_match_agrees_with_generation(known):
    model, tok, examples = known
    assert greedy_match_accuracy(model, tok, examples, batch_size=3) == 0.8
    wrong = [Example(ex.question, "2000-01-01") for ex in examples[:2]] + list(examples[2:])
    assert greedy_match_accuracy(model, tok, wrong) == evaluate(model, tok, wrong).accuracy == 0.4
