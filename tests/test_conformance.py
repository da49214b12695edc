"""The published conformance cases (``conformance/cases/*.json``), on every evaluator.

Each case is a rule in the segment-definition form, a profile with its per-day events and
first-stored time, a fixed ``now`` and the expected verdict. The interpreted closures, the
generated-code engine and the SQL compiler on SQLite and PostgreSQL must all give it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.conformance import ConformanceCase as Case
from segmentd.conformance import evaluation_context, load_case, reference_verdict, shift_case
from segmentd.engine.compiler import CompiledSegments
from segmentd.engine.operators import OPERATORS
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.store.models import Base
from segmentd.store.user_list_tables import ensure_list_tables
from tests.sqlgen.databases import empty_tables, pg_engine, postgres_url, sqlite_engine

CASES = sorted((Path(__file__).parents[1] / "conformance" / "cases").glob("*.json"))
_CASE_UNDER_TEST = "case-under-test"


@pytest.fixture(params=CASES, ids=[path.stem for path in CASES])
def case_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


@pytest.fixture
def case(case_path: Path) -> Case:
    return load_case(json.loads(case_path.read_text()))


def test_conformance__cover_every_operator_group_and_pseudo_event() -> None:
    text = " ".join(path.read_text() for path in CASES)
    for name in [
        *(f'"{operator}"' for operator in OPERATORS),
        '"all"',
        '"any"',
        '"none"',
        '"segment"',
        '"split"',
        '"in_list"',
        '"*"',
        '"$created"',
    ]:
        assert name in text, name


def test_conformance__interpreted_closures(case: Case) -> None:
    assert reference_verdict(case) is case.expected


def test_conformance__generated_code(case: Case) -> None:
    compiled = CompiledSegments({**case.segments, _CASE_UNDER_TEST: case.rule})
    assert compiled.matches(_CASE_UNDER_TEST, evaluation_context(case)) is case.expected


async def _sql_verdict(engine: AsyncEngine, case: Case) -> bool:
    profiles, events = Base.metadata.tables["profiles"], Base.metadata.tables["events"]
    lists, list_members = Base.metadata.tables["user_lists"], Base.metadata.tables["user_list_members"]
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
            for name, ids in case.lists.items():
                await connection.execute(
                    insert(lists),
                    [
                        {
                            "name": name,
                            "member_count": len(ids),
                            "create_time": case.now,
                            "update_time": case.now,
                        }
                    ],
                )
                if (
                    engine.dialect.name == "postgresql"
                ):  # a list created in SQL gets its tables from the store
                    await ensure_list_tables(connection, name)
                if ids:
                    await connection.execute(
                        insert(list_members), [{"list_name": name, "user_id": u} for u in ids]
                    )
            expression = compile_rule_sql(
                case.rule,
                dialect=engine.dialect.name,
                profiles=profiles,
                events=events,
                now=case.now,
                percentile_thresholds=case.thresholds,
                resolve_rule=case.segments.__getitem__,
                list_members=list_members,
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


@pytest.mark.parametrize("days", [-400, 1, 1000])
def test_conformance__shifted_by_whole_days__same_verdict(case_path: Path, days: int) -> None:
    # Given: a case moved in time as the server runner moves it
    shifted = shift_case(json.loads(case_path.read_text()), days)
    # Then: every relation between its times, and so its verdict, is kept
    assert reference_verdict(load_case(shifted)) is load_case(json.loads(case_path.read_text())).expected


def test_shift_case__rfc3339_strings__keep_their_offset_and_form() -> None:
    data = {
        "now": "2026-03-10T09:30:00Z",
        "rule": {"condition": {"attribute": "t", "operator": "BEFORE", "value": "2026-03-01T23:00:00-05:00"}},
        "profile": {
            "user_id": "u",
            "traits": {"t": "2026-02-28T10:00:00.250Z", "note": "2026-02-28 is not a time"},
            "create_time": "2025-01-01T00:00:00Z",
            "events": [{"name": "login", "day": "2026-03-09", "count": 2}],
        },
        "expected": True,
    }
    shifted = shift_case(data, 2)
    assert shifted["now"] == "2026-03-12T09:30:00Z"
    assert shifted["rule"]["condition"]["value"] == "2026-03-03T23:00:00-05:00"
    assert shifted["profile"]["traits"] == {
        "t": "2026-03-02T10:00:00.250000Z",
        "note": "2026-02-28 is not a time",
    }
    assert shifted["profile"]["events"] == [{"name": "login", "day": "2026-03-11", "count": 2}]
    assert shifted["profile"]["create_time"] == "2025-01-03T00:00:00Z"
