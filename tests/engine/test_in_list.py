"""The in_list node: codec, validation, both evaluators, explain and the inputs the store prefetches."""

from __future__ import annotations

import pytest

from segmentd.engine.codec import rule_from_json, rule_to_json
from segmentd.engine.compiler import CompiledSegments, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.explain import explain
from segmentd.engine.rules import Group, ListReference, SegmentReference
from segmentd.engine.validation import validate_rule
from segmentd.errors import InvalidRule, SegmentNotFound

BETA = ListReference("beta-testers")


def _no_segments(name: str):
    raise SegmentNotFound(name)


@pytest.mark.parametrize(
    "data",
    [{"in_list": {"name": "beta-testers"}}, {"inList": {"name": "beta-testers"}}],
    ids=["field-name", "json-name"],
)
def test_rule_from_json__in_list__decodes(data):
    assert rule_from_json(data) == BETA


def test_rule_to_json__in_list__writes_the_proto_json_name():
    assert rule_to_json(BETA) == {"inList": {"name": "beta-testers"}}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"in_list": {"name": 3}}, "rule.in_list.name"),
        ({"inList": {"list": "x"}}, "rule.in_list.list"),
        ({"inLists": {"name": "x"}}, "rule.inLists"),
    ],
)
def test_rule_from_json__malformed_in_list__names_the_field(data, field):
    with pytest.raises(InvalidRule) as error:
        rule_from_json(data)
    assert error.value.field == field


@pytest.mark.parametrize("name", ["", "Beta", "x" * 64, "beta testers"])
def test_validate_rule__bad_list_name__names_the_field(name):
    with pytest.raises(InvalidRule) as error:
        validate_rule(Group("all", (ListReference(name),)))
    assert error.value.field == "rule.all.rules[0].in_list.name"


def test_validate_rule__list_name__passes():
    validate_rule(BETA)


@pytest.mark.parametrize(("lists", "expected"), [(frozenset({"beta-testers"}), True), (frozenset(), False)])
def test_in_list__both_evaluators__membership_of_the_user_id(lists, expected):
    # Given
    ctx = EvaluationContext({}, "u1", lists=lists)
    compiled = CompiledSegments({"beta": BETA, "not-beta": Group("none", (BETA,))})

    # When / Then
    assert compile_rule(BETA, _no_segments)(ctx) is expected
    assert compiled.evaluate(ctx) == (["beta"] if expected else ["not-beta"])
    assert "in lists" in compiled.source


def test_required_lists__follows_references():
    # Given
    compiled = CompiledSegments(
        {
            "beta": BETA,
            "vip-beta": Group("all", (SegmentReference("beta"), ListReference("vip"), ListReference("vip"))),
            "plain": Group("all"),
        }
    )

    # When / Then
    assert compiled.required_lists() == {"beta-testers", "vip"}
    assert compiled.required_lists(["vip-beta"]) == {"beta-testers", "vip"}
    assert compiled.required_lists(["plain"]) == frozenset()


@pytest.mark.parametrize(
    ("lists", "matched", "detail"),
    [
        (frozenset({"beta-testers"}), True, "in user list 'beta-testers' holds"),
        (frozenset(), False, "not in user list 'beta-testers' does not hold"),
    ],
)
def test_explain__in_list__reports_membership(lists, matched, detail):
    explanation = explain(BETA, EvaluationContext({}, "u1", lists=lists), _no_segments)

    assert explanation.matched is matched
    assert explanation.detail == detail
    assert not explanation.attribute_present
