"""Semantic versions: strict parsing and precedence."""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentd.engine.semver import Semver, compare_semver, compare_semver_text, parse_semver

# The precedence example of semver.org, item 11, extended on both sides.
CHAIN = [
    "0.9.12",
    "1.0.0-0",
    "1.0.0-0.3.7",
    "1.0.0-1",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0",
    "10.0.0",
    "123456789012345678901234567890.0.0",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1.2.3", Semver("1", "2", "3"), id="release"),
        pytest.param("0.0.0", Semver("0", "0", "0"), id="zeros"),
        pytest.param("1.0.0-rc.1", Semver("1", "0", "0", ("rc", "1")), id="prerelease"),
        pytest.param(
            "1.0.0-0a.-.x-y", Semver("1", "0", "0", ("0a", "-", "x-y")), id="alphanumeric-identifiers"
        ),
        pytest.param("1.0.0+build.5", Semver("1", "0", "0", (), "build.5"), id="build"),
        pytest.param(
            "1.0.0-rc.1+001", Semver("1", "0", "0", ("rc", "1"), "001"), id="build-may-have-leading-zeros"
        ),
        pytest.param(
            "1" * 5000 + ".0.0", Semver("1" * 5000, "0", "0"), id="more-digits-than-int-conversion-allows"
        ),
    ],
)
def test_parse_semver__version__gives_its_parts(text: str, expected: Semver) -> None:
    # Given / When
    result = parse_semver(text)

    # Then
    assert result == expected


@pytest.mark.parametrize(
    "text",
    [
        "1",
        "1.0",
        "1.0.0.0",
        "v1.0.0",
        "01.0.0",
        "1.00.0",
        "1.0.00",
        "1.0.0-01",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-a..b",
        "1.0.0-a_b",
        "1.0.0 ",
        "1.0.0\n",
        "１.0.0",
        "1.0.0-é",
        "",
    ],
)
def test_parse_semver__not_a_version__is_none(text: str) -> None:
    # Given / When
    result = parse_semver(text)

    # Then
    assert result is None


@pytest.mark.parametrize(("lower", "higher"), list(itertools.combinations(CHAIN, 2)))
def test_compare_semver_text__ordered_pair__orders_by_precedence(lower: str, higher: str) -> None:
    # Given / When
    forward = compare_semver_text(lower, higher)
    backward = compare_semver_text(higher, lower)

    # Then
    assert (forward, backward) == (-1, 1)


@pytest.mark.parametrize(
    ("a", "b"),
    [("1.0.0", "1.0.0"), ("1.0.0+a", "1.0.0+b"), ("1.0.0-rc.1+x", "1.0.0-rc.1"), ("1.0.0-1", "1.0.0-1")],
)
def test_compare_semver_text__same_precedence__is_zero(a: str, b: str) -> None:
    # Given / When
    result = compare_semver_text(a, b)

    # Then
    assert result == 0


@pytest.mark.parametrize(("a", "b"), [("1.0", "1.0.0"), ("1.0.0", "v1"), ("x", "y")])
def test_compare_semver_text__not_a_version__is_none(a: str, b: str) -> None:
    # Given / When
    result = compare_semver_text(a, b)

    # Then
    assert result is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(CHAIN), min_size=1, max_size=6))
def test_compare_semver__shuffled_chain__sorts_like_the_chain(versions: list[str]) -> None:
    # Given
    def compare(a: str, b: str) -> int:
        left, right = parse_semver(a), parse_semver(b)
        assert left is not None and right is not None
        return compare_semver(left, right)

    # When
    result = sorted(versions, key=functools.cmp_to_key(compare))

    # Then
    assert result == sorted(versions, key=CHAIN.index)
