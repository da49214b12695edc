"""Percentage-split buckets and bounds."""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from math import ceil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentd.engine.rules import PercentageSplit
from segmentd.engine.split import BUCKETS, bucket, bucket_bounds, bucket_percent, decimal_fraction
from tests.engine.support import context, rule_holds


@pytest.mark.parametrize(
    ("salt", "user_id", "expected"),
    [("exp-1", "u1", 1_951_084_508), ("", "u1", 3_056_867_766)],
)
def test_bucket__salt_and_user__is_the_documented_md5_prefix(salt: str, user_id: str, expected: int) -> None:
    # Given
    reference = int(hashlib.md5(f"{salt}/{user_id}".encode()).hexdigest()[:8], 16)

    # When
    result = bucket(salt, user_id)

    # Then
    assert result == expected == reference


@pytest.mark.parametrize(
    ("from_percent", "to_percent", "expected"),
    [
        pytest.param(0, 100, (0, BUCKETS), id="everything"),
        pytest.param(50, 50, (2**31, 2**31), id="empty"),
        pytest.param(0, 10, (0, ceil(Fraction(10) * BUCKETS / 100)), id="ten-percent"),
        pytest.param(
            33.3,
            66.6,
            (ceil(Fraction("33.3") * BUCKETS / 100), ceil(Fraction("66.6") * BUCKETS / 100)),
            id="exact",
        ),
        pytest.param(25, 12.5, (2**30, 2**29), id="dyadic"),
        pytest.param(1e-300, 100, (1, BUCKETS), id="tiny-rounds-up"),
    ],
)
def test_bucket_bounds__percentages__are_exact_ceilings(
    from_percent: float, to_percent: float, expected: tuple[int, int]
) -> None:
    # Given / When
    result = bucket_bounds(from_percent, to_percent)

    # Then
    assert result == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [(0.1, Fraction(1, 10)), (33.3, Fraction(333, 10)), (10, Fraction(10)), (1e-300, Fraction(1, 10**300))],
)
def test_decimal_fraction__number__is_the_decimal_it_prints_as(number: float, expected: Fraction) -> None:
    # Given / When
    result = decimal_fraction(number)

    # Then
    assert result == expected


def test_bucket_percent__bucket__is_a_percentage() -> None:
    # Given / When
    result = bucket_percent(2**31)

    # Then
    assert result == 50.0


@pytest.mark.parametrize(
    ("from_percent", "to_percent", "expected"),
    [
        pytest.param(0, 100, True, id="whole-range"),
        pytest.param(45, 46, True, id="around-the-bucket"),  # u1/exp-1 is at 45.43 %
        pytest.param(0, 45, False, id="below"),
        pytest.param(46, 100, False, id="above"),
        pytest.param(45.43, 45.43, False, id="empty-range"),
    ],
)
def test_split__user_bucket__holds_within_range(
    from_percent: float, to_percent: float, expected: bool
) -> None:
    # Given
    split = PercentageSplit("exp-1", from_percent, to_percent)

    # When
    verdict = rule_holds(split, context(user_id="u1"))

    # Then
    assert verdict is expected


def test_split__user_at_exact_bound__low_included_high_excluded() -> None:
    # Given
    value = bucket("exp-1", "u1")
    percent = float(Fraction(value * 100, BUCKETS))
    while bucket_bounds(percent, 100)[0] != value:  # find a percent whose bound is this very bucket
        percent = math.nextafter(percent, 0)

    # When
    starting_there = rule_holds(PercentageSplit("exp-1", percent, 100), context(user_id="u1"))
    ending_there = rule_holds(PercentageSplit("exp-1", 0, percent), context(user_id="u1"))

    # Then
    assert (starting_there, ending_there) == (True, False)


def test_split__no_user_id__never_holds() -> None:
    # Given
    split = PercentageSplit("exp-1", 0, 100)

    # When
    verdict = rule_holds(split, context(user_id=None))

    # Then
    assert verdict is False


@settings(max_examples=100, deadline=None)
@given(
    salt=st.text(max_size=5),
    user_ids=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20),
    cuts=st.lists(st.floats(0, 100), max_size=4),
)
def test_split__adjacent_ranges_of_one_salt__partition_users(
    salt: str, user_ids: list[str], cuts: list[float]
) -> None:
    # Given
    bounds = [0.0, *sorted(cuts), 100.0]
    splits = [PercentageSplit(salt, low, high) for low, high in zip(bounds, bounds[1:], strict=False)]

    for user_id in user_ids:
        # When
        verdicts = [rule_holds(split, context(user_id=user_id)) for split in splits]

        # Then
        assert verdicts.count(True) == 1
        assert verdicts == [rule_holds(split, context(user_id=user_id)) for split in splits]
