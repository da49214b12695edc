"""Explanations: per-node verdicts, the values seen, and the sentences."""

from __future__ import annotations

import pytest

from segmentd.engine import operators as op
from segmentd.engine.explain import Explanation, explain
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    JsonValue,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.split import bucket, bucket_percent
from segmentd.errors import SegmentNotFound
from tests.engine.support import context

TRAITS: dict[str, JsonValue] = {"plan": "free", "mrr": 40, "bio": "x" * 200, "company": {"size": 12}}
RULES: dict[str, Rule] = {"paying": Condition("mrr", op.GREATER_THAN, 0)}


def explained(rule: Rule, **fields: object) -> Explanation:
    ctx = context(fields.pop("traits", TRAITS), **fields)  # type: ignore[arg-type]
    return explain(rule, ctx, RULES.__getitem__)


@pytest.mark.parametrize(
    ("rule", "matched", "present", "actual", "detail"),
    [
        pytest.param(
            Condition("plan", op.EQUALS, "free"),
            True,
            True,
            "free",
            'plan = "free": EQUALS "free" holds',
            id="equals",
        ),
        pytest.param(
            Condition("plan", op.EQUALS, "FREE", ignore_case=True),
            True,
            True,
            "free",
            'plan = "free": EQUALS "FREE" (ignoring case) holds',
            id="ignore-case",
        ),
        pytest.param(
            Condition("company.size", op.IN, [1, 2]),
            False,
            True,
            12,
            "company.size = 12: IN [1, 2] does not hold",
            id="nested-in",
        ),
        pytest.param(
            Condition("country", op.EXISTS),
            False,
            False,
            None,
            "country is missing: EXISTS does not hold",
            id="missing",
        ),
        pytest.param(
            Condition("country", op.NOT_EXISTS),
            True,
            False,
            None,
            "country is missing: NOT_EXISTS holds",
            id="not-exists",
        ),
        pytest.param(
            Condition("mrr", op.PERCENTILE_AT_MOST, 10),
            True,
            True,
            40,
            "mrr = 40: PERCENTILE_AT_MOST 10 (threshold 50.5) holds",
            id="percentile",
        ),
        pytest.param(
            Condition("mrr", op.PERCENTILE_AT_LEAST, 90),
            False,
            True,
            40,
            "mrr = 40: PERCENTILE_AT_LEAST 90 (no profile has a number there) does not hold",
            id="percentile-unknown",
        ),
        pytest.param(
            Condition("bio", op.STARTS_WITH, "x"),
            True,
            True,
            "x" * 200,
            'bio = "' + "x" * 78 + '…: STARTS_WITH "x" holds',
            id="long-value-shortened",
        ),
    ],
)
def test_explain__condition__reports_trait_and_verdict(
    rule: Rule, matched: bool, present: bool, actual: JsonValue, detail: str
) -> None:
    # Given / When
    result = explained(rule, percentile_thresholds={("mrr", 10.0): 50.5})

    # Then
    assert (result.rule, result.matched, result.attribute_present) == (rule, matched, present)
    assert (result.actual_value, result.detail, result.children) == (actual, detail, ())


@pytest.mark.parametrize(
    ("rule", "matched", "count", "detail"),
    [
        pytest.param(
            EventCondition("login", op.GREATER_THAN_OR_EQUALS, 3, 30),
            True,
            4,
            "'login' events in the last 30 days: 4; GREATER_THAN_OR_EQUALS 3 holds",
            id="window",
        ),
        pytest.param(
            EventCondition("login", op.LESS_THAN, 1),
            True,
            0,
            "'login' events ever: 0; LESS_THAN 1 holds",
            id="ever-none",
        ),
    ],
)
def test_explain__event__reports_count(rule: Rule, matched: bool, count: int, detail: str) -> None:
    # Given / When
    result = explained(rule, event_counts={("login", 30): 4})

    # Then
    assert (result.matched, result.attribute_present, result.actual_value, result.detail) == (
        matched,
        True,
        count,
        detail,
    )


def test_explain__split_with_user__reports_bucket_percent() -> None:
    # Given
    rule = PercentageSplit("exp-1", 0, 50)
    percent = bucket_percent(bucket("exp-1", "u1"))

    # When
    result = explained(rule, user_id="u1")

    # Then
    assert (result.matched, result.attribute_present, result.actual_value) == (True, True, percent)
    assert result.detail == f"bucket {percent:.4f}% for salt 'exp-1': in [0%, 50%) holds"


def test_explain__split_without_user__is_false_without_value() -> None:
    # Given
    rule = PercentageSplit("exp-1", 0, 100)

    # When
    result = explained(rule, user_id=None)

    # Then
    assert (result.matched, result.attribute_present, result.actual_value) == (False, False, None)
    assert result.detail == "no user id: in no split; [0%, 100%) does not hold"


def test_explain__group__explains_every_child_without_short_circuit() -> None:
    # Given
    first = Condition("plan", op.EQUALS, "pro")
    second = Condition("mrr", op.GREATER_THAN, 10)
    rule = Group("all", (first, second))

    # When
    result = explained(rule)

    # Then
    assert result.rule == Group("all")
    assert (result.matched, result.attribute_present, result.actual_value) == (False, False, None)
    assert [child.rule for child in result.children] == [first, second]
    assert [child.matched for child in result.children] == [False, True]
    assert result.detail == "all: 1 of 2 rules hold"


@pytest.mark.parametrize(("kind", "expected"), [("all", True), ("any", False), ("none", True)])
def test_explain__empty_group__matches_like_compile(kind: str, expected: bool) -> None:
    # Given / When
    result = explained(Group(kind))  # type: ignore[arg-type]

    # Then
    assert result.matched is expected
    assert result.detail == f"{kind}: 0 of 0 rules hold"


def test_explain__segment_reference__has_the_segment_explanation_as_child() -> None:
    # Given
    rule = Group("none", (SegmentReference("paying"),))

    # When
    result = explained(rule)

    # Then
    [reference] = result.children
    assert (reference.rule, reference.matched, reference.detail) == (
        SegmentReference("paying"),
        True,
        "a member of segment 'paying'",
    )
    assert [child.rule for child in reference.children] == [RULES["paying"]]
    assert result.matched is False


def test_explain__not_a_member__says_so() -> None:
    # Given / When
    result = explained(SegmentReference("paying"), traits={})

    # Then
    assert (result.matched, result.detail) == (False, "not a member of segment 'paying'")


def test_explain__unknown_segment__raises_the_resolver_error() -> None:
    # Given
    def resolve(name: str) -> Rule:
        raise SegmentNotFound(name)

    # When / Then
    with pytest.raises(SegmentNotFound):
        explain(SegmentReference("gone"), context(), resolve)


def test_explain__integral_doubles__shown_as_written():
    # Given: numbers as the API delivers them, doubles
    rule = Condition("seats", op.GREATER_THAN_OR_EQUALS, 80.0)

    # When
    explanation = explained(rule, traits={"seats": 92.0})

    # Then
    assert explanation.detail.startswith("seats = 92: GREATER_THAN_OR_EQUALS 80 ")
    assert explanation.actual_value == 92.0


@pytest.mark.parametrize(
    ("rule", "matched", "detail"),
    [
        pytest.param(
            EventCondition("*", op.EQUALS, 0, 14),
            False,
            "events of any name in the last 14 days: 3; EQUALS 0 does not hold",
            id="any-event",
        ),
        pytest.param(
            EventCondition("$created", op.GREATER_THAN, 0, 14),
            True,
            "profile first stored in the last 14 days: 1; GREATER_THAN 0 holds",
            id="created",
        ),
    ],
)
def test_explain__pseudo_event__names_what_it_counts(rule: Rule, matched: bool, detail: str) -> None:
    # Given / When
    result = explained(rule, event_counts={("*", 14): 3, ("$created", 14): 1})

    # Then
    assert (result.matched, result.detail) == (matched, detail)
