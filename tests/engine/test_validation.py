"""Rule validation: every check, with the field path it names."""

from __future__ import annotations

from typing import Any

import pytest

from segmentd.engine import operators as op
from segmentd.engine.codec import rule_from_json
from segmentd.engine.limits import RuleLimits
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    JsonValue,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.validation import SEGMENT_NAME_PATTERN, is_valid_segment_name, validate_rule
from segmentd.errors import InvalidRule


def condition(operator: str, value: JsonValue = None, **fields: Any) -> dict[str, Any]:
    return {"condition": {"attribute": "a", "operator": operator, "value": value, **fields}}


def chain(depth: int) -> Rule:
    """A rule ``depth`` levels deep: nested ``all`` groups around one condition."""
    rule: Rule = Condition("a", op.EXISTS)
    for _ in range(depth - 1):
        rule = Group("all", (rule,))
    return rule


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(condition(op.EQUALS, True), id="equals-bool"),
        pytest.param(condition(op.EQUALS, 1e308), id="equals-large-float"),
        pytest.param(condition(op.LESS_THAN, "b", ignoreCase=True), id="ordering-string-ignore-case"),
        pytest.param(condition(op.IN, [], ignoreCase=True), id="in-empty"),
        pytest.param(condition(op.IN, ["a", 1, True, 2.5]), id="in-mixed"),
        pytest.param(condition(op.MATCHES_REGEX, "^é[a-z]+$", ignoreCase=True), id="regex-lower-case"),
        pytest.param(condition(op.MATCHES_REGEX, "\\D\\W\\S", ignoreCase=True), id="regex-escapes-upper"),
        pytest.param(condition(op.BETWEEN, [1, 1]), id="between-point"),
        pytest.param(
            condition(op.BETWEEN, ["2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00Z"]), id="between-same"
        ),
        pytest.param(condition(op.WITHIN_LAST_DAYS, 30.0), id="days-as-float"),
        pytest.param(condition(op.WITHIN_LAST_DAYS, 36_500), id="days-max"),
        pytest.param(condition(op.PERCENTILE_AT_MOST, 0), id="percentile-0"),
        pytest.param(condition(op.PERCENTILE_AT_LEAST, 100.0), id="percentile-100"),
        pytest.param({"condition": {"attribute": "a" * 256, "operator": "EXISTS"}}, id="longest-attribute"),
        pytest.param({"event": {"name": "login", "operator": "LESS_THAN", "count": 0}}, id="event-ever"),
        pytest.param(
            {"event": {"name": "e", "operator": "EQUALS", "count": 2**31 - 1, "withinDays": 36_500}},
            id="event-max",
        ),
        pytest.param({"segment": {"name": "a" * 63}}, id="longest-segment-name"),
        pytest.param({"split": {"fromPercent": 0, "toPercent": 100}}, id="split-everything"),
        pytest.param({"split": {"fromPercent": 100, "toPercent": 100}}, id="split-empty"),
        pytest.param({"any": {"rules": []}}, id="empty-group"),
    ],
)
def test_validate_rule__valid_rule__passes(data: dict[str, Any]) -> None:
    # Given
    rule = rule_from_json(data)

    # When / Then
    validate_rule(rule)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        pytest.param(
            {"event": {"operator": "EQUALS", "count": 1}}, "rule.event.name", "required", id="event-no-name"
        ),
        pytest.param(
            {"event": {"name": "$signup", "operator": "EQUALS", "count": 1}},
            "rule.event.name",
            "pseudo-events",
            id="event-unknown-pseudo-event",
        ),
        pytest.param(
            {"event": {"name": "e", "count": 1}},
            "rule.event.operator",
            "got 'OPERATOR_UNSPECIFIED'",
            id="event-unspecified",
        ),
        pytest.param(
            {"event": {"name": "e", "operator": "IN", "count": 1}},
            "rule.event.operator",
            "got 'IN'",
            id="event-in",
        ),
        pytest.param(
            {"event": {"name": "e", "operator": "EQUALS", "count": -1}},
            "rule.event.count",
            "between 0",
            id="event-negative",
        ),
        pytest.param(
            {"event": {"name": "e", "operator": "EQUALS", "count": 2**31}},
            "rule.event.count",
            "2147483647",
            id="event-int32",
        ),
        pytest.param(
            {"event": {"name": "e", "operator": "EQUALS", "count": 1, "withinDays": -1}},
            "rule.event.within_days",
            "between 0",
            id="event-negative-window",
        ),
        pytest.param(
            {"event": {"name": "e", "operator": "EQUALS", "count": 1, "withinDays": 36_501}},
            "rule.event.within_days",
            "36500",
            id="event-window-too-long",
        ),
        pytest.param(
            {"segment": {"name": "Paying"}}, "rule.segment.name", "not a segment name", id="segment-upper"
        ),
        pytest.param(
            {"segment": {"name": ""}}, "rule.segment.name", "not a segment name", id="segment-empty"
        ),
        pytest.param(
            {"segment": {"name": "a_b"}}, "rule.segment.name", "not a segment name", id="segment-underscore"
        ),
        pytest.param(
            {"segment": {"name": "a" * 64}}, "rule.segment.name", "not a segment name", id="segment-long"
        ),
        pytest.param(
            {"segment": {"name": "a\n"}}, "rule.segment.name", "not a segment name", id="segment-newline"
        ),
        pytest.param(
            {"split": {"fromPercent": -1, "toPercent": 10}},
            "rule.split.from_percent",
            "0 and 100",
            id="split-negative",
        ),
        pytest.param(
            {"split": {"fromPercent": 0, "toPercent": 100.5}},
            "rule.split.to_percent",
            "0 and 100",
            id="split-over",
        ),
        pytest.param(
            {"split": {"fromPercent": 20, "toPercent": 10}},
            "rule.split.to_percent",
            "at least",
            id="split-reversed",
        ),
        pytest.param(
            {"split": {"fromPercent": float("nan"), "toPercent": 10}},
            "rule.split.from_percent",
            "0 and 100",
            id="split-nan",
        ),
        pytest.param(
            {"split": {"fromPercent": 0, "toPercent": float("inf")}},
            "rule.split.to_percent",
            "0 and 100",
            id="split-inf",
        ),
        pytest.param(
            {"split": {"salt": "\ud800", "toPercent": 10}},
            "rule.split.salt",
            "Unicode",
            id="split-surrogate-salt",
        ),
        pytest.param(
            {"none": {"rules": [{"any": {"rules": [{"event": {"name": "e", "operator": "IN"}}]}}]}},
            "rule.none.rules[0].any.rules[0].event.operator",
            "got 'IN'",
            id="deeper-path",
        ),
    ],
)
def test_validate_rule__invalid_rule__names_the_field(data: dict[str, Any], field: str, message: str) -> None:
    # Given
    rule = rule_from_json(data)

    # When
    with pytest.raises(InvalidRule) as caught:
        validate_rule(rule)

    # Then
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        pytest.param(Condition("a", "LIKE", "x"), "rule.condition.operator", id="unknown-operator"),  # type: ignore[arg-type]
        pytest.param(EventCondition("e", "LIKE", 1), "rule.event.operator", id="unknown-event-operator"),  # type: ignore[arg-type]
        pytest.param(Condition("a", op.IN, ("a", ("b",))), "rule.condition.value[1]", id="tuple-list"),
        pytest.param(SegmentReference("é"), "rule.segment.name", id="non-ascii-segment-name"),
        pytest.param(PercentageSplit("", 0, 10**400), "rule.split.to_percent", id="huge-int-percent"),
    ],
)
def test_validate_rule__invalid_domain_rule__names_the_field(rule: Rule, field: str) -> None:
    # Given / When
    with pytest.raises(InvalidRule) as caught:
        validate_rule(rule)

    # Then
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("rule", "limits", "field", "message"),
    [
        pytest.param(
            chain(33), RuleLimits(), "rule" + ".all.rules[0]" * 32, "32 levels deep", id="default-depth"
        ),
        pytest.param(
            chain(4),
            RuleLimits(max_depth=3),
            "rule.all.rules[0].all.rules[0].all.rules[0]",
            "at 4",
            id="depth",
        ),
        pytest.param(
            Group("any", (Condition("a", op.EXISTS), chain(3), chain(3))),
            RuleLimits(max_depth=3),
            "rule.any.rules[1].all.rules[0].all.rules[0]",
            "3 levels deep",
            id="first-deepest-node",
        ),
        pytest.param(
            Group("all", (Condition("a", op.EXISTS),) * 1000),
            RuleLimits(),
            "rule",
            "at most 1000 nodes",
            id="default-nodes",
        ),
        pytest.param(
            Group("all", (Condition("a", op.EXISTS),) * 10**6),
            RuleLimits(),
            "rule",
            "1000 nodes",
            id="wide-fails-fast",
        ),
        pytest.param(chain(2000), RuleLimits(), "rule", "1000 nodes", id="nodes-before-depth"),
        pytest.param(
            Group("all", (Condition("a", op.EXISTS),) * 3),
            RuleLimits(max_nodes=3),
            "rule",
            "at most 3 nodes",
            id="nodes",
        ),
        pytest.param(
            Condition("a", op.IN, [1, 2, 3]),
            RuleLimits(max_list_values=2),
            "rule.condition.value",
            "2 values",
            id="list",
        ),
        pytest.param(
            Condition("a", op.MATCHES_REGEX, "abc"),
            RuleLimits(max_regex_length=2),
            "rule.condition.value",
            "2 char",
            id="regex",
        ),
        pytest.param(
            Condition("abc", op.EXISTS),
            RuleLimits(max_attribute_length=2),
            "rule.condition.attribute",
            "2",
            id="path",
        ),
    ],
)
def test_validate_rule__over_a_limit__names_the_field(
    rule: Rule, limits: RuleLimits, field: str, message: str
) -> None:
    # Given / When
    with pytest.raises(InvalidRule) as caught:
        validate_rule(rule, limits)

    # Then
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("rule", "limits"),
    [
        pytest.param(chain(32), RuleLimits(), id="at-depth-limit"),
        pytest.param(Group("all", (Condition("a", op.EXISTS),) * 999), RuleLimits(), id="at-node-limit"),
        pytest.param(Condition("a", op.IN, [1, 2]), RuleLimits(max_list_values=2), id="at-list-limit"),
        pytest.param(
            Condition("a", op.MATCHES_REGEX, "ab"), RuleLimits(max_regex_length=2), id="at-regex-limit"
        ),
    ],
)
def test_validate_rule__at_a_limit__passes(rule: Rule, limits: RuleLimits) -> None:
    # Given / When / Then
    validate_rule(rule, limits)


def test_validate_rule__path_prefix__prefixes_every_field() -> None:
    # Given
    rule = Group("any", (Condition("a", op.IN, 1),))

    # When
    with pytest.raises(InvalidRule) as caught:
        validate_rule(rule, path="segment.rule")

    # Then
    assert caught.value.field == "segment.rule.any.rules[0].condition.value"
    assert str(caught.value).startswith("segment.rule.any.rules[0].condition.value: ")


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("paying-users", True),
        ("a", True),
        ("0-9", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("", False),
        ("A", False),
    ],
)
def test_is_valid_segment_name__name__matches_the_slug_pattern(name: str, valid: bool) -> None:
    # Given / When
    result = is_valid_segment_name(name)

    # Then
    assert result is valid
    assert SEGMENT_NAME_PATTERN == "^[a-z0-9-]{1,63}$"
