"""Each operator's SQL, on SQLite and PostgreSQL, against the Python evaluator and the spec."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.engine.compiler import compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.rules import Condition
from segmentd.engine.validation import validate_rule
from tests.sqlgen.helpers import sql_members
from tests.strategies import NOW


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """Each test runs on both databases."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def c(attribute: str, operator: str, value: Any = None, ignore_case: bool = False) -> Condition:
    return Condition(attribute, operator, value, ignore_case)  # type: ignore[arg-type]


THRESHOLDS = {("mrr", 10.0): 50.0, ("mrr", 90.0): None}
ODD = 'a "b".$[0]'.replace(".", "")  # a key with a space, quotes, $ and brackets

CASES = [
    # EQUALS
    ("equals-string", c("plan", "EQUALS", "free"), {"plan": "free"}, True),
    ("equals-case-sensitive", c("plan", "EQUALS", "free"), {"plan": "FREE"}, False),
    ("equals-ignore-case", c("plan", "EQUALS", "FREE", True), {"plan": "free"}, True),
    ("equals-ignore-case-non-ascii", c("plan", "EQUALS", "ÉCOLE", True), {"plan": "école"}, True),
    ("equals-ignore-case-final-sigma", c("w", "EQUALS", "σας", True), {"w": "ΣΑΣ"}, True),
    ("equals-ignore-case-dotted-i", c("w", "EQUALS", "i̇stanbul", True), {"w": "İstanbul"}, True),
    ("equals-ignore-case-number", c("n", "EQUALS", 1, True), {"n": 1.0}, True),
    ("equals-int-float", c("n", "EQUALS", 1), {"n": 1.0}, True),
    ("equals-bool-is-not-number", c("n", "EQUALS", 1), {"n": True}, False),
    ("equals-number-is-not-bool", c("n", "EQUALS", True), {"n": 1}, False),
    ("equals-bool", c("n", "EQUALS", False), {"n": False}, True),
    ("equals-string-is-not-number", c("n", "EQUALS", 5), {"n": "5"}, False),
    ("equals-list-is-not-scalar", c("plan", "EQUALS", "free"), {"plan": ["free"]}, False),
    ("equals-missing", c("plan", "EQUALS", "free"), {}, False),
    ("equals-null", c("plan", "EQUALS", "free"), {"plan": None}, False),
    ("equals-nested", c("company.size", "EQUALS", 50), {"company": {"size": 50}}, True),
    ("equals-through-list", c("company.size", "EQUALS", 50), {"company": [{"size": 50}]}, False),
    ("equals-list-index-is-missing", c("tags.0", "EQUALS", "x"), {"tags": ["x"]}, False),
    ("equals-through-string", c("plan.x", "EQUALS", "x"), {"plan": "x"}, False),
    ("equals-odd-key", c(f"{ODD}.é", "EQUALS", "v"), {ODD: {"é": "v"}}, True),
    ("equals-odd-key-mismatch", c(f"{ODD}.é", "EQUALS", "v"), {ODD: {"e": "v"}}, False),
    ("equals-odd-key-through-scalar", c(f"{ODD}.é", "EQUALS", "v"), {ODD: "v"}, False),
    ("equals-newline-key", c("k\n", "EQUALS", True), {"k\n": True}, True),
    # NOT_EQUALS
    ("not-equals-different", c("plan", "NOT_EQUALS", "free"), {"plan": "pro"}, True),
    ("not-equals-same", c("plan", "NOT_EQUALS", "free"), {"plan": "free"}, False),
    ("not-equals-other-type", c("n", "NOT_EQUALS", 5), {"n": "5"}, True),
    ("not-equals-list", c("n", "NOT_EQUALS", 5), {"n": [5]}, True),
    ("not-equals-missing", c("n", "NOT_EQUALS", 5), {}, False),
    ("not-equals-null", c("n", "NOT_EQUALS", 5), {"n": None}, False),
    # ordering
    ("less-than-number", c("mrr", "LESS_THAN", 50), {"mrr": 49.5}, True),
    ("less-than-equal-number", c("mrr", "LESS_THAN", 50), {"mrr": 50.0}, False),
    ("less-or-equal-number", c("mrr", "LESS_THAN_OR_EQUALS", 50), {"mrr": 50}, True),
    ("greater-than-number", c("mrr", "GREATER_THAN", 50), {"mrr": 2**53}, True),
    ("greater-or-equal-number", c("mrr", "GREATER_THAN_OR_EQUALS", 0.1), {"mrr": 0.1}, True),
    ("greater-than-huge-value", c("mrr", "GREATER_THAN", 10**20), {"mrr": 1}, False),
    ("less-than-string-is-not-number", c("mrr", "LESS_THAN", 50), {"mrr": "10"}, False),
    ("less-than-bool-is-not-number", c("mrr", "LESS_THAN", 50), {"mrr": False}, False),
    ("less-than-number-is-not-string", c("mrr", "LESS_THAN", "z"), {"mrr": 1}, False),
    ("less-than-code-point-order", c("s", "LESS_THAN", "a"), {"s": "Z"}, True),
    ("greater-than-code-point-order", c("s", "GREATER_THAN", "z"), {"s": "é"}, True),
    ("greater-than-astral", c("s", "GREATER_THAN", "\uffff"), {"s": "😀"}, True),
    ("less-than-prefix", c("s", "LESS_THAN", "ab"), {"s": "a"}, True),
    ("less-than-ignore-case", c("s", "LESS_THAN", "B", True), {"s": "a"}, True),
    ("greater-than-ignore-case", c("s", "GREATER_THAN", "a", True), {"s": "Z"}, True),
    ("greater-than-missing", c("s", "GREATER_THAN", "a"), {}, False),
    # IN / NOT_IN
    ("in-string", c("plan", "IN", ["free", "pro"]), {"plan": "pro"}, True),
    ("in-empty", c("plan", "IN", []), {"plan": "pro"}, False),
    ("in-mixed-types", c("n", "IN", ["1", True, 1.0]), {"n": 1}, True),
    ("in-bool-not-number", c("n", "IN", [1, "true"]), {"n": True}, False),
    ("in-bool", c("n", "IN", [False]), {"n": False}, True),
    ("in-ignore-case", c("plan", "IN", ["FREE", 2], True), {"plan": "free"}, True),
    ("in-ignore-case-number", c("plan", "IN", ["FREE", 2], True), {"plan": 2.0}, True),
    ("in-ignore-case-no-match", c("plan", "IN", ["FREE", 2], True), {"plan": "2"}, False),
    ("in-long-list", c("plan", "IN", [str(i) for i in range(30)] + [7.0]), {"plan": 7}, True),
    ("in-long-list-miss", c("plan", "IN", [str(i) for i in range(30)]), {"plan": 7}, False),
    ("in-list-trait", c("plan", "IN", ["free"]), {"plan": ["free"]}, False),
    ("in-missing", c("plan", "IN", ["free"]), {}, False),
    ("not-in-empty", c("plan", "NOT_IN", []), {"plan": "pro"}, True),
    ("not-in-empty-missing", c("plan", "NOT_IN", []), {}, False),
    ("not-in-member", c("plan", "NOT_IN", ["pro"]), {"plan": "pro"}, False),
    ("not-in-other", c("plan", "NOT_IN", ["pro"]), {"plan": ["pro"]}, True),
    # NOT_IN / NOT_EQUALS with strings read as text on PostgreSQL: other types never match
    # a string, even one that reads like them (those are compared as jsonb).
    ("not-in-text-number", c("n", "NOT_IN", ["10", "x"]), {"n": 10}, True),
    ("not-in-text-float", c("n", "NOT_IN", ["1.0"]), {"n": 1.0}, True),
    ("not-in-text-string-number", c("n", "NOT_IN", ["10", "x"]), {"n": "10"}, False),
    ("not-equals-text-bool", c("n", "NOT_EQUALS", "true"), {"n": True}, True),
    ("not-equals-text-false", c("n", "NOT_EQUALS", "false"), {"n": False}, True),
    ("not-equals-text-array", c("n", "NOT_EQUALS", '["a"]'), {"n": ["a"]}, True),
    ("not-equals-text-object", c("n", "NOT_EQUALS", '{"a":1}'), {"n": {"a": 1}}, True),
    ("not-equals-text-object-spaced", c("n", "NOT_EQUALS", '{"a": 1}'), {"n": {"a": 1}}, True),
    ("not-equals-text-negative", c("n", "NOT_EQUALS", "-1"), {"n": -1}, True),
    ("not-equals-text-string", c("n", "NOT_EQUALS", "free"), {"n": "free"}, False),
    ("not-equals-text-empty", c("n", "NOT_EQUALS", ""), {"n": ""}, False),
    ("not-equals-text-empty-other", c("n", "NOT_EQUALS", ""), {"n": 0}, True),
    ("not-equals-text-null", c("n", "NOT_EQUALS", "free"), {"n": None}, False),
    ("not-equals-text-missing", c("n", "NOT_EQUALS", "free"), {}, False),
    ("not-equals-text-nested", c("a.b", "NOT_EQUALS", "x"), {"a": {"b": "y"}}, True),
    ("not-equals-text-nested-same", c("a.b", "NOT_EQUALS", "x"), {"a": {"b": "x"}}, False),
    ("not-equals-text-through-scalar", c("a.b", "NOT_EQUALS", "x"), {"a": "x"}, False),
    ("not-equals-text-through-list", c("a.b", "NOT_EQUALS", "x"), {"a": [{"b": "y"}]}, False),
    ("not-in-text-non-ascii", c("s", "NOT_IN", ["école", "Σ"]), {"s": "école"}, False),
    ("not-in-text-object", c("s", "NOT_IN", ["école"]), {"s": {"école": 1}}, True),
    # CONTAINS / NOT_CONTAINS
    ("contains-list-member", c("tags", "CONTAINS", "vip"), {"tags": ["a", "vip"]}, True),
    ("contains-list-non-member", c("tags", "CONTAINS", "vip"), {"tags": ["VIP"]}, False),
    ("contains-list-ignore-case", c("tags", "CONTAINS", "VIP", True), {"tags": ["x", "vip"]}, True),
    ("contains-list-ignore-case-number", c("tags", "CONTAINS", 2, True), {"tags": [2.0]}, True),
    ("contains-list-number", c("tags", "CONTAINS", 1), {"tags": [1.0]}, True),
    ("contains-list-bool-not-number", c("tags", "CONTAINS", 1), {"tags": [True]}, False),
    ("contains-list-bool", c("tags", "CONTAINS", True), {"tags": [True]}, True),
    ("contains-nested-list", c("tags", "CONTAINS", "x"), {"tags": [["x"]]}, False),
    ("contains-substring", c("s", "CONTAINS", "ee"), {"s": "free"}, True),
    ("contains-substring-case", c("s", "CONTAINS", "EE"), {"s": "free"}, False),
    ("contains-substring-ignore-case", c("s", "CONTAINS", "EE", True), {"s": "frEe"}, True),
    ("contains-empty-substring", c("s", "CONTAINS", ""), {"s": "free"}, True),
    ("contains-number-in-string", c("s", "CONTAINS", 1), {"s": "1"}, False),
    ("contains-object", c("s", "CONTAINS", "a"), {"s": {"a": 1}}, False),
    ("contains-scalar-equal", c("s", "CONTAINS", 1), {"s": 1}, False),
    ("contains-missing", c("s", "CONTAINS", "a"), {}, False),
    ("not-contains-present", c("s", "NOT_CONTAINS", "a"), {"s": "xyz"}, True),
    ("not-contains-number", c("s", "NOT_CONTAINS", "a"), {"s": 5}, True),
    ("not-contains-match", c("s", "NOT_CONTAINS", "a"), {"s": ["a"]}, False),
    ("not-contains-missing", c("s", "NOT_CONTAINS", "a"), {}, False),
    # STARTS_WITH / ENDS_WITH
    ("starts-with", c("s", "STARTS_WITH", "fr"), {"s": "free"}, True),
    ("starts-with-no", c("s", "STARTS_WITH", "re"), {"s": "free"}, False),
    ("starts-with-longer", c("s", "STARTS_WITH", "freedom"), {"s": "free"}, False),
    ("starts-with-empty", c("s", "STARTS_WITH", ""), {"s": "free"}, True),
    ("starts-with-empty-number", c("s", "STARTS_WITH", ""), {"s": 5}, False),
    ("starts-with-ignore-case", c("s", "STARTS_WITH", "ÉC", True), {"s": "école"}, True),
    ("starts-with-astral", c("s", "STARTS_WITH", "😀"), {"s": "😀x"}, True),
    ("starts-with-like-wildcards", c("s", "STARTS_WITH", "%_"), {"s": "abc"}, False),
    ("ends-with", c("s", "ENDS_WITH", "ee"), {"s": "free"}, True),
    ("ends-with-no", c("s", "ENDS_WITH", "fr"), {"s": "free"}, False),
    ("ends-with-longer", c("s", "ENDS_WITH", "xfree"), {"s": "free"}, False),
    ("ends-with-empty", c("s", "ENDS_WITH", ""), {"s": ""}, True),
    ("ends-with-ignore-case-lone-sigma", c("s", "ENDS_WITH", "Σ", True), {"s": "ΑΣ"}, False),
    ("ends-with-ignore-case", c("s", "ENDS_WITH", "ΑΣ", True), {"s": "xας"}, True),
    ("ends-with-ignore-case-final-sigma", c("s", "ENDS_WITH", "ας", True), {"s": "ΑΣ"}, True),
    ("ends-with-list", c("s", "ENDS_WITH", "a"), {"s": ["a"]}, False),
    # MATCHES_REGEX
    ("regex-search", c("s", "MATCHES_REGEX", "e+"), {"s": "free"}, True),
    ("regex-anchored", c("s", "MATCHES_REGEX", "^fr.e$"), {"s": "free"}, True),
    ("regex-dollar-before-newline", c("s", "MATCHES_REGEX", "ee$"), {"s": "free\n"}, False),
    ("regex-dot-newline", c("s", "MATCHES_REGEX", "a.b"), {"s": "a\nb"}, False),
    ("regex-class-newline", c("s", "MATCHES_REGEX", "a[^x]b"), {"s": "a\nb"}, True),
    ("regex-digits-ascii", c("s", "MATCHES_REGEX", "^\\d+$"), {"s": "١٢"}, False),
    ("regex-ignore-case", c("s", "MATCHES_REGEX", "^école$", True), {"s": "ÉCOLE"}, True),
    ("regex-case-sensitive", c("s", "MATCHES_REGEX", "^école$"), {"s": "ÉCOLE"}, False),
    ("regex-number", c("s", "MATCHES_REGEX", "1"), {"s": 1}, False),
    ("regex-missing", c("s", "MATCHES_REGEX", ""), {}, False),
    # EXISTS / NOT_EXISTS
    ("exists", c("s", "EXISTS"), {"s": False}, True),
    ("exists-empty-string", c("s", "EXISTS"), {"s": ""}, True),
    ("exists-null", c("s", "EXISTS"), {"s": None}, False),
    ("exists-missing", c("s", "EXISTS"), {}, False),
    ("exists-nested", c("a.b", "EXISTS"), {"a": {"b": {}}}, True),
    ("exists-list", c("s", "EXISTS"), {"s": []}, True),
    ("exists-zero", c("s", "EXISTS"), {"s": 0}, True),
    ("exists-nested-null", c("a.b", "EXISTS"), {"a": {"b": None}}, False),
    ("exists-through-scalar", c("a.b", "EXISTS"), {"a": "b"}, False),
    ("exists-through-list", c("a.b", "EXISTS"), {"a": [{"b": 1}]}, False),
    ("not-exists-missing", c("s", "NOT_EXISTS"), {}, True),
    ("not-exists-null", c("s", "NOT_EXISTS"), {"s": None}, True),
    ("not-exists-present", c("s", "NOT_EXISTS"), {"s": 0}, False),
    ("not-exists-through-scalar", c("a.b", "NOT_EXISTS"), {"a": 1}, True),
    # BETWEEN
    ("between-numbers", c("n", "BETWEEN", [1, 2]), {"n": 1.5}, True),
    ("between-low-bound", c("n", "BETWEEN", [1, 2]), {"n": 1}, True),
    ("between-high-bound", c("n", "BETWEEN", [1, 2.0]), {"n": 2}, True),
    ("between-outside", c("n", "BETWEEN", [1, 2]), {"n": 2.01}, False),
    ("between-string", c("n", "BETWEEN", [1, 2]), {"n": "1.5"}, False),
    (
        "between-times",
        c("t", "BETWEEN", ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
        {"t": "2026-01-01T01:00:00+01:00"},
        True,
    ),
    (
        "between-times-outside",
        c("t", "BETWEEN", ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
        {"t": "2026-01-01T00:59:59+01:00"},
        False,
    ),
    (
        "between-times-not-time",
        c("t", "BETWEEN", ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
        {"t": "2026-01-15"},
        False,
    ),
    (
        "between-times-number",
        c("t", "BETWEEN", ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
        {"t": 5},
        False,
    ),
    # BEFORE / AFTER
    ("before", c("t", "BEFORE", "2026-03-01T00:00:00Z"), {"t": "2026-02-28T23:59:59.999999Z"}, True),
    (
        "before-same-instant",
        c("t", "BEFORE", "2026-03-01T00:00:00Z"),
        {"t": "2026-03-01T01:00:00+01:00"},
        False,
    ),
    (
        "after-same-instant",
        c("t", "AFTER", "2026-03-01T00:00:00Z"),
        {"t": "2026-02-28T23:00:00-01:00"},
        False,
    ),
    ("after", c("t", "AFTER", "2026-03-01T00:00:00Z"), {"t": "2026-03-01T00:00:00.0000009+00:00"}, False),
    (
        "after-microsecond",
        c("t", "AFTER", "2026-03-01T00:00:00Z"),
        {"t": "2026-03-01T00:00:00.000001z"},
        True,
    ),
    (
        "after-large-offset",
        c("t", "AFTER", "2026-03-01T00:00:00Z"),
        {"t": "2026-03-01T23:00:00+23:59"},
        False,
    ),
    (
        "before-large-offset",
        c("t", "BEFORE", "2026-03-01T00:00:00Z"),
        {"t": "2026-03-01T23:00:00+23:59"},
        True,
    ),
    ("before-feb-30", c("t", "BEFORE", "2026-04-01T00:00:00Z"), {"t": "2026-02-30T00:00:00Z"}, False),
    ("before-leap-second", c("t", "BEFORE", "2026-04-01T00:00:00Z"), {"t": "2026-02-28T23:59:60Z"}, False),
    ("before-leap-day", c("t", "BEFORE", "2026-04-01T00:00:00Z"), {"t": "2024-02-29T00:00:00Z"}, True),
    ("before-year-one", c("t", "BEFORE", "2026-04-01T00:00:00Z"), {"t": "0001-01-01T00:00:00+23:59"}, True),
    ("before-no-offset", c("t", "BEFORE", "2026-04-01T00:00:00Z"), {"t": "2026-01-01T00:00:00"}, False),
    (
        "before-trailing-newline",
        c("t", "BEFORE", "2026-04-01T00:00:00Z"),
        {"t": "2026-01-01T00:00:00Z\n"},
        False,
    ),
    # WITHIN_LAST_DAYS / NOT_WITHIN_LAST_DAYS (now = 2026-03-01T12:00:00Z)
    ("within-boundary", c("t", "WITHIN_LAST_DAYS", 2), {"t": "2026-02-27T12:00:00Z"}, True),
    ("within-just-before", c("t", "WITHIN_LAST_DAYS", 2), {"t": "2026-02-27T11:59:59.999999Z"}, False),
    ("within-future", c("t", "WITHIN_LAST_DAYS", 0), {"t": "2030-01-01T00:00:00Z"}, True),
    ("within-float-days", c("t", "WITHIN_LAST_DAYS", 2.0), {"t": "2026-02-28T00:00:00+05:00"}, True),
    ("not-within-boundary", c("t", "NOT_WITHIN_LAST_DAYS", 2), {"t": "2026-02-27T12:00:00Z"}, False),
    ("not-within-before", c("t", "NOT_WITHIN_LAST_DAYS", 2), {"t": "2026-02-27T13:00:00+01:01"}, True),
    ("not-within-not-time", c("t", "NOT_WITHIN_LAST_DAYS", 2), {"t": "long ago"}, False),
    # SEMVER
    ("semver-equals-build", c("v", "SEMVER_EQUALS", "1.0.0"), {"v": "1.0.0+build.5"}, True),
    ("semver-less-prerelease", c("v", "SEMVER_LESS_THAN", "1.0.0"), {"v": "1.0.0-rc.1"}, True),
    ("semver-less-numeric-ids", c("v", "SEMVER_LESS_THAN", "1.0.0-beta.11"), {"v": "1.0.0-beta.2"}, True),
    ("semver-less-shorter", c("v", "SEMVER_LESS_THAN", "1.0.0-alpha.1"), {"v": "1.0.0-alpha"}, True),
    ("semver-numeric-below-alpha", c("v", "SEMVER_LESS_THAN", "1.0.0-a"), {"v": "1.0.0-1"}, True),
    ("semver-greater-alpha-ascii", c("v", "SEMVER_GREATER_THAN", "1.0.0-Alpha"), {"v": "1.0.0-alpha"}, True),
    ("semver-greater-huge", c("v", "SEMVER_GREATER_THAN", "9.0.0"), {"v": "18446744073709551617.0.0"}, True),
    ("semver-greater-minor", c("v", "SEMVER_GREATER_THAN", "1.9.0"), {"v": "1.10.0"}, True),
    ("semver-release-above-prerelease", c("v", "SEMVER_GREATER_THAN", "1.0.0-rc.1"), {"v": "1.0.0"}, True),
    ("semver-leading-zero", c("v", "SEMVER_LESS_THAN", "2.0.0"), {"v": "01.0.0"}, False),
    ("semver-prerelease-leading-zero", c("v", "SEMVER_LESS_THAN", "2.0.0"), {"v": "1.0.0-01"}, False),
    ("semver-v-prefix", c("v", "SEMVER_LESS_THAN", "2.0.0"), {"v": "v1.0.0"}, False),
    ("semver-number", c("v", "SEMVER_EQUALS", "1.0.0"), {"v": 1}, False),
    # PERCENTILE
    ("percentile-at-most", c("mrr", "PERCENTILE_AT_MOST", 10), {"mrr": 50}, True),
    ("percentile-at-most-above", c("mrr", "PERCENTILE_AT_MOST", 10), {"mrr": 50.5}, False),
    ("percentile-at-least", c("mrr", "PERCENTILE_AT_LEAST", 10.0), {"mrr": 50}, True),
    ("percentile-at-least-below", c("mrr", "PERCENTILE_AT_LEAST", 10), {"mrr": 49}, False),
    ("percentile-not-number", c("mrr", "PERCENTILE_AT_LEAST", 10), {"mrr": "60"}, False),
    ("percentile-no-threshold", c("mrr", "PERCENTILE_AT_MOST", 90), {"mrr": 1}, False),
    ("percentile-unknown-key", c("mrr", "PERCENTILE_AT_MOST", 50), {"mrr": 1}, False),
]


def _python_verdict(condition: Condition, traits: dict[str, Any]) -> bool:
    predicate = compile_rule(condition, lambda name: pytest.fail(f"no segment {name}"))
    return predicate(EvaluationContext(traits=traits, user_id="u", now=NOW, percentile_thresholds=THRESHOLDS))


@pytest.mark.parametrize(
    ("condition", "traits", "expected"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
async def test_condition__sql__matches_spec_and_python(engine, condition, traits, expected):
    # Given
    validate_rule(condition)
    assert _python_verdict(condition, traits) is expected, "the expectation disagrees with the evaluator"

    # When
    members = await sql_members(engine, condition, {"u": traits}, thresholds=THRESHOLDS)

    # Then
    assert (members == {"u"}) is expected
