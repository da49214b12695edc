"""Groups, event conditions, splits and segment references in SQL, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    ListReference,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.split import bucket, bucket_bounds
from segmentd.errors import InvalidRule
from segmentd.sqlgen.compiler import compile_rule_sql
from tests.sqlgen.helpers import events_table, profiles_table, sql_members
from tests.strategies import NOW


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """Each test runs on both databases."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


PLAN_FREE = Condition("plan", "EQUALS", "free")
HAS_MRR = Condition("mrr", "EXISTS")
PROFILES: dict[str, dict[str, Any]] = {
    "free": {"plan": "free"},
    "paying": {"plan": "pro", "mrr": 10},
    "empty": {},
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(Group("all"), {"free", "paying", "empty"}, id="empty-all-is-true"),
        pytest.param(Group("any"), set(), id="empty-any-is-false"),
        pytest.param(Group("none"), {"free", "paying", "empty"}, id="empty-none-is-true"),
        pytest.param(Group("all", (PLAN_FREE, HAS_MRR)), set(), id="all"),
        pytest.param(Group("any", (PLAN_FREE, HAS_MRR)), {"free", "paying"}, id="any"),
        pytest.param(Group("none", (PLAN_FREE,)), {"paying", "empty"}, id="none-of-missing-is-true"),
        pytest.param(Group("none", (Group("none", (PLAN_FREE,)),)), {"free"}, id="double-negation"),
        pytest.param(
            Group("none", (Condition("plan", "NOT_EQUALS", "free"),)), {"free", "empty"}, id="none-not-equals"
        ),
        pytest.param(
            Group("none", (Condition("plan", "IN", ["free", "team"]), HAS_MRR)),
            {"empty"},
            id="none-of-in-list",
        ),
        pytest.param(
            Group("none", (Condition("plan", "IN", ["FREE"], ignore_case=True),)),
            {"paying", "empty"},
            id="none-of-in-list-ignoring-case",
        ),
        pytest.param(
            Group("none", (Condition("mrr", "EQUALS", "10"),)),
            {"free", "paying", "empty"},
            id="none-of-string-reading-like-a-number",
        ),
        pytest.param(
            Group("none", (Condition("plan", "IN", ["free", "10"]), Condition("mrr", "IN", ["x", "y"]))),
            {"paying", "empty"},
            id="none-of-in-lists-text-and-jsonb",
        ),
        pytest.param(
            Group("none", (Group("none", (Condition("plan", "NOT_IN", ["pro"]),)),)),
            {"free"},
            id="double-negation-of-not-in",
        ),
    ],
)
async def test_group__sql__combines_children(engine, rule, expected):
    # When
    members = await sql_members(engine, rule, PROFILES)

    # Then
    assert members == expected


TODAY = NOW.date()
EVENTS = [
    ("a", "login", TODAY, 2),
    ("a", "login", TODAY - timedelta(days=7), 1),
    ("a", "login", TODAY - timedelta(days=8), 5),
    ("b", "login", TODAY - timedelta(days=400), 1),
    ("b", "purchase", TODAY, 3),
]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(EventCondition("login", "EQUALS", 8), {"a"}, id="ever"),
        pytest.param(EventCondition("login", "EQUALS", 3, 7), {"a"}, id="window-includes-first-day"),
        pytest.param(EventCondition("login", "EQUALS", 2, 1), {"a"}, id="window-one-day"),
        pytest.param(EventCondition("login", "LESS_THAN", 1, 30), {"b", "c"}, id="no-rows-count-zero"),
        pytest.param(EventCondition("login", "GREATER_THAN_OR_EQUALS", 1), {"a", "b"}, id="at-least"),
        pytest.param(EventCondition("login", "NOT_EQUALS", 0), {"a", "b"}, id="not-equals"),
        pytest.param(EventCondition("login", "LESS_THAN_OR_EQUALS", 1), {"b", "c"}, id="at-most"),
        pytest.param(EventCondition("login", "GREATER_THAN", 7), {"a"}, id="greater"),
        pytest.param(EventCondition("purchase", "EQUALS", 3, 30), {"b"}, id="other-name"),
        pytest.param(EventCondition("nothing", "EQUALS", 0, 30), {"a", "b", "c"}, id="unknown-name"),
    ],
)
async def test_event__sql__counts_rows_in_window(engine, event, expected):
    # When
    members = await sql_members(engine, event, {"a": {}, "b": {}, "c": {}}, events=EVENTS)

    # Then
    assert members == expected


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=5))), id="earlier-utc-day"),
        pytest.param(datetime(2026, 2, 28, 23, 30, tzinfo=timezone(timedelta(hours=-5))), id="later-utc-day"),
        pytest.param(datetime(2026, 3, 1, 4, 0), id="naive-is-utc"),
    ],
)
async def test_event__now_in_any_offset__window_starts_on_utc_day(engine, now):
    # Given: the window of 1 day starts on the UTC date of now - 1 day
    first_day = (now.astimezone(UTC) if now.tzinfo else now).date() - timedelta(days=1)
    rows = [("in", "login", first_day, 1), ("out", "login", first_day - timedelta(days=1), 1)]

    # When
    members = await sql_members(
        engine, EventCondition("login", "EQUALS", 1, 1), {"in": {}, "out": {}}, events=rows, now=now
    )

    # Then
    assert members == {"in"}


USERS = ["u1", "u2", "user-42", "", "é😀", "'; drop", *(f"user-{i}" for i in range(40))]


@pytest.mark.parametrize(
    ("salt", "low", "high"),
    [("exp-1", 0.0, 100.0), ("exp-1", 0.0, 0.0), ("exp-1", 0.0, 50.0), ("é", 33.3, 66.6), ("", 10.0, 10.5)],
)
async def test_split__sql__buckets_like_python(engine, salt, low, high):
    # Given
    first, last = bucket_bounds(low, high)
    expected = {user for user in USERS if first <= bucket(salt, user) < last}

    # When
    profiles: dict[str, dict[str, Any]] = {user: {} for user in USERS}
    members = await sql_members(engine, PercentageSplit(salt, low, high), profiles)

    # Then
    assert members == expected


SEGMENTS: dict[str, Rule] = {
    "free": PLAN_FREE,
    "paying": Group("all", (HAS_MRR, Group("none", (SegmentReference("free"),)))),
    "loop-a": SegmentReference("loop-b"),
    "loop-b": SegmentReference("loop-a"),
}


async def test_segment_reference__sql__inlines_the_referenced_rule(engine):
    # Given
    rule = Group("any", (SegmentReference("paying"), SegmentReference("free"), SegmentReference("paying")))
    resolved: list[str] = []

    def resolve(name: str) -> Rule:
        resolved.append(name)
        return SEGMENTS[name]

    # When
    members = await sql_members(engine, rule, PROFILES, resolve_rule=resolve)

    # Then
    assert members == {"free", "paying"}
    assert sorted(resolved) == ["free", "paying"]  # each segment compiled once


def _compile(rule: Rule, dialect: str = "sqlite") -> ColumnElement[bool]:
    return compile_rule_sql(
        rule,
        dialect=dialect,
        profiles=profiles_table,
        events=events_table,
        now=NOW,
        percentile_thresholds={},
        resolve_rule=SEGMENTS.__getitem__,
    )


def test_compile_rule_sql__reference_cycle__raises_invalid_rule():
    # When / Then
    with pytest.raises(InvalidRule, match="cycle: loop-a -> loop-b -> loop-a"):
        _compile(SegmentReference("loop-a"))


def test_compile_rule_sql__unknown_dialect__raises_value_error():
    # When / Then
    with pytest.raises(ValueError, match="unsupported dialect 'mysql'"):
        _compile(PLAN_FREE, "mysql")


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(Condition("plan", "OPERATOR_UNSPECIFIED"), id="condition"),
        pytest.param(EventCondition("login", "CONTAINS", 1), id="event"),
    ],
)
def test_compile_rule_sql__invalid_operator__raises_invalid_rule(rule):
    # When / Then
    with pytest.raises(InvalidRule, match="operator"):
        _compile(rule)


@pytest.mark.parametrize(
    ("dialect", "sql_dialect"),
    [
        ("postgresql", make_url("postgresql://").get_dialect()()),
        ("sqlite", make_url("sqlite://").get_dialect()()),
    ],
)
def test_compile_rule_sql__equals__uses_index_friendly_sql(dialect, sql_dialect):
    # When
    sql = str(
        select(profiles_table.c.user_id).where(_compile(PLAN_FREE, dialect)).compile(dialect=sql_dialect)
    )

    # Then: containment on PostgreSQL (GIN jsonb_path_ops), a type-guarded json_extract on SQLite
    if dialect == "postgresql":
        assert "profiles.traits @> " in sql
    else:
        assert "json_type(profiles.traits, " in sql


def test_compile_rule_sql__in_list_without_members_table__raises_value_error():
    # When / Then
    with pytest.raises(ValueError, match="list_members"):
        _compile(ListReference("beta-testers"), "sqlite")
