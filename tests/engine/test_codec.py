"""The canonical JSON form of rules: encoding, decoding and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from segmentd.engine import operators as op
from segmentd.engine.codec import rule_from_json, rule_to_json
from segmentd.engine.rules import Condition, EventCondition, Group, PercentageSplit, Rule, SegmentReference
from segmentd.errors import InvalidRule


@pytest.mark.parametrize(
    ("rule", "data"),
    [
        pytest.param(Group("all"), {"all": {"rules": []}}, id="empty-group"),
        pytest.param(
            Condition("plan", op.EQUALS, "free", ignore_case=True),
            {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free", "ignoreCase": True}},
            id="condition",
        ),
        pytest.param(
            Condition("a", op.EXISTS), {"condition": {"attribute": "a", "operator": "EXISTS"}}, id="no-value"
        ),
        pytest.param(
            EventCondition("login", op.GREATER_THAN, 3, 30),
            {"event": {"name": "login", "operator": "GREATER_THAN", "count": 3, "withinDays": 30}},
            id="event",
        ),
        pytest.param(
            EventCondition("e", op.EQUALS, 0),
            {"event": {"name": "e", "operator": "EQUALS", "count": 0}},
            id="ever",
        ),
        pytest.param(SegmentReference("paying"), {"segment": {"name": "paying"}}, id="reference"),
        pytest.param(
            PercentageSplit("s", 0.0, 10.0),
            {"split": {"salt": "s", "fromPercent": 0.0, "toPercent": 10.0}},
            id="split",
        ),
    ],
)
def test_rule_to_json__rule__writes_proto_json_names(rule: Rule, data: dict[str, Any]) -> None:
    # Given / When
    result = rule_to_json(rule)

    # Then
    assert result == data
    assert rule_from_json(result) == rule


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        pytest.param(
            {"event": {"name": "e", "operator": "EQUALS", "count": "3", "within_days": -1.0}},
            EventCondition("e", op.EQUALS, 3, -1),
            id="integers-as-strings-and-floats-snake-case",
        ),
        pytest.param(
            {"condition": {"attribute": "a", "operator": "IN", "value": [1], "ignore_case": False}},
            Condition("a", op.IN, [1]),
            id="snake-case",
        ),
        pytest.param(
            {"split": {"from_percent": 1, "to_percent": 2}}, PercentageSplit("", 1.0, 2.0), id="defaults"
        ),
        pytest.param({"any": {}}, Group("any"), id="group-without-rules"),
        pytest.param({"condition": {}}, Condition("", "OPERATOR_UNSPECIFIED"), id="empty-condition"),
    ],
)
def test_rule_from_json__accepted_forms__decode(data: dict[str, Any], rule: Rule) -> None:
    # Given / When
    result = rule_from_json(data)

    # Then
    assert result == rule


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param([], "rule", id="not-an-object"),
        pytest.param({}, "rule", id="no-kind"),
        pytest.param({"all": {"rules": []}, "any": {"rules": []}}, "rule", id="two-kinds"),
        pytest.param({"not": {}}, "rule.not", id="unknown-kind"),
        pytest.param({"all": {"rules": {}}}, "rule.all.rules", id="rules-not-a-list"),
        pytest.param({"all": {"rules": [1]}}, "rule.all.rules[0]", id="child-not-an-object"),
        pytest.param({"all": {"children": []}}, "rule.all.children", id="unknown-field"),
        pytest.param(
            {"condition": {"attribute": 1}}, "rule.condition.attribute", id="attribute-not-a-string"
        ),
        pytest.param({"condition": {"operator": "LIKE"}}, "rule.condition.operator", id="unknown-operator"),
        pytest.param(
            {"condition": {"ignoreCase": "yes"}}, "rule.condition.ignore_case", id="ignore-case-not-bool"
        ),
        pytest.param({"event": {"count": "3.5"}}, "rule.event.count", id="count-decimal-string"),
        pytest.param({"event": {"count": "--3"}}, "rule.event.count", id="count-double-minus"),
        pytest.param({"event": {"count": "²"}}, "rule.event.count", id="count-superscript-digit"),
        pytest.param({"event": {"count": 1.5}}, "rule.event.count", id="count-fraction"),
        pytest.param({"event": {"count": True}}, "rule.event.count", id="count-bool"),
        pytest.param({"event": {"withinDays": None}}, "rule.event.within_days", id="window-null"),
        pytest.param({"split": {"fromPercent": "1"}}, "rule.split.from_percent", id="percent-string"),
        pytest.param({"split": {"toPercent": False}}, "rule.split.to_percent", id="percent-bool"),
        pytest.param({"split": {"toPercent": 10**400}}, "rule.split.to_percent", id="percent-huge-int"),
        pytest.param({"segment": {"name": None}}, "rule.segment.name", id="name-null"),
    ],
)
def test_rule_from_json__malformed__names_the_field(data: object, field: str) -> None:
    # Given / When
    with pytest.raises(InvalidRule) as caught:
        rule_from_json(data)

    # Then
    assert caught.value.field == field
