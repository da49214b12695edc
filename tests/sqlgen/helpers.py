"""Run a compiled rule against a few profiles in a real database, in a rolled-back transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import insert, not_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from segmentd.engine.rules import Rule
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.sqlgen.json_values import two_valued
from segmentd.store.models import Base
from tests.sqlgen.databases import empty_tables
from tests.strategies import NOW

profiles_table = Base.metadata.tables["profiles"]
events_table = Base.metadata.tables["events"]
_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def _no_segments(name: str) -> Rule:
    raise AssertionError(f"unexpected reference to {name}")


async def sql_members(
    engine: AsyncEngine,
    rule: Rule,
    profiles: Mapping[str, Mapping[str, Any]],
    *,
    events: Iterable[tuple[str, str, date, int]] = (),
    now: datetime = NOW,
    thresholds: Mapping[tuple[str, float], float | None] | None = None,
    resolve_rule: Callable[[str], Rule] = _no_segments,
) -> set[str]:
    """Return the user ids the rule selects; also check NULL only ever means "not a member".

    Every profile must be selected either by the expression or by the negation of its
    two-valued form, and that form selected as a column must never be NULL.
    """
    expression = compile_rule_sql(
        rule,
        dialect=engine.dialect.name,
        profiles=profiles_table,
        events=events_table,
        now=now,
        percentile_thresholds=thresholds or {},
        resolve_rule=resolve_rule,
    )
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            await empty_tables(connection)
            if profiles:
                await connection.execute(
                    insert(profiles_table),
                    [
                        {
                            "user_id": user_id,
                            "traits": traits,
                            "create_time": _CREATED,
                            "update_time": _CREATED,
                        }
                        for user_id, traits in profiles.items()
                    ],
                )
            rows = [{"user_id": u, "name": n, "day": d, "count": c} for u, n, d, c in events]
            if rows:
                await connection.execute(insert(events_table), rows)
            query = select(profiles_table.c.user_id)
            members = set(await connection.scalars(query.where(expression)))
            others = set(await connection.scalars(query.where(not_(two_valued(expression)))))
            verdicts = [
                row[1]
                for row in await connection.execute(select(profiles_table.c.user_id, two_valued(expression)))
            ]
        finally:
            await transaction.rollback()
    assert members | others == set(profiles), "a profile is neither selected nor rejected: NULL verdict"
    assert not members & others
    assert None not in verdicts
    return members


async def postgres_plan(
    engine: AsyncEngine, statement: ClauseElement, settings: Mapping[str, str]
) -> list[str]:
    """PostgreSQL's EXPLAIN of ``statement``, with ``settings`` (``SET LOCAL``) in force."""
    compiled = cast(SQLCompiler, statement.compile(engine.sync_engine))
    parameters = tuple(
        json.dumps(compiled.params[name])
        if compiled.binds[name].type.__class__.__name__ == "JSONB"
        else compiled.params[name]
        for name in compiled.positiontup or ()
    )
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            for setting, value in settings.items():
                await connection.exec_driver_sql(f"SET LOCAL {setting} = {value}")
            return [row[0] for row in await connection.exec_driver_sql(f"EXPLAIN {compiled}", parameters)]
        finally:
            await transaction.rollback()
