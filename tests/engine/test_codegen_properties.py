"""The generated code agrees with the reference closures (`compile_rule`) on random segment
sets and profiles: whole sets, subsets, and sets recompiled from an earlier compilation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentd.engine.compiler import CompiledSegments, Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.rules import Rule
from tests.sqlgen.strategies import sql_rules, sql_traits
from tests.strategies import LIST_NAMES, contexts, segment_sets, valid_rules

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _any_rules(segment_names: Sequence[str]) -> st.SearchStrategy[Rule]:
    return valid_rules(max_leaves=6, segment_names=segment_names, list_names=LIST_NAMES) | sql_rules(
        segment_names=segment_names, max_leaves=6, list_names=LIST_NAMES
    )


def _contexts() -> st.SearchStrategy[EvaluationContext]:
    with_edge_traits = st.builds(lambda ctx, traits: replace(ctx, traits=traits), contexts(), sql_traits())
    return contexts() | with_edge_traits


def reference_members(segments: Mapping[str, Rule], ctx: EvaluationContext) -> list[str]:
    """The segments that hold, by the closures, sorted."""
    predicates: dict[str, Predicate] = {}

    def resolve(name: str) -> Predicate:
        if name not in predicates:
            predicates[name] = compile_rule(segments[name], resolve)
        return predicates[name]

    return sorted(name for name in segments if resolve(name)(ctx))


@PROPERTY_SETTINGS
@given(segment_sets(_any_rules), st.lists(_contexts(), min_size=1, max_size=3))
def test_compiled_segments__random_sets__agree_with_closures(
    segments: dict[str, Rule], ctxs: list[EvaluationContext]
) -> None:
    # Given
    compiled = CompiledSegments(segments)

    # When
    verdicts = [compiled.evaluate(ctx) for ctx in ctxs]

    # Then
    assert verdicts == [reference_members(segments, ctx) for ctx in ctxs]


@PROPERTY_SETTINGS
@given(segment_sets(_any_rules), st.data())
def test_compiled_segments__random_subset__agrees_with_closures(
    segments: dict[str, Rule], data: st.DataObject
) -> None:
    # Given
    compiled = CompiledSegments(segments)
    subset = data.draw(st.lists(st.sampled_from(sorted(segments)), max_size=3))
    ctx = data.draw(_contexts())

    # When
    verdict = compiled.evaluate(ctx, subset)
    single = {name: compiled.resolve(name)(ctx) for name in subset}

    # Then
    expected = [name for name in reference_members(segments, ctx) if name in subset]
    assert verdict == expected
    assert single == {name: name in expected for name in subset}


@PROPERTY_SETTINGS
@given(segment_sets(_any_rules), st.data())
def test_compiled_segments__recompiled_from_previous__agrees_with_fresh_compile(
    old: dict[str, Rule], data: st.DataObject
) -> None:
    # Given: the first segments removed (segments only reference later ones), some changed,
    # one perhaps added (referencing any), the rest unchanged
    names = sorted(old)
    kept = names[data.draw(st.integers(0, len(names) - 1)) :]
    new: dict[str, Rule] = {}
    for i, name in enumerate(kept):
        changed = data.draw(st.booleans())
        new[name] = data.draw(_any_rules(tuple(kept[i + 1 :]))) if changed else old[name]
    if data.draw(st.booleans()):
        new["added"] = data.draw(_any_rules(tuple(kept)))
    previous = CompiledSegments(old)
    ctxs = data.draw(st.lists(_contexts(), min_size=1, max_size=3))

    # When
    recompiled = CompiledSegments(new, previous=previous)

    # Then
    fresh = CompiledSegments(new)
    verdicts = [recompiled.evaluate(ctx) for ctx in ctxs]
    assert verdicts == [fresh.evaluate(ctx) for ctx in ctxs]
    assert verdicts == [reference_members(new, ctx) for ctx in ctxs]
    unchanged = {name for name in new if name in old and repr(old[name]) == repr(new[name])}
    assert set(recompiled.regenerated) == set(new) - unchanged
