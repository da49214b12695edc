"""Percentage splits: a stable bucket per (salt, user id), identical in Python and SQL.

    bucket(salt, user_id) = first 8 hex digits of md5(salt + "/" + user_id), as an int in [0, 2**32)
    split [from, to) holds  iff  ceil(from/100 * 2**32) <= bucket < ceil(to/100 * 2**32)

Adjacent splits of one salt share their bound, so they partition users exactly.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from math import ceil
from typing import Final

#: The number of buckets: a bucket is an integer in ``[0, BUCKETS)``.
BUCKETS: Final = 2**32


def bucket(salt: str, user_id: str) -> int:
    """Return the user's bucket for ``salt``, an integer in ``[0, 2**32)``."""
    digest = hashlib.md5(f"{salt}/{user_id}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16)


def bucket_bounds(from_percent: float, to_percent: float) -> tuple[int, int]:
    """Return the bucket range ``[lo, hi)`` of the split ``[from_percent, to_percent)``.

    Each bound is ``ceil(p * 2**32 / 100)`` computed exactly, with ``p`` read as the decimal
    number it prints as (`decimal_fraction`), so no floating-point rounding can move a user
    across a bound.
    """
    return _bound(from_percent), _bound(to_percent)


def bucket_percent(value: int) -> float:
    """Return a bucket as a percentage in ``[0, 100)``, for explanations."""
    return value * 100 / BUCKETS


def decimal_fraction(number: float) -> Fraction:
    """Return ``number`` as the exact decimal it prints as: ``0.1`` is 1/10.

    ``Fraction(0.1)`` would be the double's binary value, slightly above 1/10, so that
    ``ceil(0.1 / 100 * 1000)`` came out as 2: the decimal reading is the number the rule's
    author wrote (JSON text is decimal), and the one PostgreSQL's ``numeric`` would use.
    """
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


def _bound(percent: float) -> int:
    return ceil(decimal_fraction(percent) * BUCKETS / 100)
