"""Operator semantics (docs/semantics.md), one table per operator family."""

from __future__ import annotations

import pytest

from segmentd.engine import operators as op
from segmentd.engine.matchers import MATCHERS_BY_OPERATOR, scalar_key
from segmentd.engine.operators import OPERATORS
from segmentd.engine.rules import JsonValue
from segmentd.engine.traits import MISSING, Missing
from tests.engine.support import ATTRIBUTE, VALUE_BY_OPERATOR, holds


def test_matchers_by_operator__every_operator__has_a_matcher() -> None:
    # Given / When
    missing = set(OPERATORS) - set(MATCHERS_BY_OPERATOR)

    # Then
    assert not missing
    assert set(VALUE_BY_OPERATOR) == set(OPERATORS)


@pytest.mark.parametrize("trait", [MISSING, None], ids=["missing", "null"])
@pytest.mark.parametrize("operator", OPERATORS)
def test_any_operator__missing_or_null_trait__only_not_exists_holds(
    operator: str, trait: Missing | None
) -> None:
    # Given
    value = VALUE_BY_OPERATOR[operator]

    # When
    verdict = holds(operator, value, trait, percentile_thresholds={(ATTRIBUTE, 50.0): 1.0})

    # Then
    assert verdict is (operator == op.NOT_EXISTS)


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.EQUALS, "free", "free", True, id="equal-strings"),
        pytest.param(op.EQUALS, "free", "pro", False, id="different-strings"),
        pytest.param(op.EQUALS, "free", "FREE", False, id="case-sensitive"),
        pytest.param(op.EQUALS, "", "", True, id="empty-strings"),
        pytest.param(op.EQUALS, "漢字😀", "漢字😀", True, id="unicode"),
        pytest.param(op.EQUALS, "é", "e\u0301", False, id="no-unicode-normalisation"),
        pytest.param(op.EQUALS, 5, 5, True, id="equal-ints"),
        pytest.param(op.EQUALS, 1, 1.0, True, id="int-equals-float"),
        pytest.param(op.EQUALS, 2.5, 2.5, True, id="equal-floats"),
        pytest.param(op.EQUALS, 5, "5", False, id="number-vs-numeric-string"),
        pytest.param(op.EQUALS, "5", 5, False, id="string-vs-number"),
        pytest.param(op.EQUALS, 1, True, False, id="number-vs-true"),
        pytest.param(op.EQUALS, True, 1, False, id="true-vs-number"),
        pytest.param(op.EQUALS, False, 0, False, id="false-vs-zero"),
        pytest.param(op.EQUALS, True, True, True, id="true"),
        pytest.param(op.EQUALS, False, False, True, id="false"),
        pytest.param(op.EQUALS, True, False, False, id="true-vs-false"),
        pytest.param(op.EQUALS, "free", ["free"], False, id="list-trait"),
        pytest.param(op.EQUALS, "free", {"free": 1}, False, id="object-trait"),
        pytest.param(op.NOT_EQUALS, "free", "pro", True, id="not-equals-different"),
        pytest.param(op.NOT_EQUALS, "free", "free", False, id="not-equals-same"),
        pytest.param(op.NOT_EQUALS, 5, "5", True, id="not-equals-other-type"),
        pytest.param(op.NOT_EQUALS, 1, 1.0, False, id="not-equals-int-float"),
        pytest.param(op.NOT_EQUALS, 1, True, True, id="not-equals-bool-vs-number"),
        pytest.param(op.NOT_EQUALS, "free", ["free"], True, id="not-equals-list-trait"),
    ],
)
def test_equality__trait_against_value__gives_tabled_verdict(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.LESS_THAN, 10, 5, True, id="lt-numbers"),
        pytest.param(op.LESS_THAN, 10, 10, False, id="lt-equal"),
        pytest.param(op.LESS_THAN, 10, 9.99, True, id="lt-float"),
        pytest.param(op.LESS_THAN_OR_EQUALS, 10, 10.0, True, id="le-equal"),
        pytest.param(op.LESS_THAN_OR_EQUALS, 10, 11, False, id="le-above"),
        pytest.param(op.GREATER_THAN, 10, 10.5, True, id="gt-float"),
        pytest.param(op.GREATER_THAN, 10, 10, False, id="gt-equal"),
        pytest.param(op.GREATER_THAN_OR_EQUALS, 10, 10, True, id="ge-equal"),
        pytest.param(op.GREATER_THAN_OR_EQUALS, 10, -10, False, id="ge-below"),
        pytest.param(op.GREATER_THAN, 2, "10", False, id="numeric-string-trait"),
        pytest.param(op.LESS_THAN, "9", 10, False, id="string-value-number-trait"),
        pytest.param(op.GREATER_THAN, 0, True, False, id="bool-is-not-a-number"),
        pytest.param(op.LESS_THAN, 10, [1], False, id="list-trait"),
        pytest.param(op.LESS_THAN, "b", "a", True, id="strings"),
        pytest.param(op.LESS_THAN, "B", "a", False, id="strings-by-code-point"),
        pytest.param(op.GREATER_THAN, "z", "é", True, id="non-ascii-after-ascii"),
        pytest.param(op.LESS_THAN, "abc", "ab", True, id="prefix-is-lower"),
        pytest.param(op.GREATER_THAN_OR_EQUALS, "", "", True, id="empty-strings"),
        pytest.param(op.LESS_THAN_OR_EQUALS, "10", "9", False, id="numeric-strings-compare-as-text"),
    ],
)
def test_ordering__trait_against_value__gives_tabled_verdict(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.IN, ["a", "b"], "a", True, id="member"),
        pytest.param(op.IN, ["a", "b"], "c", False, id="not-member"),
        pytest.param(op.IN, [], "a", False, id="empty-list-matches-nothing"),
        pytest.param(op.IN, [1, 2], 1.0, True, id="number-by-value"),
        pytest.param(op.IN, [1], True, False, id="true-is-not-1"),
        pytest.param(op.IN, [True], 1, False, id="1-is-not-true"),
        pytest.param(op.IN, ["1"], 1, False, id="1-is-not-string-1"),
        pytest.param(op.IN, [1], "1", False, id="string-1-is-not-1"),
        pytest.param(op.IN, [False, "x", 0], False, True, id="mixed-types"),
        pytest.param(op.IN, ["a"], ["a"], False, id="list-trait"),
        pytest.param(op.IN, ["É"], "é", False, id="case-sensitive"),
        pytest.param(op.NOT_IN, ["a", "b"], "c", True, id="not-in-absent"),
        pytest.param(op.NOT_IN, ["a", "b"], "a", False, id="not-in-present"),
        pytest.param(op.NOT_IN, [], "x", True, id="not-in-empty-list-matches-present"),
        pytest.param(op.NOT_IN, [], [1], True, id="not-in-empty-list-matches-list"),
        pytest.param(op.NOT_IN, [1], "1", True, id="not-in-other-type"),
        pytest.param(op.NOT_IN, [1], True, True, id="not-in-bool-vs-number"),
    ],
)
def test_list_membership__trait_against_list__gives_tabled_verdict(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.CONTAINS, "ree", "free", True, id="substring"),
        pytest.param(op.CONTAINS, "x", "free", False, id="not-substring"),
        pytest.param(op.CONTAINS, "", "", True, id="empty-substring"),
        pytest.param(op.CONTAINS, "a", ["a", "b"], True, id="list-member"),
        pytest.param(op.CONTAINS, "a", ["ab"], False, id="list-is-membership-not-substring"),
        pytest.param(op.CONTAINS, "a", [], False, id="empty-list"),
        pytest.param(op.CONTAINS, 1, [1.0, 2], True, id="number-member"),
        pytest.param(op.CONTAINS, 1, [True], False, id="true-is-not-1"),
        pytest.param(op.CONTAINS, True, [1, True], True, id="bool-member"),
        pytest.param(op.CONTAINS, "1", [1], False, id="string-1-is-not-1"),
        pytest.param(op.CONTAINS, 1, "1", False, id="number-in-string-trait"),
        pytest.param(op.CONTAINS, "a", [["a"]], False, id="nested-list"),
        pytest.param(op.CONTAINS, "a", {"a": 1}, False, id="object-trait"),
        pytest.param(op.CONTAINS, "5", 5, False, id="number-trait"),
        pytest.param(op.CONTAINS, "漢", "漢字", True, id="unicode"),
        pytest.param(op.NOT_CONTAINS, "x", "free", True, id="not-contains-absent"),
        pytest.param(op.NOT_CONTAINS, "ree", "free", False, id="not-contains-present"),
        pytest.param(op.NOT_CONTAINS, "a", ["b"], True, id="not-contains-list"),
        pytest.param(op.NOT_CONTAINS, "a", ["a"], False, id="not-contains-list-member"),
        pytest.param(op.NOT_CONTAINS, 1, "1", True, id="not-contains-number-in-string"),
        pytest.param(op.NOT_CONTAINS, "a", 5, True, id="not-contains-number-trait"),
    ],
)
def test_contains__trait_against_value__gives_tabled_verdict(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.STARTS_WITH, "fr", "free", True, id="prefix"),
        pytest.param(op.STARTS_WITH, "ee", "free", False, id="not-prefix"),
        pytest.param(op.STARTS_WITH, "", "x", True, id="empty-prefix"),
        pytest.param(op.STARTS_WITH, "1", 10, False, id="number-trait"),
        pytest.param(op.STARTS_WITH, "a", ["a"], False, id="list-trait"),
        pytest.param(op.ENDS_WITH, "ee", "free", True, id="suffix"),
        pytest.param(op.ENDS_WITH, "fr", "free", False, id="not-suffix"),
        pytest.param(op.ENDS_WITH, "ß", "straße", False, id="ends-with-case-sensitive-text"),
        pytest.param(op.ENDS_WITH, "😀", "hi😀", True, id="astral"),
        pytest.param(op.MATCHES_REGEX, "^fr", "free", True, id="anchored"),
        pytest.param(op.MATCHES_REGEX, "^ee", "free", False, id="anchored-miss"),
        pytest.param(op.MATCHES_REGEX, "re", "free", True, id="search-not-full-match"),
        pytest.param(op.MATCHES_REGEX, "^(free|pro)$", "pro", True, id="alternation"),
        pytest.param(op.MATCHES_REGEX, "^.$", "é", True, id="dot-is-a-code-point"),
        pytest.param(op.MATCHES_REGEX, "^\\d$", "٣", False, id="digit-class-is-ascii"),
        pytest.param(op.MATCHES_REGEX, "^a$", "a\n", False, id="dollar-is-end-of-text"),
        pytest.param(op.MATCHES_REGEX, "F", "free", False, id="case-sensitive"),
        pytest.param(op.MATCHES_REGEX, "1", 1, False, id="number-trait"),
        pytest.param(op.MATCHES_REGEX, "a", ["a"], False, id="list-trait"),
        pytest.param(op.MATCHES_REGEX, "a", "a\ud800", False, id="lone-surrogate-trait"),
    ],
)
def test_string_operators__trait_against_value__gives_tabled_verdict(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("operator", "trait", "expected"),
    [
        pytest.param(op.EXISTS, "", True, id="empty-string"),
        pytest.param(op.EXISTS, 0, True, id="zero"),
        pytest.param(op.EXISTS, False, True, id="false"),
        pytest.param(op.EXISTS, [], True, id="empty-list"),
        pytest.param(op.EXISTS, {}, True, id="empty-object"),
        pytest.param(op.NOT_EXISTS, "", False, id="not-exists-empty-string"),
        pytest.param(op.NOT_EXISTS, [], False, id="not-exists-empty-list"),
    ],
)
def test_existence__present_trait__gives_tabled_verdict(
    operator: str, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, None, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("A", ("s", "a")),
        (1, ("n", 1)),
        (1.0, ("n", 1)),
        (True, ("b", True)),
        ([1], None),
        ({}, None),
        (MISSING, None),
    ],
)
def test_scalar_key__value__tags_its_type(value: JsonValue | Missing, key: tuple[str, object] | None) -> None:
    # Given / When
    result = scalar_key(value, ignore_case=True)

    # Then
    assert result == key
