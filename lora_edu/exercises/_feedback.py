"""What a checker returns: right or not, and a sentence that helps."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Feedback:
    """The verdict of an exercise checker. Truthy when the answer is right.

    In a notebook the last expression of a cell shows it, e.g. ``✅ Right: ...`` or
    ``❌ Not yet: ...`` followed by a hint aimed at the mistake that was made.
    """

    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        return ("✅ Right: " if self.correct else "❌ Not yet: ") + self.message


NOT_ANSWERED = Feedback(False, "no answer yet. Replace `None` with your answer and run the cell again.")


def right(message: str) -> Feedback:
    return Feedback(True, message)


def wrong(message: str) -> Feedback:
    return Feedback(False, message)


def as_number(answer: object) -> float | None:
    """The answer as a float, or None when it is not a real number (bools are not numbers here)."""
    if isinstance(answer, bool):
        return None
    try:
        value = float(answer)  # ints, floats, numpy and 0-d torch scalars
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def not_a_number(answer: object) -> Feedback:
    return wrong(f"expected a number, got {answer!r} ({type(answer).__name__}).")


def answered(check: Callable[[object], Feedback]) -> Callable[[object], Feedback]:
    """Decorate a checker: ``None`` (the exercise cell left as it was) gets ``NOT_ANSWERED`` before ``check`` runs."""

    @functools.wraps(check)
    def checker(answer: object) -> Feedback:
        if answer is None:
            return NOT_ANSWERED
        return check(answer)

    return checker


def numeric_answer(check: Callable[[float], Feedback]) -> Callable[[object], Feedback]:
    """Decorate a checker of numbers: ``None`` and non-numbers get their feedback before ``check`` runs.

    The decorated checker receives the answer as a float.
    """

    @answered
    @functools.wraps(check)
    def checker(answer: object) -> Feedback:
        value = as_number(answer)
        if value is None:
            return not_a_number(answer)
        return check(value)

    return checker
