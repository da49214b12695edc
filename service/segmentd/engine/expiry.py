"""Until when a verdict holds without re-evaluation: the instants at which time can change it.

A verdict depends on the clock only through conditions relative to ``now``:

    WITHIN_LAST_DAYS n       holds while  now <= trait + n days
    NOT_WITHIN_LAST_DAYS n   holds once   now >  trait + n days

(``BEFORE``/``AFTER``/``BETWEEN`` compare a trait with constants, and event windows move only at
midnight UTC, which the profile cache handles by re-reading the counts.) So for one profile,
a verdict computed at ``now`` stays exact until the earliest ``trait + n days`` that is not
yet past, and a cache may keep it that long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, cast

from segmentd.engine import operators as op
from segmentd.engine.matchers import time_of
from segmentd.engine.rules import Condition, Group, JsonValue, Rule
from segmentd.engine.times import US_PER_DAY
from segmentd.engine.traits import lookup, split_path

#: A time-relative condition: the trait's path and its span in microseconds.
RelativeTime = tuple[tuple[str, ...], int]

#: The end of time, for a verdict no clock can change.
FOREVER: Final = 2**63 - 1

_RELATIVE_OPERATORS: Final = frozenset({op.WITHIN_LAST_DAYS, op.NOT_WITHIN_LAST_DAYS})


def relative_times(rules: Iterable[Rule]) -> frozenset[RelativeTime]:
    """Return the ``(path, span)`` of every time-relative condition in ``rules``."""
    found: set[RelativeTime] = set()
    pending = list(rules)
    while pending:
        rule = pending.pop()
        if isinstance(rule, Group):
            pending.extend(rule.rules)
        elif isinstance(rule, Condition) and rule.operator in _RELATIVE_OPERATORS:
            # Validated: a whole number of days, as the matcher reads it.
            found.add((split_path(rule.attribute), int(cast("float", rule.value)) * US_PER_DAY))
    return frozenset(found)


def verdict_valid_until(
    conditions: Iterable[RelativeTime], traits: Mapping[str, JsonValue], now_us: int
) -> int:
    """Return the last instant (µs since the epoch) at which a verdict computed at ``now_us`` still holds."""
    valid_until = FOREVER
    for path, span in conditions:
        instant = time_of(lookup(traits, path))
        if instant is not None and now_us <= instant + span < valid_until:
            valid_until = instant + span
    return valid_until
