"""RFC 3339 times as integer microseconds since the Unix epoch.

The SQL side reimplements `parse_time_us` (PL/pgSQL, and a registered function in SQLite), so
the parse is deliberately one regular expression plus a calendar check and integer arithmetic.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

#: The length of the longest time `parse_time_us` accepts: ``2026-03-01T09:30:00.123456789+01:00``.
MAX_TIME_LENGTH: Final = 35
US_PER_SECOND: Final = 1_000_000
US_PER_DAY: Final = 86_400 * US_PER_SECOND

# [0-9] rather than \d, which would accept any Unicode digit; ranges that the calendar does
# not decide (hours, minutes, seconds, offsets) are checked by the expression itself.
_TIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])"
    r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))"
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)  # built once: building it is most of a conversion's cost


def parse_time_us(text: str) -> int | None:
    """Parse an RFC 3339 date-time into microseconds since 1970-01-01T00:00:00Z.

    The whole text must match
    ``YYYY-MM-DD(T|t)hh:mm:ss[.f{1,9}](Z|z|(+|-)hh:mm)`` with ASCII digits, hours 00-23,
    minutes and seconds 00-59 (no leap second), offset hours 00-23 and minutes 00-59, and
    must name a real calendar date in years 0001-9999 (``2025-02-29`` is not a time). Then::

        days    = days from 1970-01-01 to YYYY-MM-DD (proleptic Gregorian; negative before)
        offset  = sign * (offset_hh * 3600 + offset_mm * 60)      (0 for Z)
        seconds = days * 86400 + hh * 3600 + mm * 60 + ss - offset
        result  = seconds * 1_000_000 + first six fraction digits, right-padded with zeros

    so extra fraction digits are truncated, never rounded, and everything is exact integers.

    Returns:
        The instant in microseconds, or ``None`` when ``text`` is not such a time.
    """
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, offset_hour, offset_minute = match.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # no such day (month 13, February 30, year 0000)
        return None
    offset = 0
    if sign is not None:
        offset = (int(offset_hour) * 3600 + int(offset_minute) * 60) * (1 if sign == "+" else -1)
    seconds = days * 86_400 + int(hour) * 3600 + int(minute) * 60 + int(second) - offset
    micros = int((fraction or "").ljust(6, "0")[:6])
    return seconds * US_PER_SECOND + micros


def datetime_to_us(instant: datetime) -> int:
    """Return ``instant`` in microseconds since the epoch; a naive datetime is taken as UTC."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return (instant - _EPOCH) // _ONE_US


def event_window_start(now: datetime, within_days: int) -> date | None:
    """Return the first UTC day an event window of ``within_days`` counts; ``None`` for 0 (ever).

    As docs/semantics.md defines it: every day on or after the UTC date of ``now - n days``
    (so ``1`` is yesterday and today). A naive ``now`` is taken as UTC.
    """
    if within_days <= 0:
        return None
    start = now - timedelta(days=within_days)
    return (start if start.tzinfo is None else start.astimezone(UTC)).date()


def day_start(day: date) -> datetime:
    """Return midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
