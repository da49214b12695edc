"""The SQL compiler agrees with the Python evaluator, on SQLite and on PostgreSQL.

For random valid rule trees (segment references included) and a random population of
profiles, event rows and user-list members written to a real database, every profile's SQL verdict equals the
compiled Python predicate's, with the same ``now``, the same percentile thresholds (computed
by the reference implementation from the population) and event counts computed from the same
rows. The expression's two-valued form is also selected as a column (never NULL) and negated
(exactly the non-members), as a `none` group around it would use it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, not_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentd.engine.compiler import Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.percentiles import threshold_from_values
from segmentd.engine.rules import Rule
from segmentd.engine.traits import lookup, split_path
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.sqlgen.json_values import two_valued
from segmentd.store.models import Base
from segmentd.store.user_list_tables import ensure_list_tables
from tests.sqlgen.databases import empty_tables, pg_engine, postgres_url, sqlite_engine
from tests.sqlgen.strategies import (
    ALL_PERCENTS,
    key_renamings,
    rename_attribute,
    rename_keys,
    rename_rule,
    sql_rules,
    sql_traits,
)
from tests.strategies import ALPHABET, ATTRIBUTES, EVENT_NAMES, LIST_NAMES, NOW, WINDOWS

#: Examples per database; the whole file stays well under a minute on two cores.
MAX_EXAMPLES = int(os.environ.get("SEGMENTD_SQL_EXAMPLES", "200"))
_SEGMENTS = ("trial", "churn-risk", "paying-users")
# Days before `now` where event rows fall: both sides of every window's first day.
_DAYS_AGO = (0, 1, 2, 6, 7, 8, 29, 30, 31, 400)
profiles_table = Base.metadata.tables["profiles"]
events_table = Base.metadata.tables["events"]
user_lists_table = Base.metadata.tables["user_lists"]
members_table = Base.metadata.tables["user_list_members"]


@dataclass(frozen=True)
class Case:
    """One population, the segments it may reference, and the rules to check on it."""

    profiles: dict[str, dict[str, Any]]
    created: dict[str, datetime]
    events: list[tuple[str, str, date, int]]
    segments: dict[str, Rule]
    rules: list[Rule]
    now: datetime
    attributes: tuple[str, ...]
    lists: dict[str, frozenset[str]]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    renaming = draw(key_renamings())
    user_ids = draw(
        st.lists(
            st.sampled_from(("u1", "u2", "user-42")) | st.text(ALPHABET, max_size=8),
            unique=True,
            min_size=1,
            max_size=10,
        )
    )
    profiles = {user_id: rename_keys(draw(sql_traits()), renaming) for user_id in user_ids}
    # `now` is sometimes expressed in another offset: event windows are UTC days all the same.
    now = NOW + timedelta(minutes=draw(st.sampled_from((0, -12 * 60 - 1, 11 * 60 + 59))))
    now = now.astimezone(timezone(timedelta(hours=draw(st.sampled_from((0, 5, -8))))))
    rows = st.tuples(
        st.sampled_from(user_ids),
        st.sampled_from(EVENT_NAMES),
        st.sampled_from(_DAYS_AGO).map(lambda days: now.astimezone(UTC).date() - timedelta(days=days)),
        st.integers(1, 3),
    )
    events = draw(st.lists(rows, max_size=12, unique_by=lambda row: row[:3]))
    # Profiles first stored on both sides of every window's first midnight ($created).
    created = {
        user_id: datetime.combine(
            now.astimezone(UTC).date() - timedelta(days=draw(st.sampled_from(_DAYS_AGO))),
            draw(st.sampled_from((time(0), time(0, 0, 0, 1), time(23, 59, 59, 999999)))),
            tzinfo=UTC,
        )
        for user_id in user_ids
    }
    segments: dict[str, Rule] = {}
    for name in _SEGMENTS:  # each may reference the ones before it: no cycles
        segment_rule = sql_rules(segment_names=tuple(segments), max_leaves=4, list_names=LIST_NAMES)
        segments[name] = rename_rule(draw(segment_rule), renaming)
    rules = [
        rename_rule(rule, renaming)
        for rule in draw(
            st.lists(sql_rules(segment_names=_SEGMENTS, list_names=LIST_NAMES), min_size=1, max_size=4)
        )
    ]
    attributes = tuple(rename_attribute(attribute, renaming) for attribute in ATTRIBUTES)
    # Members may have no profile (a list loaded before its profiles): they must not match.
    candidates = st.sampled_from((*user_ids, "not-a-profile"))
    lists = {name: draw(st.frozensets(candidates, max_size=6)) for name in LIST_NAMES}
    return Case(profiles, created, events, segments, rules, now, attributes, lists)


def _thresholds(case: Case) -> dict[tuple[str, float], float | None]:
    """Percentile thresholds by the reference implementation, for every attribute and percent."""
    return {
        (attribute, percent): threshold_from_values(
            (lookup(traits, split_path(attribute)) for traits in case.profiles.values()), percent
        )
        for attribute in case.attributes
        for percent in ALL_PERCENTS
    }


def _event_counts(case: Case, user_id: str) -> dict[tuple[str, int], int]:
    """The reference counts: ``*`` sums every name, ``$created`` is the profile's first day."""
    today = case.now.astimezone(UTC)
    counts: dict[tuple[str, int], int] = {}
    for days in WINDOWS:
        first = None if days == 0 else (today - timedelta(days=days)).date()
        for name in (*EVENT_NAMES, "*"):
            counts[name, days] = sum(
                count
                for row_user, row_name, day, count in case.events
                if row_user == user_id and name in (row_name, "*") and (first is None or day >= first)
            )
        counts["$created", days] = int(first is None or case.created[user_id].date() >= first)
    return counts


def _python_members(case: Case, rule: Rule, thresholds: Mapping[tuple[str, float], float | None]) -> set[str]:
    predicates: dict[str, Predicate] = {}

    def resolve(name: str) -> Predicate:
        if name not in predicates:
            predicates[name] = compile_rule(case.segments[name], resolve)
        return predicates[name]

    predicate = compile_rule(rule, resolve)
    return {
        user_id
        for user_id, traits in case.profiles.items()
        if predicate(
            EvaluationContext(
                traits=traits,
                user_id=user_id,
                now=case.now,
                event_counts=_event_counts(case, user_id),
                percentile_thresholds=thresholds,
                lists=frozenset(name for name, members in case.lists.items() if user_id in members),
            )
        )
    }


async def _stored(connection: AsyncConnection, case: Case) -> Case:
    """Write the case's profiles; return the case with the traits as read back from the store.

    The server evaluates in Python the traits it reads back, so the reference must too: a
    store that returned a number other than the one written would show here.
    """
    if not case.profiles:
        return case
    await connection.execute(
        insert(profiles_table),
        [
            {"user_id": user_id, "traits": traits}
            | {"create_time": case.created[user_id], "update_time": case.created[user_id]}
            for user_id, traits in case.profiles.items()
        ],
    )
    rows = await connection.execute(select(profiles_table.c.user_id, profiles_table.c.traits))
    return dataclasses.replace(case, profiles={user_id: traits for user_id, traits in rows})


async def _check(engine: AsyncEngine, case: Case) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            await empty_tables(connection)
            case = await _stored(connection, case)
            thresholds = _thresholds(case)
            if case.events:
                await connection.execute(
                    insert(events_table),
                    [{"user_id": u, "name": n, "day": d, "count": c} for u, n, d, c in case.events],
                )
            await connection.execute(
                insert(user_lists_table),
                [
                    {"name": name, "description": "", "member_count": len(members)}
                    | {"create_time": case.now, "update_time": case.now}
                    for name, members in case.lists.items()
                ],
            )
            if engine.dialect.name == "postgresql":  # a list created in SQL gets its tables from the store
                for name in case.lists:
                    await ensure_list_tables(connection, name)
            members = [{"list_name": n, "user_id": u} for n, users in case.lists.items() for u in users]
            if members:
                await connection.execute(insert(members_table), members)
            for rule in case.rules:
                expression = compile_rule_sql(
                    rule,
                    dialect=engine.dialect.name,
                    profiles=profiles_table,
                    events=events_table,
                    now=case.now,
                    percentile_thresholds=thresholds,
                    resolve_rule=case.segments.__getitem__,
                    list_members=members_table,
                )
                expected = _python_members(case, rule, thresholds)
                event(
                    "members: "
                    + ("none" if not expected else "all" if expected == set(case.profiles) else "some")
                )
                found = set(await connection.scalars(select(profiles_table.c.user_id).where(expression)))
                verdicts = {
                    row[0]: row[1]
                    for row in await connection.execute(
                        select(profiles_table.c.user_id, two_valued(expression))
                    )
                }
                others = set(
                    await connection.scalars(
                        select(profiles_table.c.user_id).where(not_(two_valued(expression)))
                    )
                )
                assert found == expected, rule
                assert others == set(case.profiles) - expected, ("negation", rule)
                assert all(verdict is not None for verdict in verdicts.values()), ("NULL verdict", rule)
                assert {user_id for user_id, verdict in verdicts.items() if verdict} == expected, rule
        finally:
            await transaction.rollback()


_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@_SETTINGS
@given(case=cases())
async def test_sql_matches_python__sqlite(sqlite_engine: AsyncEngine, case: Case) -> None:
    await _check(sqlite_engine, case)


@pytest.mark.postgres
@_SETTINGS
@given(case=cases())
async def test_sql_matches_python__postgresql(pg_engine: AsyncEngine, case: Case) -> None:
    await _check(pg_engine, case)


__all__ = ["pg_engine", "postgres_url", "sqlite_engine"]  # fixtures, imported for pytest to find
