"""The course's tasks: synthetic examples generated in code, scored by exact match.

A fine-tuning lesson needs a task the base model *cannot* do yet, answers that are either right or
wrong, and no download. Two tasks of different kinds give two adapters to swap (notebook 05):

    task      kind                    question (one of several phrasings)             answer
    -------   ---------------------   ---------------------------------------------   ------------------------------------------
    dates     rewrite a format        Convert the date to YYYY-MM-DD: 4th of Oct...   2025-10-04
    extract   pull facts into JSON    Extract name, age and city as one-line JSON:    {"name": "Maria", "age": 34, "city": "Lisbon"}
                                      Lisbon resident Maria, 34, ...

**Splits never share an answer.** Whether a date (or a name/age/city triple) belongs to train,
validation or test is decided by a hash of the *answer*, so a test question is never a rephrasing of
a training one: the score measures the skill, not memory. Generation is deterministic: the same
``(task, n, split, seed)`` gives the same examples on every machine, and a longer list starts
with the shorter one.

**Training text.** An example becomes the model's chat template around the question (with the
short :data:`SYSTEM_PROMPT`), then the answer and the end-of-turn token::

    <|im_start|>system ...<|im_end|> <|im_start|>user <question><|im_end|> <|im_start|>assistant    <answer><|im_end|>
    └───────────────────────── prompt: label -100, no loss ─────────────────────────────┘    └── loss here ──┘

The loss covers the answer tokens only (PyTorch's cross-entropy ignores the label ``-100``), as
in instruction tuning (the QLoRA paper, Dettmers et al., 2023, arXiv:2305.14314, trains on the
responses only): the model should learn to answer, not to write questions. The end-of-turn token
is part of the answer, so the model also learns to *stop*.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

# Every task prompt starts with this short system message. It gives the base model a fair chance
# (it is told to be brief), and it is 14 tokens shorter than SmolLM2's default system message,
# which makes every training step and every evaluation about 20% cheaper.
SYSTEM_PROMPT = "Reply with the answer only."
IGNORE_INDEX = -100  # labels with this value carry no loss (torch.nn.functional.cross_entropy's default)
SPLITS = ("train", "validation", "test")
_SPLIT_SHARES = (80, 10, 10)  # percent of all answers that land in each split


@dataclass(frozen=True)
class Example:
    """One question and its exact expected answer."""

    question: str
    answer: str

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not isinstance(self.answer, str):
            raise TypeError("Example.question and Example.answer must be strings")
        if not self.question.strip() or not self.answer.strip():
            raise ValueError("Example.question and Example.answer must not be empty")


# ----------------------------------------------------------------------------- the date task

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DATE_QUESTIONS = (
    "Convert the date to YYYY-MM-DD: {}",
    "Write this date in ISO format (YYYY-MM-DD): {}",
    "What is {} as YYYY-MM-DD?",
    "Rewrite as YYYY-MM-DD: {}",
)
_FIRST_DAY = datetime.date(1950, 1, 1).toordinal()
_LAST_DAY = datetime.date(2049, 12, 31).toordinal()


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _date_text(date: datetime.date, style: int) -> str:
    month, short = _MONTHS[date.month - 1], _MONTHS[date.month - 1][:3]
    styles = (
        f"{month} {date.day}, {date.year}",  # October 4, 2025
        f"{date.day} {month} {date.year}",  # 4 October 2025
        f"{short} {date.day}, {date.year}",  # Oct 4, 2025
        f"{_ordinal(date.day)} of {month}, {date.year}",  # 4th of October, 2025
        f"{month} {_ordinal(date.day)}, {date.year}",  # October 4th, 2025
        f"{date.strftime('%A')}, {month} {date.day}, {date.year}",  # Saturday, October 4, 2025
    )
    return styles[style % len(styles)]


def _date_example(rng: random.Random) -> Example:
    date = datetime.date.fromordinal(rng.randint(_FIRST_DAY, _LAST_DAY))
    text = _date_text(date, rng.randrange(6))
    return Example(rng.choice(_DATE_QUESTIONS).format(text), date.isoformat())


# ----------------------------------------------------------------------------- the extraction task

_NAMES = ("Maria", "James", "Aiko", "Omar", "Ingrid", "Kwame", "Lucia", "Dmitri", "Priya", "Mateo", "Fatima",
          "Chen", "Sofia", "Tomás", "Amara", "Lars", "Yuki", "Elena", "Rahul", "Nadia", "Hugo", "Zainab",
          "Felix", "Leila", "Pablo", "Grace", "Ivan", "Mei", "Oscar", "Hana", "Samuel", "Anika", "Diego",
          "Clara", "Tariq", "Freya", "Jonas", "Ama", "Victor", "Rosa", "Emil", "Noor", "Pedro", "Lena")
_CITIES = ("Lisbon", "Nairobi", "Osaka", "Toronto", "Bergen", "Accra", "Seville", "Kraków", "Pune", "Lima",
           "Marseille", "Hanoi", "Porto", "Tbilisi", "Quito", "Dublin", "Adelaide", "Bologna", "Cusco", "Tallinn",
           "Mombasa", "Leeds", "Montreal", "Busan", "Cork", "Dakar", "Ghent", "Kyoto", "Lyon", "Malmö")
_EXTRACT_QUESTIONS = (
    "Extract name, age and city as one-line JSON: {}",
    "Return the person's name, age and city as JSON on one line: {}",
)
_EXTRACT_SENTENCES = (
    "{name} is {age} years old and lives in {city}.",
    "{city} resident {name}, {age}, opened a small bakery last spring.",
    "{name}, now {age}, has lived in {city} since childhood.",
    "My neighbour {name} ({age}) grew up in {city}.",
    "Born and raised in {city}, {name} turned {age} this year.",
    "{name}, a {age}-year-old engineer from {city}, won the chess tournament.",
)


def _extract_example(rng: random.Random) -> Example:
    name, city, age = rng.choice(_NAMES), rng.choice(_CITIES), rng.randint(18, 89)
    sentence = rng.choice(_EXTRACT_SENTENCES).format(name=name, age=age, city=city)
    answer = json.dumps({"name": name, "age": age, "city": city}, ensure_ascii=False)
    return Example(rng.choice(_EXTRACT_QUESTIONS).format(sentence), answer)


# ----------------------------------------------------------------------------- examples and splits

_GENERATORS: dict[str, Callable[[random.Random], Example]] = {"dates": _date_example, "extract": _extract_example}
TASKS: tuple[str, ...] = tuple(_GENERATORS)
TASK_DESCRIPTIONS = {
    "dates": 'rewrite a written date as YYYY-MM-DD ("October 4, 2025" -> "2025-10-04")',
    "extract": 'pull name, age and city out of a sentence as one-line JSON',
}


def split_of(answer: str) -> str:
    """The split an answer belongs to (stable: a hash of the answer, 80/10/10 train/validation/test)."""
    bucket = int.from_bytes(hashlib.sha256(answer.encode("utf-8")).digest()[:4], "big") % 100
    edge = 0
    for split, share in zip(SPLITS, _SPLIT_SHARES):
        edge += share
        if bucket < edge:
            return split
    raise AssertionError("unreachable")


def make_examples(task: str, n: int, split: str = "train", seed: int = 0) -> list[Example]:
    """``n`` distinct examples of ``task`` from ``split`` (deterministic for a given seed).

    Args:
        task: one of :data:`TASKS` (``"dates"``, ``"extract"``).
        n: how many examples (>= 0).
        split: ``"train"``, ``"validation"`` or ``"test"``; no answer appears in two splits.
        seed: another seed gives other examples from the same split.

    Raises:
        ValueError: an unknown task or split (the message lists the known ones), or a negative n.
    """
    if task not in _GENERATORS:
        raise ValueError(f"Unknown task {task!r}. Known tasks: {', '.join(TASKS)}")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Known splits: {', '.join(SPLITS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    rng = random.Random(f"{task}/{split}/{seed}")  # a str seed is hashed with SHA-512: same on every machine
    examples: list[Example] = []
    seen: set[str] = set()
    tries = 0
    while len(examples) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"could not find {n} distinct {task!r} examples in the {split!r} split; ask for fewer")
        example = _GENERATORS[task](rng)
        if split_of(example.answer) == split and example.question not in seen:
            seen.add(example.question)
            examples.append(example)
    return examples


def normalize(text: str) -> str:
    """What exact match compares: the text without surrounding whitespace."""
    return text.strip()


def exact_match(prediction: str, answer: str) -> bool:
    """True when the prediction is exactly the answer (surrounding whitespace aside)."""
    return normalize(prediction) == normalize(answer)


# ----------------------------------------------------------------------------- tokens for training


def prompt_text(tokenizer, question: str) -> str:
    """The chat-template prompt the model sees: :data:`SYSTEM_PROMPT`, then the question."""
    from lora_edu.models import chat_prompt

    return chat_prompt(tokenizer, question, system=SYSTEM_PROMPT)


def encode_example(tokenizer, example: Example, max_len: int) -> dict[str, list[int]]:
    """Token ids and labels of one example: labels are ``-100`` on the prompt, the ids on the answer.

    The prompt and the answer are tokenized separately and joined, so the boundary is exact; the
    answer ends with the tokenizer's end-of-sequence token (``<|im_end|>`` for SmolLM2).

    Returns:
        ``{"input_ids": [...], "labels": [...]}``, two lists of equal length <= ``max_len``.

    Raises:
        ValueError: the example needs more than ``max_len`` tokens (it is never cut silently:
            a cut answer would teach the model a wrong answer).
    """
    if not isinstance(example, Example):
        raise TypeError(f"example must be an Example, got {type(example).__name__}")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token_id; the answer needs an end token")
    prompt_ids = tokenizer(prompt_text(tokenizer, example.question), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = prompt_ids + answer_ids
    if len(input_ids) > max_len:
        raise ValueError(
            f"this example needs {len(input_ids)} tokens ({len(prompt_ids)} prompt + {len(answer_ids)} answer) "
            f"but max_len is {max_len}; raise max_len (TrainConfig.seq_len). Question: {example.question!r}"
        )
    labels = [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    return {"input_ids": input_ids, "labels": labels}


def collate(features: Sequence[dict[str, list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad encoded examples into a batch: ``input_ids``, ``attention_mask``, ``labels`` (B, T).

    T is the longest example in the batch (not a fixed length: padding costs compute). Padding
    positions get attention mask 0 and label -100.
    """
    if not features:
        raise ValueError("collate needs at least one example")
    if not isinstance(pad_token_id, int):
        raise TypeError(f"pad_token_id must be an int, got {pad_token_id!r}")
    longest = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), longest), pad_token_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(features), longest), dtype=torch.long)  # (B, T)
    for row, f in enumerate(features):
        if len(f["input_ids"]) != len(f["labels"]):
            raise ValueError(f"example {row}: input_ids and labels differ in length")
        n = len(f["input_ids"])
        ids[row, :n] = torch.tensor(f["input_ids"])
        labels[row, :n] = torch.tensor(f["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
