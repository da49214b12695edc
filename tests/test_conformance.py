"""The published conformance cases (``conformance/cases/*.json``), on every evaluator.

Each case is a rule in the segment-definition form, a profile with its per-day events and
first-stored time, a fixed ``now`` and the expected verdict. The interpreted closures, the
generated-code engine and the SQL compiler on SQLite and PostgreSQL must all give it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.engine.codec import rule_from_json
from segmentd.engine.compiler import CompiledSegments, Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.operators import OPERATORS
from segmentd.engine.percentiles import threshold_from_values
from segmentd.engine.rules import Condition, EventCondition, Group, Rule
from segmentd.engine.times import event_window_start, parse_time_us
from segmentd.engine.validation import validate_rule
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.store.models import Base
from tests.sqlgen.databases import empty_tables, pg_engine, postgres_url, sqlite_engine

CASES = sorted((Path(__file__).parents[1] / "conformance" / "cases").glob("*.json"))
_CASE_UNDER_TEST = "case-under-test"


@dataclass(frozen=True)
class Case:
    rule: Rule
    segments: dict[str, Rule]
    now: datetime
    user_id: str
    traits: dict[str, Any]
    created: datetime
    events: list[tuple[str, date, int]]
    thresholds: dict[tuple[str, float], float | None]
    expected: bool


def _instant(text: str) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=parse_time_us(text) or 0)


def _leaves(rule: Rule) -> list[Rule]:
    return [leaf for child in rule.rules for leaf in _leaves(child)] if isinstance(rule, Group) else [rule]


def _load(path: Path) -> Case:
    data = json.loads(path.read_text())
    rule = rule_from_json(data["rule"])
    validate_rule(rule)
    segments = {name: rule_from_json(body) for name, body in data.get("segments", {}).items()}
    profile = data["profile"]
    population = data.get("population", [])
    percentiles = [
        leaf
        for leaf in _leaves(rule)
        if isinstance(leaf, Condition) and leaf.operator.startswith("PERCENTILE_")
    ]
    return Case(
        rule=rule,
        segments=segments,
        now=_instant(data["now"]),
        user_id=profile["user_id"],
        traits=profile["traits"],
        created=_instant(profile["create_time"]),
        events=[(e["name"], date.fromisoformat(e["day"]), e["count"]) for e in profile["events"]],
        thresholds={
            (leaf.attribute, float(leaf.value)): threshold_from_values(population, float(leaf.value))  # type: ignore[arg-type]
            for leaf in percentiles
        },
        expected=data["expected"],
    )


def _event_counts(case: Case) -> dict[tuple[str, int], int]:
    counts = {}
    for leaf in [*_leaves(case.rule), *(leaf for rule in case.segments.values() for leaf in _leaves(rule))]:
        if not isinstance(leaf, EventCondition):
            continue
        first = event_window_start(case.now, leaf.within_days)
        if leaf.name == "$created":
            count = int(first is None or case.created.date() >= first)
        else:
            count = sum(
                n
                for name, day, n in case.events
                if leaf.name in (name, "*") and (first is None or day >= first)
            )
        counts[leaf.name, leaf.within_days] = count
    return counts


def _context(case: Case) -> EvaluationContext:
    return EvaluationContext(
        traits=case.traits,
        user_id=case.user_id,
        now=case.now,
        event_counts=_event_counts(case),
        percentile_thresholds=case.thresholds,
    )


@pytest.fixture(params=CASES, ids=[path.stem for path in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return _load(request.param)


def test_conformance__cover_every_operator_group_and_pseudo_event() -> None:
    text = " ".join(path.read_text() for path in CASES)
    for name in [
        *(f'"{operator}"' for operator in OPERATORS),
        '"all"',
        '"any"',
        '"none"',
        '"segment"',
        '"split"',
        '"*"',
        '"$created"',
    ]:
        assert name in text, name


def test_conformance__interpreted_closures(case: Case) -> None:
    predicates: dict[str, Predicate] = {}

    def resolve(name: str) -> Predicate:
        if name not in predicates:
            predicates[name] = compile_rule(case.segments[name], resolve)
        return predicates[name]

    assert compile_rule(case.rule, resolve)(_context(case)) is case.expected


def test_conformance__generated_code(case: Case) -> None:
    compiled = CompiledSegments({**case.segments, _CASE_UNDER_TEST: case.rule})
    assert compiled.matches(_CASE_UNDER_TEST, _context(case)) is case.expected


async def _sql_verdict(engine: AsyncEngine, case: Case) -> bool:
    profiles, events = Base.metadata.tables["profiles"], Base.metadata.tables["events"]
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            await empty_tables(connection)
            await connection.execute(
                insert(profiles),
                [
                    {
                        "user_id": case.user_id,
                        "traits": case.traits,
                        "create_time": case.created,
                        "update_time": case.created,
                    }
                ],
            )
            if case.events:
                rows = [{"user_id": case.user_id, "name": n, "day": d, "count": c} for n, d, c in case.events]
                await connection.execute(insert(events), rows)
            expression = compile_rule_sql(
                case.rule,
                dialect=engine.dialect.name,
                profiles=profiles,
                events=events,
                now=case.now,
                percentile_thresholds=case.thresholds,
                resolve_rule=case.segments.__getitem__,
            )
            members = set(await connection.scalars(select(profiles.c.user_id).where(expression)))
        finally:
            await transaction.rollback()
    return case.user_id in members


async def test_conformance__sql_sqlite(sqlite_engine: AsyncEngine, case: Case) -> None:
    assert await _sql_verdict(sqlite_engine, case) is case.expected


@pytest.mark.postgres
async def test_conformance__sql_postgresql(pg_engine: AsyncEngine, case: Case) -> None:
    assert await _sql_verdict(pg_engine, case) is case.expected


__all__ = ["pg_engine", "postgres_url", "sqlite_engine"]  # fixtures, imported for pytest to find
