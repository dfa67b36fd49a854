"""Checkers for notebook 01 (rank and SVD): rank, storage, energy and the Eckart-Young error."""

from __future__ import annotations

import math

from lora_edu.exercises._feedback import Feedback, numeric_answer, right, wrong

# Exercise 01.1: the rank of this matrix (row 2 is twice row 1; row 3 is new).
RANK_MATRIX = ((1.0, 2.0, 3.0), (2.0, 4.0, 6.0), (1.0, 0.0, 1.0))

# Exercise 01.2: a rank-8 factorisation of SmolLM2's gate_proj (out 1536, in 576).
LAYER_SHAPE = (1536, 576)
LAYER_RANK = 8

# Exercises 01.3 and 01.4: a matrix with these singular values.
SPECTRUM = (8.0, 5.0, 3.0, 2.0, 1.0, 1.0, 0.5, 0.5)
ENERGY_TARGET = 0.9
ERROR_RANK = 2


@numeric_answer
def check_matrix_rank(value: float) -> Feedback:
    """Exercise 01.1: the rank of ``RANK_MATRIX``."""
    if value == 2:
        return right("row 2 = 2 x row 1 adds no new direction; row 3 (1, 0, 1) is not a multiple of (1, 2, 3). "
                     "Two independent rows: rank 2, so it factors as (3 x 2)(2 x 3).")
    if value == 3:
        return wrong("a 3 x 3 matrix has rank 3 only if no row is a combination of the others. Compare rows 1 and 2.")
    if value == 1:
        return wrong("rows 1 and 2 are multiples of each other, but is row 3 (1, 0, 1) a multiple of (1, 2, 3)?")
    return wrong("the rank is the number of independent rows (or columns); it is between 0 and 3 here.")


@numeric_answer
def check_factored_size(value: float) -> Feedback:
    """Exercise 01.2: the numbers stored by a rank-8 factorisation B (1536 x 8) A (8 x 576) of gate_proj."""
    (m, n), r = LAYER_SHAPE, LAYER_RANK
    expected = r * (m + n)
    if value == expected:
        return right(f"r(m + n) = {r} x ({m} + {n}) = {expected:,} numbers instead of {m * n:,}: "
                     f"{expected / (m * n):.1%} of the full matrix.")
    if value in (r * m, r * n):
        return wrong("that is one factor only; B is (m x r) and A is (r x n), and both are stored.")
    if value == m * n - expected:
        return wrong("that is how many numbers you save; the question asks how many are stored.")
    if value == r * m * n:
        return wrong("r x m x n would be r full matrices. Each factor is thin: count B's and A's entries.")
    if value == m * n:
        return wrong("that is the full matrix W. Count the entries of B (m x r) and A (r x n) instead.")
    return wrong("B has m x r entries and A has r x n: add them.")


@numeric_answer
def check_rank_for_energy(value: float) -> Feedback:
    """Exercise 01.3: the smallest r keeping at least 90% of the energy of ``SPECTRUM``."""
    squares = [s * s for s in SPECTRUM]
    total = sum(squares)
    kept = [sum(squares[:r]) / total for r in range(1, len(SPECTRUM) + 1)]
    expected = next(r for r, k in enumerate(kept, 1) if k >= ENERGY_TARGET)
    plain = [sum(SPECTRUM[:r]) / sum(SPECTRUM) for r in range(1, len(SPECTRUM) + 1)]
    unsquared = next(r for r, k in enumerate(plain, 1) if k >= ENERGY_TARGET)
    if value == expected:
        return right(f"energy is the sum of squared singular values: r={expected} keeps "
                     f"{kept[expected - 1]:.1%}, r={expected - 1} only {kept[expected - 2]:.1%}.")
    if value == unsquared:
        return wrong("you summed the singular values themselves; energy sums their squares, s_i².")
    if value == expected - 1:
        return wrong(f"r={expected - 1} keeps {kept[expected - 2]:.1%}, just under 90%: the smallest r *at least* 90%.")
    if not 1 <= value <= len(SPECTRUM):
        return wrong(f"r is a rank between 1 and {len(SPECTRUM)} here.")
    return wrong("add s_1², s_2², ... until the running sum reaches 90% of the sum of all s_i².")


@numeric_answer
def check_truncation_error(value: float) -> Feedback:
    """Exercise 01.4: the Frobenius error of the best rank-2 approximation of a matrix with ``SPECTRUM``."""
    dropped = SPECTRUM[ERROR_RANK:]
    expected = math.sqrt(sum(s * s for s in dropped))
    if math.isclose(value, expected, rel_tol=1e-3):
        return right(f"Eckart-Young: sqrt({' + '.join(f'{s:g}²' for s in dropped)}) = {expected:.4f}. "
                     "No rank-2 matrix gets closer.")
    if math.isclose(value, dropped[0]):
        return wrong(f"{dropped[0]:g} = s_3 is the error in the spectral norm; the Frobenius norm "
                     "takes the root of the sum of all dropped s_i².")
    if math.isclose(value, sum(dropped)):
        return wrong("you added the dropped singular values; add their squares, then take the square root.")
    if math.isclose(value, expected**2, rel_tol=1e-3):
        return wrong("that is the squared error; take the square root.")
    return wrong(f"the best rank-{ERROR_RANK} matrix keeps s_1 and s_2; the error is the norm of the rest.")
