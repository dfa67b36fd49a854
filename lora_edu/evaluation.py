"""Exact-match evaluation: how many questions the model answers exactly right.

The course's tasks have one right answer per question (a date, a field), so the score is the
share of questions answered exactly (:func:`lora_edu.data.exact_match`: surrounding whitespace
aside), with no partial credit.

* :func:`evaluate` generates greedy answers in batches and scores them by exact match; the
  :class:`EvalResult` keeps every prediction and every :class:`Mistake`, to read what went wrong.
* :func:`greedy_match_accuracy` gets the same number from one teacher-forced forward pass per
  batch (no generation): greedy decoding writes the answer exactly when the right next token is
  the most likely one at every answer position, so checking all positions at once is enough.
  Cheap enough to run inside a sweep.

Training itself (the loop, the loss on the answer tokens) is in :mod:`lora_edu.train`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from lora_edu.data import IGNORE_INDEX, SYSTEM_PROMPT, Example, collate, encode_example, exact_match
from lora_edu.train import _progress


@dataclass(frozen=True)
class Mistake:
    """A question the model got wrong: what it should have said and what it said."""

    question: str
    answer: str
    prediction: str


@dataclass(frozen=True)
class EvalResult:
    """Exact-match accuracy over ``n`` examples, with the predictions and the mistakes."""

    accuracy: float
    n: int
    correct: int
    predictions: tuple[str, ...]
    mistakes: tuple[Mistake, ...]

    def __str__(self) -> str:
        return f"exact match {self.correct}/{self.n} = {self.accuracy:.1%}"


def evaluate(
    model: nn.Module,
    tokenizer,
    examples: Sequence[Example],
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    progress: bool = False,
    desc: str = "evaluating",
) -> EvalResult:
    """Greedy-generate an answer to every question, ``batch_size`` at a time; score by exact match.

    Args:
        max_new_tokens: the longest answer generated. Default: the longest expected answer plus two
            tokens; a longer output could not be an exact match anyway, so this changes no score.
    """
    from lora_edu.models import ask_many

    if not examples:
        raise ValueError("evaluate needs at least one example")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if max_new_tokens is None:
        max_new_tokens = 2 + max(len(tokenizer(ex.answer, add_special_tokens=False)["input_ids"]) for ex in examples)
    predictions: list[str] = []
    for start in _progress(range(0, len(examples), batch_size), progress, desc=desc):
        chunk = examples[start : start + batch_size]
        predictions += ask_many(
            model, tokenizer, [ex.question for ex in chunk], system=SYSTEM_PROMPT,
            max_new_tokens=max_new_tokens, batch_size=batch_size,
        )
    right = [exact_match(p, ex.answer) for p, ex in zip(predictions, examples)]
    mistakes = tuple(Mistake(ex.question, ex.answer, p) for p, ex, ok in zip(predictions, examples, right) if not ok)
    return EvalResult(sum(right) / len(right), len(right), sum(right), tuple(predictions), mistakes)


@torch.no_grad()
def greedy_match_accuracy(
    model: nn.Module, tokenizer, examples: Sequence[Example], batch_size: int = 16, seq_len: int = 512
) -> float:
    """The exact-match accuracy of greedy decoding, from one forward pass per batch (no generation).

    Greedy decoding writes the answer (and then stops) exactly when, given the right prefix, the
    most likely next token at every answer position is the right one, end token included. With
    teacher forcing all those positions are checked at once: about ``max_new_tokens`` times cheaper
    than :func:`evaluate`, so a sweep can afford it. (It can differ from generation only when the
    model would spell the answer with other tokens, or by float noise between the two code paths.)
    """
    if not examples:
        raise ValueError("greedy_match_accuracy needs at least one example")
    device = next(model.parameters()).device
    features = [encode_example(tokenizer, ex, seq_len) for ex in examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.eval()  # full precision, as in evaluate(): bf16 noise could flip a close argmax
    right = 0
    for start in range(0, len(features), batch_size):
        batch = {k: v.to(device) for k, v in collate(features[start : start + batch_size], pad).items()}
        targets = batch["labels"][:, 1:]  # (B, T-1)
        keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)  # (K,)
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep, use_cache=False
        ).logits  # (B, K, vocab)
        wanted = targets[:, keep]  # (B, K)
        ok = (logits.argmax(-1) == wanted) | (wanted == IGNORE_INDEX)  # (B, K)
        right += int(ok.all(dim=1).sum())
    return right / len(features)
