"""Nearest-rank percentiles, as the store computes them in SQL.

    threshold(p) = the value at rank max(1, ceil(p/100 * N)) of the N numeric values, ascending

over the N profiles holding a number at the attribute.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import ceil

from segmentd.engine.split import decimal_fraction
from segmentd.engine.traits import is_finite_number


def nearest_rank(percent: float, count: int) -> int:
    """Return the 1-based rank of the ``percent``-th percentile among ``count`` sorted values.

    Computed exactly, with ``percent`` read as the decimal it prints as
    (`segmentd.engine.split.decimal_fraction`: the 0.1th percentile of 1000 values is rank 1),
    so the store's SQL, which takes this rank as a parameter, never depends on rounding.
    """
    return max(1, ceil(decimal_fraction(percent) * count / 100))


def threshold_from_values(values: Iterable[object], percent: float) -> float | None:
    """Return the ``percent``-th percentile of the numeric ``values``; ``None`` without any.

    A reference implementation for tests: non-numbers (strings, booleans, missing values)
    are skipped, as the store only ranks profiles holding a number.
    """
    numbers = sorted(value for value in values if is_finite_number(value))
    if not numbers:
        return None
    return float(numbers[nearest_rank(percent, len(numbers)) - 1])
