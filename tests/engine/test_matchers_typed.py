"""Operator semantics (docs/semantics.md): case folding, times, versions and percentiles."""

from __future__ import annotations

import pytest

from segmentd.engine import operators as op
from segmentd.engine.rules import JsonValue
from tests.engine.support import ATTRIBUTE, holds


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.EQUALS, "ÉCOLE", "école", True, id="accented-capital"),
        pytest.param(op.EQUALS, "ẞ", "ß", True, id="capital-sharp-s"),
        pytest.param(op.EQUALS, "straße", "STRASSE", False, id="sharp-s-is-not-ss"),
        pytest.param(op.EQUALS, "i̇stanbul", "İstanbul", True, id="dotted-capital-i"),
        pytest.param(op.EQUALS, "istanbul", "İstanbul", False, id="dotted-capital-i-is-not-i"),
        pytest.param(op.EQUALS, "σας", "ΣΑΣ", True, id="final-sigma"),
        pytest.param(op.EQUALS, "σασ", "ΣΑΣ", False, id="final-sigma-is-not-sigma"),
        pytest.param(op.EQUALS, "k", "\u212a", True, id="kelvin-sign"),
        pytest.param(op.EQUALS, 5, 5, True, id="number-unaffected"),
        pytest.param(op.EQUALS, True, True, True, id="bool-unaffected"),
        pytest.param(op.NOT_EQUALS, "FREE", "free", False, id="not-equals"),
        pytest.param(op.LESS_THAN, "B", "a", True, id="ordering-of-lower-case-forms"),
        pytest.param(op.LESS_THAN, 5, 4, True, id="ordering-numbers-unaffected"),
        pytest.param(op.IN, ["FREE", 1], "Free", True, id="in"),
        pytest.param(op.NOT_IN, ["FREE"], "free", False, id="not-in"),
        pytest.param(op.CONTAINS, "ÉC", "l'ÉCOLE", True, id="contains-substring"),
        pytest.param(op.CONTAINS, "ÉCOLE", ["école"], True, id="contains-list"),
        pytest.param(op.CONTAINS, 1, [1], True, id="contains-number"),
        pytest.param(op.NOT_CONTAINS, "X", "xyz", False, id="not-contains"),
        pytest.param(op.STARTS_WITH, "ÉC", "école", True, id="starts-with"),
        pytest.param(op.ENDS_WITH, "SS", "straße", False, id="ends-with-sharp-s"),
        pytest.param(op.ENDS_WITH, "ΑΣ", "σας", True, id="ends-with-final-sigma"),
        pytest.param(op.MATCHES_REGEX, "^éc", "ÉCOLE", True, id="regex-lower-cases-the-trait"),
        pytest.param(op.MATCHES_REGEX, "^\\w+$", "ABC", True, id="regex-escapes-keep-their-case"),
    ],
)
def test_ignore_case__trait_against_value__compares_lower_case_forms(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait, ignore_case=True)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("value", "trait", "expected"),
    [
        pytest.param([1, 10], 1, True, id="low-bound-included"),
        pytest.param([1, 10], 10.0, True, id="high-bound-included"),
        pytest.param([1, 10], 0.5, False, id="below"),
        pytest.param([1, 10], 10.01, False, id="above"),
        pytest.param([5, 5], 5, True, id="single-point"),
        pytest.param([1, 10], "5", False, id="numeric-string"),
        pytest.param([0, 10], True, False, id="bool"),
        pytest.param([0, 10], [5], False, id="list"),
        pytest.param(
            ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"], "2026-01-15T10:00:00+05:00", True, id="time"
        ),
        pytest.param(
            ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"], "2026-01-01T01:00:00+01:00", True, id="time-low"
        ),
        pytest.param(
            ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"],
            "2026-01-31T23:00:00-01:00",
            True,
            id="time-high",
        ),
        pytest.param(
            ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"], "2025-12-31T23:59:59Z", False, id="time-below"
        ),
        pytest.param(["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"], "2026-01-15", False, id="date-only"),
        pytest.param(["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"], 5, False, id="number-vs-times"),
        pytest.param([0, 10], "2026-01-15T00:00:00Z", False, id="time-vs-numbers"),
    ],
)
def test_between__trait_against_bounds__includes_both_bounds(
    value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(op.BETWEEN, value, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z", True, id="before"),
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", False, id="before-later"),
        pytest.param(
            op.BEFORE, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", False, id="before-same-instant"
        ),
        pytest.param(
            op.AFTER, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", False, id="after-same-instant"
        ),
        pytest.param(
            op.AFTER, "2026-01-01T00:00:00Z", "2025-12-31T23:00:00-01:00", False, id="after-same-instant-neg"
        ),
        pytest.param(op.AFTER, "2026-01-01T00:00:00Z", "2026-01-01T00:30:00+00:29", True, id="after-offset"),
        pytest.param(
            op.AFTER, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000001Z", True, id="after-by-a-microsecond"
        ),
        pytest.param(
            op.AFTER, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.0000009Z", False, id="fraction-truncated"
        ),
        pytest.param(op.AFTER, "2026-01-01T00:00:00Z", "2026-01-01t00:00:01z", True, id="lower-case-t-and-z"),
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", "2025-12-31", False, id="date-only"),
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", "2025-12-31T00:00:00", False, id="no-offset"),
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", "2025-12-31T23:59:60Z", False, id="leap-second"),
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", "2025-02-29T00:00:00Z", False, id="no-such-day"),
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", 5, False, id="number"),
        pytest.param(
            op.BEFORE, "2026-01-01T00:00:00Z", "2025-01-01T00:00:00.000000000+00:00", True, id="longest"
        ),
        pytest.param(
            op.BEFORE, "2026-01-01T00:00:00Z", "2025-01-01T00:00:00.0000000000+00:00", False, id="too-long"
        ),
        pytest.param(op.BEFORE, "2026-01-01T00:00:00Z", ["2025-01-01T00:00:00Z"], False, id="list"),
    ],
)
def test_before_after__trait_against_time__compare_instants_strictly(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait)

    # Then
    assert verdict is expected


# NOW is 2026-03-01T12:00:00Z; 30 days earlier is 2026-01-30T12:00:00Z.
@pytest.mark.parametrize(
    ("days", "trait", "within"),
    [
        pytest.param(30, "2026-01-30T12:00:00Z", True, id="at-the-bound"),
        pytest.param(30, "2026-01-30T13:00:00+01:00", True, id="at-the-bound-with-offset"),
        pytest.param(30, "2026-01-30T11:59:59.999999Z", False, id="just-before-the-bound"),
        pytest.param(30.0, "2026-02-15T00:00:00Z", True, id="float-days"),
        pytest.param(30, "2027-01-01T00:00:00Z", True, id="future"),
        pytest.param(0, "2026-03-01T12:00:00Z", True, id="zero-days-now"),
        pytest.param(0, "2026-03-01T11:59:59Z", False, id="zero-days-past"),
        pytest.param(1, "2026-02-28T12:00:00Z", True, id="one-day"),
    ],
)
def test_relative_time__trait_against_days__splits_at_now_minus_days(
    days: JsonValue, trait: JsonValue, within: bool
) -> None:
    # Given / When
    within_verdict = holds(op.WITHIN_LAST_DAYS, days, trait)
    not_within_verdict = holds(op.NOT_WITHIN_LAST_DAYS, days, trait)

    # Then
    assert within_verdict is within
    assert not_within_verdict is not within


@pytest.mark.parametrize("operator", [op.WITHIN_LAST_DAYS, op.NOT_WITHIN_LAST_DAYS])
@pytest.mark.parametrize("trait", ["2026-03-01", "soon", 5, True, ["2026-03-01T00:00:00Z"]])
def test_relative_time__not_a_time__is_false(operator: str, trait: JsonValue) -> None:
    # Given / When
    verdict = holds(operator, 30, trait)

    # Then
    assert verdict is False


@pytest.mark.parametrize(
    ("operator", "value", "trait", "expected"),
    [
        pytest.param(op.SEMVER_EQUALS, "1.0.0", "1.0.0+build.5", True, id="build-ignored"),
        pytest.param(op.SEMVER_EQUALS, "1.0.0+a", "1.0.0+b", True, id="builds-ignored"),
        pytest.param(op.SEMVER_EQUALS, "1.0.0", "1.0.0-rc.1", False, id="prerelease-differs"),
        pytest.param(op.SEMVER_LESS_THAN, "1.0.0", "1.0.0-rc.1", True, id="prerelease-is-lower"),
        pytest.param(op.SEMVER_LESS_THAN, "10.0.0", "2.0.0", True, id="major-numeric"),
        pytest.param(op.SEMVER_GREATER_THAN, "1.0.9", "1.0.99999999999999999999", True, id="huge-patch"),
        pytest.param(op.SEMVER_GREATER_THAN, "1.0.0-beta.2", "1.0.0-beta.11", True, id="numeric-identifiers"),
        pytest.param(op.SEMVER_GREATER_THAN, "1.0.0", "1.0.0", False, id="equal-is-not-greater"),
        pytest.param(op.SEMVER_LESS_THAN, "2.0.0", "v1.0.0", False, id="leading-v"),
        pytest.param(op.SEMVER_LESS_THAN, "2.0.0", "1.0", False, id="two-parts"),
        pytest.param(op.SEMVER_LESS_THAN, "2.0.0", 1, False, id="number"),
        pytest.param(op.SEMVER_LESS_THAN, "1.0.0", "1.0.0-" + "a" * 100, True, id="long-prerelease"),
        pytest.param(op.SEMVER_GREATER_THAN, "1.0.0", "9" * 100 + ".0.0", True, id="long-major"),
    ],
)
def test_semver__trait_against_version__compares_precedence(
    operator: str, value: JsonValue, trait: JsonValue, expected: bool
) -> None:
    # Given / When
    verdict = holds(operator, value, trait)

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("operator", "percent", "trait", "thresholds", "expected"),
    [
        pytest.param(op.PERCENTILE_AT_MOST, 10, 50, {(ATTRIBUTE, 10.0): 50.0}, True, id="at-most-equal"),
        pytest.param(op.PERCENTILE_AT_MOST, 10, 49, {(ATTRIBUTE, 10.0): 50.0}, True, id="at-most-below"),
        pytest.param(op.PERCENTILE_AT_MOST, 10, 50.5, {(ATTRIBUTE, 10.0): 50.0}, False, id="at-most-above"),
        pytest.param(op.PERCENTILE_AT_LEAST, 90, 50, {(ATTRIBUTE, 90.0): 50}, True, id="at-least-equal"),
        pytest.param(op.PERCENTILE_AT_LEAST, 90.0, 49, {(ATTRIBUTE, 90.0): 50}, False, id="at-least-below"),
        pytest.param(op.PERCENTILE_AT_LEAST, 90, 49, {}, False, id="no-threshold-known"),
        pytest.param(
            op.PERCENTILE_AT_LEAST, 90, 49, {(ATTRIBUTE, 90.0): None}, False, id="no-numeric-profile"
        ),
        pytest.param(op.PERCENTILE_AT_MOST, 10, "1", {(ATTRIBUTE, 10.0): 50}, False, id="numeric-string"),
        pytest.param(op.PERCENTILE_AT_MOST, 10, True, {(ATTRIBUTE, 10.0): 50}, False, id="bool"),
        pytest.param(op.PERCENTILE_AT_MOST, 10, 1, {("b", 10.0): 50}, False, id="other-attribute"),
    ],
)
def test_percentile__trait_against_threshold__gives_tabled_verdict(
    operator: str,
    percent: JsonValue,
    trait: JsonValue,
    thresholds: dict[tuple[str, float], float],
    expected: bool,
) -> None:
    # Given / When
    verdict = holds(operator, percent, trait, percentile_thresholds=thresholds)

    # Then
    assert verdict is expected
