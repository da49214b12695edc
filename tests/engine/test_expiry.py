"""Until when a verdict holds: the instants at which WITHIN_LAST_DAYS conditions flip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segmentd.engine.expiry import FOREVER, relative_times, verdict_valid_until
from segmentd.engine.rules import Condition, EventCondition, Group
from segmentd.engine.times import US_PER_DAY, datetime_to_us

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW_US = datetime_to_us(NOW)


def test_relative_times__nested_groups__every_relative_condition_once():
    # Given
    rule = Group(
        "all",
        (
            Condition("signup", "WITHIN_LAST_DAYS", 7),
            Group(
                "none",
                (Condition("seen", "NOT_WITHIN_LAST_DAYS", 30), Condition("signup", "WITHIN_LAST_DAYS", 7)),
            ),
            Condition("signup", "BEFORE", "2026-01-01T00:00:00Z"),
            EventCondition("login", "GREATER_THAN", 1, 14),
        ),
    )
    # When / Then: constants and event windows do not depend on the clock
    assert relative_times([rule, Condition("plan", "EQUALS", "free")]) == {
        (("signup",), 7 * US_PER_DAY),
        (("seen",), 30 * US_PER_DAY),
    }


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ({}, FOREVER),
        ({"signup": "not a time"}, FOREVER),
        ({"signup": (NOW - timedelta(days=2)).isoformat()}, NOW_US + 5 * US_PER_DAY),
        ({"signup": (NOW - timedelta(days=8)).isoformat()}, FOREVER),  # already past: never flips again
        (
            {
                "signup": (NOW - timedelta(days=2)).isoformat(),
                "company": {"seen": (NOW - timedelta(days=29)).isoformat()},
            },
            NOW_US + US_PER_DAY,
        ),
    ],
)
def test_verdict_valid_until__earliest_flip_not_yet_past(traits, expected):
    conditions = relative_times(
        [Condition("signup", "WITHIN_LAST_DAYS", 7), Condition("company.seen", "NOT_WITHIN_LAST_DAYS", 30)]
    )
    assert verdict_valid_until(conditions, traits, NOW_US) == expected


def test_verdict_valid_until__flip_instant_itself__still_valid():
    traits = {"signup": NOW.isoformat()}
    conditions = relative_times([Condition("signup", "WITHIN_LAST_DAYS", 1)])
    assert verdict_valid_until(conditions, traits, NOW_US + US_PER_DAY) == NOW_US + US_PER_DAY
    assert verdict_valid_until(conditions, traits, NOW_US + US_PER_DAY + 1) == FOREVER
