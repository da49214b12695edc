"""Statistics and overlaps computed by the database equal a Python recomputation.

Random populations (numbers that add up exactly in doubles, strings, booleans, lists and
missing values at the aggregated and the grouping traits), random segments, on SQLite and
PostgreSQL: every figure is compared exactly, so both stores give the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.engine.compiler import Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.rules import Condition, Group, Rule
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.store.models import Base
from segmentd.store.stats import StatsQueries, TraitFigures
from tests.stats.reference import group_value, ranked_groups, trait_figures

MAX_EXAMPLES = int(os.environ.get("SEGMENTD_STATS_EXAMPLES", "60"))
_NOW = datetime(2026, 6, 1, tzinfo=UTC)
_PROFILES = Base.metadata.tables["profiles"]
_EVENTS = Base.metadata.tables["events"]
_TRAITS = ("mrr", "usage.hours")
_MAX_GROUPS = 3

# Integers and quarters: every partial sum is exact in a double, so sums compare exactly.
_numbers = st.integers(-(10**6), 10**6) | st.integers(-(4 * 10**6), 4 * 10**6).map(lambda n: n / 4)
_values = _numbers | st.sampled_from(["12", "x", True, False, None, [1, 2], {"a": 1}])
_group_values = st.sampled_from(["ads", "seo", "Éclair", "zz", "a", 1, 2.5, True, False, None, [1]])


@st.composite
def _profiles(draw: st.DrawFn) -> list[dict[str, Any]]:
    profiles = []
    for _ in range(draw(st.integers(0, 25))):
        traits: dict[str, Any] = {"tier": draw(st.integers(0, 5))}
        for key, values in (("mrr", _values), ("channel", _group_values)):
            if draw(st.booleans()) or draw(st.booleans()):
                traits[key] = draw(values)
        if draw(st.booleans()):
            traits["usage"] = {"hours": draw(_values)}
        profiles.append(traits)
    return profiles


def _rules() -> st.SearchStrategy[Rule]:
    leaves = st.builds(
        Condition,
        attribute=st.just("tier"),
        operator=st.sampled_from(["GREATER_THAN_OR_EQUALS", "LESS_THAN", "EQUALS"]),
        value=st.integers(0, 5),
    ) | st.builds(Condition, attribute=st.just("channel"), operator=st.just("EXISTS"))
    kinds = st.sampled_from(["all", "any", "none"])
    return st.recursive(leaves, lambda children: st.builds(Group, kinds, st.tuples(children)), max_leaves=3)


async def _store(engine: AsyncEngine, profiles: Sequence[Mapping[str, Any]]) -> None:
    async with engine.begin() as connection:
        await connection.execute(delete(_EVENTS))
        await connection.execute(delete(_PROFILES))
        if profiles:
            rows = [
                {"user_id": f"u{i}", "traits": traits, "create_time": _NOW, "update_time": _NOW}
                for i, traits in enumerate(profiles)
            ]
            await connection.execute(insert(_PROFILES), rows)


def _sql(rule: Rule, dialect: str) -> Any:
    return compile_rule_sql(
        rule, dialect=dialect, profiles=_PROFILES, events=_EVENTS, now=_NOW,
        percentile_thresholds={}, resolve_rule=lambda name: Group("all"),
    )  # fmt: skip


def _no_reference(name: str) -> Predicate:
    raise AssertionError(f"the rules drawn reference no segment, not {name!r}")


def _members(rule: Rule, profiles: Sequence[dict[str, Any]]) -> list[int]:
    predicate = compile_rule(rule, _no_reference)
    return [
        i
        for i, traits in enumerate(profiles)
        if predicate(
            EvaluationContext(
                traits=traits, user_id=f"u{i}", now=_NOW, event_counts={}, percentile_thresholds={}
            )
        )
    ]


def _expect(
    got: Sequence[TraitFigures], members: Sequence[dict[str, Any]], population: Sequence[dict[str, Any]]
) -> None:
    for figures, attribute in zip(got, _TRAITS, strict=True):
        expected = trait_figures(members, population, attribute)
        assert figures.attribute == attribute
        assert (figures.count, figures.sum, figures.mean, figures.min, figures.max) == (
            expected.count, expected.sum, expected.mean, expected.min, expected.max,
        )  # fmt: skip
        assert (figures.p50, figures.p90, figures.share_of_sum) == (
            expected.p50, expected.p90, expected.share_of_sum,
        )  # fmt: skip


@settings(
    max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(profiles=_profiles(), rules=st.lists(_rules(), min_size=2, max_size=4))
async def test_compare__random_population__equals_python(engine, profiles, rules) -> None:
    # Given
    await _store(engine, profiles)
    queries = StatsQueries(engine)
    # When
    figures, overlaps = await queries.compare([_sql(rule, queries.dialect) for rule in rules], _TRAITS)
    # Then
    members = [set(_members(rule, profiles)) for rule in rules]
    for got, ids in zip(figures, members, strict=True):
        assert (got.member_count, got.population_count) == (len(ids), len(profiles))
        assert got.share == (len(ids) / len(profiles) if profiles else 0.0)
        _expect(got.traits, [profiles[i] for i in sorted(ids)], profiles)
    assert [(o.a, o.b, o.both, o.only_a, o.only_b) for o in overlaps] == [
        (a, b, len(members[a] & members[b]), len(members[a] - members[b]), len(members[b] - members[a]))
        for a in range(len(rules))
        for b in range(a + 1, len(rules))
    ]


@settings(
    max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(profiles=_profiles(), rule=_rules())
async def test_grouped__random_population__equals_python(engine, profiles, rule) -> None:
    # Given
    await _store(engine, profiles)
    queries = StatsQueries(engine, max_groups=_MAX_GROUPS)
    # When
    got = await queries.grouped(_sql(rule, queries.dialect), _TRAITS, ("channel",))
    # Then
    members = [profiles[i] for i in _members(rule, profiles)]
    assert (got.member_count, got.population_count) == (len(members), len(profiles))
    _expect(got.traits, members, profiles)
    ranked = ranked_groups(members, "channel")
    named = ranked[:_MAX_GROUPS]
    assert [(g.value, g.member_count, g.rest) for g in got.groups[:_MAX_GROUPS]] == [
        (value, count, False) for value, count in named
    ]
    for group, (value, _) in zip(got.groups, named, strict=False):
        in_group = [m for m in members if _same(group_value(m, "channel"), value)]
        _expect(group.traits, in_group, profiles)
    if len(ranked) > _MAX_GROUPS:
        rest = got.groups[-1]
        assert (rest.rest, rest.value, rest.value_count) == (True, None, len(ranked) - _MAX_GROUPS)
        kept = [value for value, _ in named]
        others = [m for m in members if not any(_same(group_value(m, "channel"), v) for v in kept)]
        assert rest.member_count == len(others)
        _expect(rest.traits, others, profiles)
    else:
        assert len(got.groups) == len(ranked)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
