"""Properties of random rule trees: validation is total, compiled rules are total, the algebra
of groups holds, explain agrees with compile, and the JSON form round-trips."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentd.engine.codec import rule_from_json, rule_to_json
from segmentd.engine.compiler import CompiledSegments, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.explain import explain
from segmentd.engine.rules import Group, Rule
from segmentd.engine.validation import validate_rule
from segmentd.errors import InvalidRule
from tests.engine.support import no_segments
from tests.strategies import SEGMENT_NAMES, contexts, rules, valid_rules

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(rules())
def test_validate_rule__any_rule__passes_or_raises_invalid_rule_only(rule: Rule) -> None:
    # Given / When
    try:
        validate_rule(rule)
    except InvalidRule as error:
        # Then
        assert error.field.startswith("rule")


@PROPERTY_SETTINGS
@given(valid_rules())
def test_validate_rule__generated_valid_rule__passes(rule: Rule) -> None:
    # Given / When / Then
    validate_rule(rule)


@PROPERTY_SETTINGS
@given(valid_rules(), st.lists(contexts(), min_size=1, max_size=2))
def test_compiled_rule__random_contexts__never_raises(rule: Rule, ctxs: list[EvaluationContext]) -> None:
    # Given
    predicate = compile_rule(rule, no_segments)

    # When
    verdicts = [predicate(ctx) for ctx in ctxs]

    # Then
    assert all(isinstance(verdict, bool) for verdict in verdicts)


@PROPERTY_SETTINGS
@given(valid_rules(max_leaves=4), contexts())
def test_groups__single_rule__none_none_all_any_equal_the_rule(rule: Rule, ctx: EvaluationContext) -> None:
    # Given
    expected = compile_rule(rule, no_segments)(ctx)
    variants = [
        Group("none", (Group("none", (rule,)),)),
        Group("all", (rule,)),
        Group("any", (rule,)),
    ]

    # When
    verdicts = [compile_rule(variant, no_segments)(ctx) for variant in variants]

    # Then
    assert verdicts == [expected] * 3


@PROPERTY_SETTINGS
@given(valid_rules(max_leaves=4), valid_rules(max_leaves=4), contexts())
def test_groups__two_rules__obey_de_morgan(left: Rule, right: Rule, ctx: EvaluationContext) -> None:
    # Given
    none_of_both = Group("none", (left, right))
    all_of_negations = Group("all", (Group("none", (left,)), Group("none", (right,))))

    # When
    verdicts = [compile_rule(rule, no_segments)(ctx) for rule in (none_of_both, all_of_negations)]

    # Then
    assert verdicts[0] == verdicts[1]


@PROPERTY_SETTINGS
@given(
    st.fixed_dictionaries({name: valid_rules(max_leaves=4) for name in SEGMENT_NAMES}),
    valid_rules(segment_names=SEGMENT_NAMES),
    contexts(),
)
def test_explain__random_rule__agrees_with_compile(
    segments: dict[str, Rule], rule: Rule, ctx: EvaluationContext
) -> None:
    # Given: the referenced segments reference nothing, so there is no cycle.
    compiled = CompiledSegments(segments)

    # When
    explanation = explain(rule, ctx, segments.__getitem__)

    # Then
    assert explanation.matched == compile_rule(rule, compiled.resolve)(ctx)
    pending = [(explanation, rule)]
    while pending:  # every node's verdict, not only the root's
        node, node_rule = pending.pop()
        assert node.matched == compile_rule(node_rule, compiled.resolve)(ctx)
        if isinstance(node_rule, Group):
            pending.extend(zip(node.children, node_rule.rules, strict=True))


@PROPERTY_SETTINGS
@given(rules(unknown_operators=False))
def test_codec__any_rule__round_trips(rule: Rule) -> None:
    # Given / When
    decoded = rule_from_json(rule_to_json(rule))

    # Then
    assert decoded == rule


@PROPERTY_SETTINGS
@given(valid_rules(segment_names=SEGMENT_NAMES))
def test_codec__valid_rule_through_json_text__round_trips(rule: Rule) -> None:
    # Given
    text = json.dumps(rule_to_json(rule))

    # When
    decoded = rule_from_json(json.loads(text))

    # Then
    assert decoded == rule
