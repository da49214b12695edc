"""Rule validation: the value each operator takes, with the field path errors name."""

from __future__ import annotations

from typing import Any

import pytest

from segmentd.engine import operators as op
from segmentd.engine.codec import rule_from_json
from segmentd.engine.operators import OPERATORS
from segmentd.engine.rules import JsonValue
from segmentd.engine.validation import validate_rule
from segmentd.engine.values import VALUE_CHECKS_BY_OPERATOR
from segmentd.errors import InvalidRule
from tests.engine.support import VALUE_BY_OPERATOR


def condition(operator: str, value: JsonValue = None, **fields: Any) -> dict[str, Any]:
    return {"condition": {"attribute": "a", "operator": operator, "value": value, **fields}}


def test_value_checks__every_operator__has_a_check() -> None:
    # Given / When / Then
    assert set(VALUE_CHECKS_BY_OPERATOR) == set(OPERATORS)


@pytest.mark.parametrize("operator", OPERATORS)
def test_validate_rule__valid_value_for_operator__passes(operator: str) -> None:
    # Given
    rule = rule_from_json(condition(operator, VALUE_BY_OPERATOR[operator]))

    # When / Then
    validate_rule(rule)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        pytest.param(
            {"condition": {"attribute": "a"}},
            "rule.condition.operator",
            "needs an operator",
            id="unspecified",
        ),
        pytest.param(condition(op.EQUALS), "rule.condition.value", "got null", id="equals-null"),
        pytest.param(condition(op.EQUALS, [1]), "rule.condition.value", "got a list", id="equals-list"),
        pytest.param(
            condition(op.EQUALS, {"a": 1}), "rule.condition.value", "got an object", id="equals-object"
        ),
        pytest.param(
            condition(op.EQUALS, float("nan")), "rule.condition.value", "non-finite", id="equals-nan"
        ),
        pytest.param(
            condition(op.NOT_EQUALS, float("inf")), "rule.condition.value", "non-finite", id="not-equals-inf"
        ),
        pytest.param(
            condition(op.CONTAINS, 10**400), "rule.condition.value", "non-finite", id="contains-huge-int"
        ),
        pytest.param(
            condition(op.NOT_CONTAINS, None), "rule.condition.value", "got null", id="not-contains-null"
        ),
        pytest.param(
            condition(op.LESS_THAN, True), "rule.condition.value", "a number or a string", id="lt-bool"
        ),
        pytest.param(
            condition(op.GREATER_THAN, [1]), "rule.condition.value", "a number or a string", id="gt-list"
        ),
        pytest.param(
            condition(op.GREATER_THAN_OR_EQUALS, float("nan")),
            "rule.condition.value",
            "non-finite",
            id="ge-nan",
        ),
        pytest.param(condition(op.IN, "a"), "rule.condition.value", "a list of", id="in-string"),
        pytest.param(condition(op.NOT_IN, None), "rule.condition.value", "a list of", id="not-in-null"),
        pytest.param(
            condition(op.IN, ["a", ["b"]]), "rule.condition.value[1]", "got a list", id="in-nested-list"
        ),
        pytest.param(condition(op.IN, [None]), "rule.condition.value[0]", "got null", id="in-null-element"),
        pytest.param(condition(op.IN, [float("nan")]), "rule.condition.value[0]", "non-finite", id="in-nan"),
        pytest.param(
            condition(op.STARTS_WITH, 1), "rule.condition.value", "a string", id="starts-with-number"
        ),
        pytest.param(condition(op.ENDS_WITH, None), "rule.condition.value", "a string", id="ends-with-null"),
        pytest.param(
            condition(op.MATCHES_REGEX, 1), "rule.condition.value", "regular expression", id="regex-number"
        ),
        pytest.param(condition(op.MATCHES_REGEX, "("), "rule.condition.value", "RE2", id="regex-invalid"),
        pytest.param(
            condition(op.MATCHES_REGEX, "[À-Þ]", ignoreCase=True),
            "rule.condition.value",
            "lower case",
            id="regex-upper-range",
        ),
        pytest.param(
            condition(op.MATCHES_REGEX, "x" * 1001),
            "rule.condition.value",
            "at most 1000",
            id="regex-too-long",
        ),
        pytest.param(condition(op.EXISTS, "x"), "rule.condition.value", "takes no value", id="exists-value"),
        pytest.param(
            condition(op.NOT_EXISTS, False), "rule.condition.value", "takes no value", id="not-exists-false"
        ),
        pytest.param(
            condition(op.BETWEEN, 1), "rule.condition.value", "a list [low, high]", id="between-number"
        ),
        pytest.param(
            condition(op.BETWEEN, [1]), "rule.condition.value", "a list [low, high]", id="between-one"
        ),
        pytest.param(
            condition(op.BETWEEN, [1, 2, 3]), "rule.condition.value", "a list [low, high]", id="between-three"
        ),
        pytest.param(
            condition(op.BETWEEN, [1, "2"]), "rule.condition.value[1]", "got a string", id="between-mixed"
        ),
        pytest.param(
            condition(op.BETWEEN, ["a", "b"]), "rule.condition.value[0]", "got a string", id="between-strings"
        ),
        pytest.param(
            condition(op.BETWEEN, ["2026-01-01T00:00:00Z", 5]),
            "rule.condition.value[1]",
            "a number",
            id="between-time-number",
        ),
        pytest.param(
            condition(op.BETWEEN, [True, 2]), "rule.condition.value[0]", "a boolean", id="between-bool"
        ),
        pytest.param(
            condition(op.BETWEEN, [float("nan"), 2]),
            "rule.condition.value[0]",
            "non-finite",
            id="between-nan",
        ),
        pytest.param(
            condition(op.BETWEEN, [2, 1]),
            "rule.condition.value[1]",
            "below the low bound",
            id="between-reversed",
        ),
        pytest.param(
            condition(op.BETWEEN, ["2026-01-02T00:00:00Z", "2026-01-01T23:00:00+02:00"]),
            "rule.condition.value[1]",
            "below the low bound",
            id="between-reversed-times",
        ),
        pytest.param(
            condition(op.BEFORE, "2026-01-01"), "rule.condition.value", "RFC 3339", id="before-date"
        ),
        pytest.param(
            condition(op.AFTER, 1767225600), "rule.condition.value", "RFC 3339", id="after-epoch-number"
        ),
        pytest.param(
            condition(op.WITHIN_LAST_DAYS, 1.5), "rule.condition.value", "whole number", id="days-fraction"
        ),
        pytest.param(
            condition(op.WITHIN_LAST_DAYS, -1), "rule.condition.value", "whole number", id="days-negative"
        ),
        pytest.param(
            condition(op.NOT_WITHIN_LAST_DAYS, "30"), "rule.condition.value", "whole number", id="days-string"
        ),
        pytest.param(
            condition(op.WITHIN_LAST_DAYS, True), "rule.condition.value", "whole number", id="days-bool"
        ),
        pytest.param(
            condition(op.WITHIN_LAST_DAYS, 36_501), "rule.condition.value", "36500", id="days-too-many"
        ),
        pytest.param(
            condition(op.WITHIN_LAST_DAYS, float("inf")),
            "rule.condition.value",
            "whole number",
            id="days-inf",
        ),
        pytest.param(
            condition(op.SEMVER_EQUALS, "v1.0.0"), "rule.condition.value", "semantic version", id="semver-v"
        ),
        pytest.param(
            condition(op.SEMVER_LESS_THAN, 1), "rule.condition.value", "semantic version", id="semver-number"
        ),
        pytest.param(
            condition(op.PERCENTILE_AT_MOST, -1), "rule.condition.value", "0 to 100", id="percentile-negative"
        ),
        pytest.param(
            condition(op.PERCENTILE_AT_LEAST, 100.5), "rule.condition.value", "0 to 100", id="percentile-over"
        ),
        pytest.param(
            condition(op.PERCENTILE_AT_MOST, "10"), "rule.condition.value", "0 to 100", id="percentile-string"
        ),
        pytest.param(
            condition(op.PERCENTILE_AT_MOST, True), "rule.condition.value", "0 to 100", id="percentile-bool"
        ),
        pytest.param(
            condition(op.PERCENTILE_AT_MOST, float("nan")),
            "rule.condition.value",
            "0 to 100",
            id="percentile-nan",
        ),
        pytest.param(
            condition(op.BETWEEN, [1, 2], ignoreCase=True),
            "rule.condition.ignore_case",
            "BETWEEN",
            id="ic-between",
        ),
        pytest.param(
            condition(op.EXISTS, ignoreCase=True), "rule.condition.ignore_case", "EXISTS", id="ic-exists"
        ),
        pytest.param(
            condition(op.SEMVER_EQUALS, "1.0.0", ignoreCase=True),
            "rule.condition.ignore_case",
            "",
            id="ic-semver",
        ),
        pytest.param(
            {"condition": {"operator": "EXISTS"}}, "rule.condition.attribute", "required", id="no-attribute"
        ),
        pytest.param(
            {"condition": {"attribute": "a..b", "operator": "EXISTS"}},
            "rule.condition.attribute",
            "empty step",
            id="empty-step",
        ),
        pytest.param(
            {"condition": {"attribute": ".a", "operator": "EXISTS"}},
            "rule.condition.attribute",
            "empty step",
            id="leading-dot",
        ),
        pytest.param(
            {"condition": {"attribute": "a.", "operator": "EXISTS"}},
            "rule.condition.attribute",
            "empty step",
            id="trailing-dot",
        ),
        pytest.param(
            {"condition": {"attribute": "a" * 257, "operator": "EXISTS"}},
            "rule.condition.attribute",
            "256",
            id="long-attribute",
        ),
        pytest.param(
            {"all": {"rules": [{"any": {"rules": []}}, condition(op.EXISTS), condition(op.IN, 1)]}},
            "rule.all.rules[2].condition.value",
            "a list of",
            id="nested-path",
        ),
        pytest.param(
            {"all": {"rules": [condition(op.IN, 1), condition(op.EQUALS)]}},
            "rule.all.rules[0].condition.value",
            "",
            id="first-error-in-document-order",
        ),
    ],
)
def test_validate_rule__invalid_condition__names_the_field(
    data: dict[str, Any], field: str, message: str
) -> None:
    # Given
    rule = rule_from_json(data)

    # When
    with pytest.raises(InvalidRule) as caught:
        validate_rule(rule)

    # Then
    assert caught.value.field == field
    assert message in caught.value.message
