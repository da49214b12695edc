"""Nearest-rank percentiles."""

from __future__ import annotations

import pytest

from segmentd.engine.percentiles import nearest_rank, threshold_from_values
from segmentd.engine.rules import JsonValue


@pytest.mark.parametrize(
    ("percent", "count", "rank"),
    [
        pytest.param(0, 10, 1, id="zero-is-rank-1"),
        pytest.param(10, 10, 1, id="tenth-of-ten"),
        pytest.param(11, 10, 2, id="rounds-up"),
        pytest.param(50, 5, 3, id="median-of-odd"),
        pytest.param(100, 7, 7, id="hundred-is-last"),
        pytest.param(30, 10, 3, id="exact-not-float"),  # 0.3 * 10 is 3.0000000000000004 in floats
        pytest.param(0.1, 1000, 1, id="fraction"),
        pytest.param(50, 0, 1, id="empty"),
    ],
)
def test_nearest_rank__percent_and_count__is_exact_ceiling(percent: float, count: int, rank: int) -> None:
    # Given / When
    result = nearest_rank(percent, count)

    # Then
    assert result == rank


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        pytest.param([15, 20, 35, 40, 50], 30, 20.0, id="wikipedia-30th"),
        pytest.param([15, 20, 35, 40, 50], 40, 20.0, id="wikipedia-40th"),
        pytest.param([15, 20, 35, 40, 50], 50, 35.0, id="wikipedia-50th"),
        pytest.param([15, 20, 35, 40, 50], 100, 50.0, id="wikipedia-100th"),
        pytest.param([3, 1, 2], 0, 1.0, id="unsorted"),
        pytest.param([1, "2", True, None, [3], 5.5, float("nan")], 100, 5.5, id="non-numbers-skipped"),
        pytest.param(["1", False], 50, None, id="no-numbers"),
        pytest.param([], 50, None, id="empty"),
    ],
)
def test_threshold_from_values__values__is_the_nearest_rank_value(
    values: list[JsonValue], percent: float, expected: float | None
) -> None:
    # Given / When
    result = threshold_from_values(values, percent)

    # Then
    assert result == expected
