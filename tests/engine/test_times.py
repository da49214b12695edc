"""RFC 3339 parsing to epoch microseconds, and the context's ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentd.engine.context import EvaluationContext
from segmentd.engine.times import MAX_TIME_LENGTH, US_PER_DAY, datetime_to_us, parse_time_us
from tests.strategies import times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1970-01-01T00:00:00Z", 0, id="epoch"),
        pytest.param("1970-01-01t00:00:00z", 0, id="lower-case"),
        pytest.param("1970-01-01T01:00:00+01:00", 0, id="positive-offset"),
        pytest.param("1969-12-31T23:00:00-01:00", 0, id="negative-offset"),
        pytest.param("1970-01-01T00:00:00-00:00", 0, id="unknown-local-offset"),
        pytest.param("1970-01-01T00:00:00+00:00", 0, id="zero-offset"),
        pytest.param("1970-01-02T00:00:00Z", US_PER_DAY, id="one-day"),
        pytest.param("1969-12-31T23:59:59Z", -1_000_000, id="before-epoch"),
        pytest.param("1970-01-01T00:00:00.5Z", 500_000, id="one-fraction-digit"),
        pytest.param("1970-01-01T00:00:00.000001Z", 1, id="microsecond"),
        pytest.param("1970-01-01T00:00:00.123456789Z", 123_456, id="nine-digits-truncated"),
        pytest.param("1970-01-01T00:00:00.9999999Z", 999_999, id="truncated-not-rounded"),
        pytest.param("2026-03-01T10:30:00.250+01:00", 1_772_357_400_250_000, id="docs-example"),
        pytest.param("2024-02-29T00:00:00Z", 1_709_164_800_000_000, id="leap-day"),
        pytest.param("0001-01-01T00:00:00Z", -62_135_596_800_000_000, id="first-year"),
        pytest.param(
            "0001-01-01T00:00:00+23:59", -62_135_596_800_000_000 - 86_340_000_000, id="first-year-max-offset"
        ),
        pytest.param(
            "9999-12-31T23:59:59.999999-23:59", 253_402_300_799_999_999 + 86_340_000_000, id="last-instant"
        ),
    ],
)
def test_parse_time_us__rfc3339_time__gives_epoch_microseconds(text: str, expected: int) -> None:
    # Given / When
    result = parse_time_us(text)

    # Then
    assert result == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2026-03-01", id="date-only"),
        pytest.param("2026-03-01T09:30:00", id="no-offset"),
        pytest.param("2026-03-01T09:30Z", id="no-seconds"),
        pytest.param("2026-03-01 09:30:00Z", id="space-separator"),
        pytest.param("2026-03-01T09:30:00.Z", id="empty-fraction"),
        pytest.param("2026-03-01T09:30:00.1234567890Z", id="ten-fraction-digits"),
        pytest.param("2026-03-01T09:30:60Z", id="leap-second"),
        pytest.param("2026-03-01T24:00:00Z", id="hour-24"),
        pytest.param("2026-03-01T09:60:00Z", id="minute-60"),
        pytest.param("2026-03-01T09:30:00+24:00", id="offset-hour-24"),
        pytest.param("2026-03-01T09:30:00+01:60", id="offset-minute-60"),
        pytest.param("2026-03-01T09:30:00+0100", id="offset-without-colon"),
        pytest.param("2026-13-01T09:30:00Z", id="month-13"),
        pytest.param("2026-00-01T09:30:00Z", id="month-0"),
        pytest.param("2025-02-29T09:30:00Z", id="not-a-leap-year"),
        pytest.param("2026-04-31T09:30:00Z", id="april-31"),
        pytest.param("0000-01-01T00:00:00Z", id="year-0"),
        pytest.param("12026-01-01T00:00:00Z", id="five-digit-year"),
        pytest.param("２０２６-03-01T09:30:00Z", id="non-ascii-digits"),
        pytest.param("2026-03-01T09:30:00Z\n", id="trailing-newline"),
        pytest.param(" 2026-03-01T09:30:00Z", id="leading-space"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_time_us__not_rfc3339__is_none(text: str) -> None:
    # Given / When
    result = parse_time_us(text)

    # Then
    assert result is None


def test_max_time_length__longest_time__is_accepted_and_one_more_is_not() -> None:
    # Given
    longest = "9999-12-31T23:59:59.999999999-23:59"

    # When
    results = (parse_time_us(longest), parse_time_us(longest.replace(".", ".9", 1)))

    # Then
    assert len(longest) == MAX_TIME_LENGTH
    assert results[0] is not None
    assert results[1] is None


@settings(max_examples=200, deadline=None)
@given(times())
def test_parse_time_us__generated_time__agrees_with_datetime(text: str) -> None:
    # Given
    normalised = text.replace("t", "T").replace("z", "+00:00").replace("Z", "+00:00")
    instant = datetime.fromisoformat(normalised)

    # When
    result = parse_time_us(text)

    # Then
    assert result == datetime_to_us(instant)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=-5)))))
def test_parse_time_us__isoformat_of_aware_datetime__round_trips(instant: datetime) -> None:
    # Given
    text = instant.isoformat(timespec="microseconds")

    # When
    result = parse_time_us(text)

    # Then
    assert result == datetime_to_us(instant)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        pytest.param(datetime(1970, 1, 1, tzinfo=UTC), 0, id="epoch"),
        pytest.param(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), 0, id="offset"),
        pytest.param(datetime(1970, 1, 1, 0, 0, 1), 1_000_000, id="naive-is-utc"),
        pytest.param(datetime(1, 1, 1, tzinfo=UTC), -62_135_596_800_000_000, id="year-1"),
    ],
)
def test_datetime_to_us__datetime__gives_epoch_microseconds(instant: datetime, expected: int) -> None:
    # Given / When
    result = datetime_to_us(instant)

    # Then
    assert result == expected


def test_evaluation_context__now__is_derived_as_microseconds() -> None:
    # Given
    now = datetime(1970, 1, 2, tzinfo=UTC)

    # When
    ctx = EvaluationContext(traits={}, now=now)

    # Then
    assert ctx.now_us == US_PER_DAY
    assert ctx == EvaluationContext(traits={}, now=now)
