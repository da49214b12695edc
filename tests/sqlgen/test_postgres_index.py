"""Equality tests compile to ``traits @> ...``, which the GIN (jsonb_path_ops) index serves."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from segmentd.engine.rules import Condition, Group, Rule
from segmentd.sqlgen.compiler import compile_rule_sql
from tests.sqlgen.helpers import events_table, postgres_plan, profiles_table
from tests.strategies import NOW

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(Condition("plan", "EQUALS", "free"), id="equals-string"),
        pytest.param(Condition("company.size", "EQUALS", 7), id="equals-nested-number"),
        pytest.param(Condition("plan", "IN", ["free", "trial", True]), id="in-short-list"),
        pytest.param(Condition("tags", "CONTAINS", 3), id="contains-number"),
        pytest.param(
            Group("all", (Condition("plan", "EQUALS", "free"), Condition("mrr", "GREATER_THAN", 5))),
            id="equals-and-other",
        ),
    ],
)
async def test_compile_rule_sql__equality__can_use_gin_index(pg_engine, rule: Rule):
    # Given
    expression = compile_rule_sql(
        rule,
        dialect="postgresql",
        profiles=profiles_table,
        events=events_table,
        now=NOW,
        percentile_thresholds={},
        resolve_rule=lambda name: pytest.fail(name),
    )

    # When: the planner may not scan the table, so it must find an index path if there is one
    statement = select(profiles_table.c.user_id).where(expression)
    plan = await postgres_plan(pg_engine, statement, {"enable_seqscan": "off"})

    # Then
    assert any("Bitmap Index Scan on ix_profiles_traits" in line for line in plan), "\n".join(plan)
