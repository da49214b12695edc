"""Attribute paths, the missing sentinel and JSON type tests."""

from __future__ import annotations

import pytest

from segmentd.engine.rules import JsonValue
from segmentd.engine.traits import (
    MISSING,
    Missing,
    describe_type,
    is_finite_number,
    is_list,
    is_number,
    is_scalar,
    lookup,
    split_path,
)

TRAITS: dict[str, JsonValue] = {
    "plan": "free",
    "company": {"size": 10, "name": None, "tags": ["a"], "deep": {"er": 0}},
    "flag": False,
    "null": None,
    "list": [{"x": 1}],
    "a.b": "dotted key",
    "string": "text",
}


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param("plan", "free", id="top-level"),
        pytest.param("company.size", 10, id="nested"),
        pytest.param("company.deep.er", 0, id="deeply-nested-zero"),
        pytest.param("company.tags", ["a"], id="list-value"),
        pytest.param("flag", False, id="false-is-present"),
        pytest.param("company", TRAITS["company"], id="object-value"),
        pytest.param("null", MISSING, id="null-is-missing"),
        pytest.param("company.name", MISSING, id="nested-null-is-missing"),
        pytest.param("absent", MISSING, id="absent"),
        pytest.param("company.absent", MISSING, id="nested-absent"),
        pytest.param("plan.x", MISSING, id="through-a-string"),
        pytest.param("null.x", MISSING, id="through-null"),
        pytest.param("list.x", MISSING, id="through-a-list"),
        pytest.param("company.size.x", MISSING, id="through-a-number"),
        pytest.param("a.b", MISSING, id="dotted-keys-unaddressable"),
    ],
)
def test_lookup__attribute_path__finds_the_trait_or_missing(
    attribute: str, expected: JsonValue | Missing
) -> None:
    # Given
    path = split_path(attribute)

    # When
    result = lookup(TRAITS, path)

    # Then
    assert result == expected


def test_split_path__dotted_attribute__splits_on_dots() -> None:
    # Given / When
    result = split_path("company.size")

    # Then
    assert result == ("company", "size")


def test_missing__repr__names_itself() -> None:
    # Given / When / Then
    assert repr(MISSING) == "MISSING"
    assert Missing("MISSING") is MISSING


@pytest.mark.parametrize(
    ("value", "number", "finite", "scalar", "listy", "described"),
    [
        pytest.param(1, True, True, True, False, "a number", id="int"),
        pytest.param(1.5, True, True, True, False, "a number", id="float"),
        pytest.param(float("nan"), True, False, True, False, "a non-finite number", id="nan"),
        pytest.param(float("inf"), True, False, True, False, "a non-finite number", id="inf"),
        pytest.param(10**400, True, False, True, False, "a non-finite number", id="huge-int"),
        pytest.param(True, False, False, True, False, "a boolean", id="bool"),
        pytest.param("1", False, False, True, False, "a string", id="string"),
        pytest.param([1], False, False, False, True, "a list", id="list"),
        pytest.param((1,), False, False, False, True, "a list", id="tuple"),
        pytest.param({"a": 1}, False, False, False, False, "an object", id="object"),
        pytest.param(None, False, False, False, False, "null", id="null"),
        pytest.param(MISSING, False, False, False, False, "null", id="missing"),
    ],
)
def test_type_tests__value__classify_json_types(
    value: object, number: bool, finite: bool, scalar: bool, listy: bool, described: str
) -> None:
    # Given / When
    results = (
        is_number(value),
        is_finite_number(value),
        is_scalar(value),
        is_list(value),
        describe_type(value),
    )

    # Then
    assert results == (number, finite, scalar, listy, described)
