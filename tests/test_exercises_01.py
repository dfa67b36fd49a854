"""Notebook 01's exercise checkers: right answers pass, typical mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lora_edu import rank
from lora_edu.exercises import check_factored_size, check_matrix_rank, check_rank_for_energy, check_truncation_error
from lora_edu.exercises import nb01

CHECKERS = [check_matrix_rank, check_factored_size, check_rank_for_energy, check_truncation_error]


def test_solutions_computed_with_the_package_pass():
    assert check_matrix_rank(rank.numerical_rank(torch.tensor(nb01.RANK_MATRIX)))
    m, n = nb01.LAYER_SHAPE
    assert check_factored_size(rank.factored_size(m, n, nb01.LAYER_RANK))
    assert check_factored_size(np.int64(rank.factored_size(m, n, nb01.LAYER_RANK)))
    assert check_rank_for_energy(rank.rank_for_energy(torch.tensor(nb01.SPECTRUM), nb01.ENERGY_TARGET))
    assert check_truncation_error(rank.tail_norm(torch.tensor(nb01.SPECTRUM), nb01.ERROR_RANK))
    assert check_truncation_error(torch.tensor(15.5).sqrt())


@pytest.mark.parametrize("checker, answer, hint", [
    (check_matrix_rank, 3, "Compare rows 1 and 2"),
    (check_matrix_rank, 1, "row 3"),
    (check_factored_size, 8 * 1536, "one factor"),
    (check_factored_size, 1536 * 576 - 8 * 2112, "save"),
    (check_factored_size, 8 * 1536 * 576, "thin"),
    (check_rank_for_energy, 5, "squares"),
    (check_rank_for_energy, 2, "at least"),
    (check_truncation_error, 3.0, "spectral"),
    (check_truncation_error, 8.0, "squares"),
    (check_truncation_error, 15.5, "square root"),
])
def test_typical_mistakes_get_specific_hints(checker, answer, hint):
    feedback = checker(answer)
    assert not feedback and hint in feedback.message


@pytest.mark.parametrize("checker", CHECKERS)
def test_checkers_handle_no_answer_and_non_numbers(checker):
    assert not checker(None) and "no answer yet" in checker(None).message
    assert not checker("two") and "expected a number" in checker("two").message
    assert not checker(False)
    assert repr(checker(None)).startswith("❌")
