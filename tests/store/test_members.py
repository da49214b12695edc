"""MemberQueries: what the streamed listing returns is exactly what the compiled query selects.

On PostgreSQL the listing reads ids through asyncpg's own cursor rather than SQLAlchemy's
result layer; this checks, on random rule trees, that the statement and its parameters
reach the database unchanged (JSONB values, expanded IN lists, dates, times).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, delete, func, insert, select, text, true
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from segmentd.engine.rules import Condition, Rule
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.store.members import KeyBuckets, MemberQueries
from segmentd.store.models import Base
from tests.strategies import NOW, traits, valid_rules

profiles = Base.metadata.tables["profiles"]
events = Base.metadata.tables["events"]
_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def _expression(engine: AsyncEngine, rule: Rule):
    return compile_rule_sql(
        rule,
        dialect=engine.dialect.name,
        profiles=profiles,
        events=events,
        now=NOW,
        percentile_thresholds={},
        resolve_rule=lambda name: Condition("x", "EXISTS"),
    )


async def _listed(queries: MemberQueries, engine: AsyncEngine, rule: Rule, after: str = "") -> list[str]:
    return [
        u async for chunk in queries.stream(_expression(engine, rule), after_user_id=after) for u in chunk
    ]


async def _selected(engine: AsyncEngine, rule: Rule, after: str = "") -> list[str]:
    query = select(profiles.c.user_id).where(_expression(engine, rule), profiles.c.user_id > after)
    async with engine.connect() as connection:
        return list(await connection.scalars(query.order_by(profiles.c.user_id)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(population=st.lists(traits(), min_size=1, max_size=12), rule=valid_rules(max_leaves=6))
async def test_stream__random_rules__exactly_the_selected_ids_in_order(engine, population, rule):
    # Given
    async with engine.begin() as connection:
        await connection.execute(delete(profiles))
        await connection.execute(
            insert(profiles),
            [
                {"user_id": f"u{i:02}", "traits": t, "create_time": _CREATED, "update_time": _CREATED}
                for i, t in enumerate(population)
            ],
        )
    queries = MemberQueries(engine, chunk_size=2, chunks_per_query=2)

    # When
    listed = await _listed(queries, engine, rule)
    resumed = await _listed(queries, engine, rule, after="u03")

    # Then
    assert listed == await _selected(engine, rule)
    assert resumed == [u for u in listed if u > "u03"]


async def test_stream__long_in_list_and_case_folding__parameters_expanded(engine):
    async with engine.begin() as connection:
        await connection.execute(
            insert(profiles),
            [
                {"user_id": u, "traits": t, "create_time": _CREATED, "update_time": _CREATED}
                for u, t in [("a", {"n": 3}), ("b", {"n": 40}), ("c", {"s": "ÉCOLE"}), ("d", {"s": "x"})]
            ],
        )
    queries = MemberQueries(engine)
    many = Condition("n", "IN", list(range(30)))
    folded = Condition("s", "IN", ["école", "y"], ignore_case=True)
    assert await _listed(queries, engine, many) == ["a"]
    assert await _listed(queries, engine, folded) == ["c"]


async def test_stream__planner_filters_and_sorts__each_profile_tested_about_once(store_url, dialect):
    # PostgreSQL's planner may answer an unbounded `... ORDER BY user_id LIMIT n` by testing
    # every remaining row and sorting, once per chunk (it does when a long AND makes it expect
    # few members): with index scans off, it has no other way. A volatile probe counts the
    # rows tested.
    if dialect != "postgresql":
        pytest.skip("a PostgreSQL planner question")
    url = make_url(store_url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url, connect_args={"server_settings": {"enable_indexscan": "off"}})
    try:
        # Given
        async with engine.begin() as connection:
            await connection.execute(text("DROP SEQUENCE IF EXISTS member_probe_tests"))
            await connection.execute(text("CREATE SEQUENCE member_probe_tests"))
            await connection.execute(
                text(
                    "CREATE OR REPLACE FUNCTION member_probe(id text) RETURNS boolean LANGUAGE plpgsql"
                    " VOLATILE AS $$ BEGIN PERFORM nextval('member_probe_tests');"
                    " RETURN right(id, 1) = '0'; END $$"
                )
            )
            await connection.execute(
                insert(profiles),
                [
                    {"user_id": f"u{i:03}", "traits": {}, "create_time": _CREATED, "update_time": _CREATED}
                    for i in range(400)
                ],
            )
        queries = MemberQueries(engine, chunk_size=2, chunks_per_query=2)
        probe = func.member_probe(profiles.c.user_id, type_=Boolean)

        # When
        listed = [u async for chunk in queries.stream(probe) for u in chunk]

        # Then
        assert listed == [f"u{i:03}" for i in range(0, 400, 10)]
        async with engine.connect() as connection:
            tests = (await connection.execute(text("SELECT last_value FROM member_probe_tests"))).scalar_one()
        assert tests <= 2 * 400
    finally:
        await engine.dispose()


async def test_stream__closed_after_first_chunk__read_ahead_cancelled_and_nothing_held(engine):
    # Given: a listing that reads its next range while the first chunk is consumed
    async with engine.begin() as connection:
        await connection.execute(
            insert(profiles),
            [
                {"user_id": f"u{i:02}", "traits": {}, "create_time": _CREATED, "update_time": _CREATED}
                for i in range(20)
            ],
        )
    stream = MemberQueries(engine, chunk_size=2, chunks_per_query=1).stream(true())

    # When
    first = await anext(stream)
    await stream.aclose()

    # Then
    assert first == ["u00", "u01"]
    assert engine.pool.checkedout() == 0
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


@pytest.mark.parametrize(
    ("after", "span", "per_bucket", "expected"),
    [
        pytest.param("", 40, 10.0, "f", id="three-buckets-from-the-start"),
        pytest.param("c", 40, 10.0, "h", id="from-inside-a-bucket"),
        pytest.param("d", 40, 10.0, "h", id="capped-at-the-last-bound"),
        pytest.param("h", 40, 10.0, None, id="past-the-last-bound"),
        pytest.param("", 40, 30.0, None, id="buckets-wider-than-half-a-span"),
        pytest.param("", 10, 5.0, "b", id="one-bucket-at-least"),
    ],
)
def test_key_buckets__upper__about_span_profiles_on_or_none(after, span, per_bucket, expected):
    buckets = KeyBuckets(("b", "d", "f", "h"), per_bucket)
    assert buckets.upper(after, span) == expected


def test_key_buckets__bounds_out_of_order__never_an_end_at_or_before_after():
    buckets = KeyBuckets(("d", "b", "a", "c"), 10.0)
    assert all(
        upper is None or upper > after
        for after in ("", "a", "b", "c", "d")
        for upper in [buckets.upper(after, 40)]
    )


async def test_stream__stale_key_statistics__exactly_the_selected_ids_in_order(engine, dialect):
    # The ranges come from the primary key's histogram, taken before most of these profiles
    # existed: some ranges hold far more profiles than meant, some none, many lie past the
    # last bound. Every listing must still be exact.
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's statistics")

    def rows(user_ids: Iterable[str]) -> list[dict[str, Any]]:
        return [
            {"user_id": u, "traits": {"n": i % 10}, "create_time": _CREATED, "update_time": _CREATED}
            for i, u in enumerate(user_ids)
        ]

    # Given
    async with engine.begin() as connection:
        await connection.execute(insert(profiles), rows(f"k{i:04}" for i in range(0, 600, 2)))
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE profiles"))
        await connection.commit()
    async with engine.begin() as connection:
        await connection.execute(insert(profiles), rows(f"k{i:04}" for i in range(1, 600, 2)))
        await connection.execute(insert(profiles), rows(f"k0100-{i:03}" for i in range(150)))
        await connection.execute(insert(profiles), rows(f"z{i:03}" for i in range(200)))
        await connection.execute(insert(profiles), rows(f"a{i:03}" for i in range(20)))
        await connection.execute(delete(profiles).where(profiles.c.user_id.between("k0300", "k0400")))
    queries = MemberQueries(engine, chunk_size=2, chunks_per_query=4)
    rules = [
        Condition("n", "EQUALS", 0),
        Condition("n", "LESS_THAN", 8),
        Condition("n", "EXISTS"),
        Condition("n", "EQUALS", 42),
    ]

    for rule in rules:
        # When
        listed = await _listed(queries, engine, rule)
        resumed = await _listed(queries, engine, rule, after="k0101")

        # Then
        assert listed == await _selected(engine, rule)
        assert resumed == await _selected(engine, rule, after="k0101")
    assert queries._buckets is not None and queries._buckets[1] is not None  # the statistics were used
