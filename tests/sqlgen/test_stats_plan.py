"""The statistics statement may run in parallel on PostgreSQL (no CTE scan in its way)."""

from __future__ import annotations

import pytest

from segmentd.engine.rules import Condition, Rule
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.sqlgen.stats import stats_statement
from tests.sqlgen.helpers import events_table, postgres_plan, profiles_table
from tests.strategies import NOW

pytestmark = pytest.mark.postgres


def _member(rule: Rule):
    return compile_rule_sql(
        rule,
        dialect="postgresql",
        profiles=profiles_table,
        events=events_table,
        now=NOW,
        percentile_thresholds={},
        resolve_rule=lambda name: pytest.fail(name),
    )


async def _plan(pg_engine, statement) -> list[str]:
    # Parallelism made free, so the plan shows whether it is possible at all.
    free = ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size")
    return await postgres_plan(pg_engine, statement, dict.fromkeys(free, "0"))


@pytest.mark.parametrize("traits", [[], [("mrr",)]], ids=["sizes", "with-a-trait"])
async def test_stats_statement__compare__scans_the_profiles_in_parallel(pg_engine, traits):
    # Given a comparison of three segments
    members = [_member(Condition("plan", "EQUALS", plan)) for plan in ("free", "pro", "team")]
    statement = stats_statement(dialect="postgresql", profiles=profiles_table, members=members, traits=traits)

    # When it is planned
    plan = await _plan(pg_engine, statement)

    # Then the scan that evaluates the rules runs in workers, and the rules once per profile
    assert any("Parallel Seq Scan on profiles" in line for line in plan), "\n".join(plan)
    assert not any("CTE" in line for line in plan), "\n".join(plan)
