"""What a compiled predicate reads: one user's data at one instant.

Traits come from the profile; the behavioural and population inputs (event counts,
percentile thresholds, user-list memberships) are looked up through small protocols so the store can
supply them without the engine doing any I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from segmentd.engine.rules import JsonValue
from segmentd.engine.times import datetime_to_us


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """The input of every compiled predicate.

    Attributes:
        traits: the profile's traits (a JSON object).
        user_id: the user's id; percentage splits bucket on it. ``None`` for an
            anonymous profile, for which every split is false.
        now: the instant relative time operators (``WITHIN_LAST_DAYS``) measure from;
            fixed per call so every segment of one verdict sees the same instant.
        event_counts: ``(event name, within_days) -> count``, prefetched by the store
            for the event conditions of the segments being evaluated.
        percentile_thresholds: ``(attribute, percent) -> threshold`` (``None`` when no
            profile has a numeric value), computed by the database and cached.
        lists: the names of the user lists the user is a member of, among those the store
            prefetched for the ``in_list`` conditions of the segments being evaluated.
        now_us: ``now`` in microseconds since the epoch (a naive ``now`` is taken as UTC),
            derived once here so time operators do no datetime arithmetic per condition.
    """

    traits: Mapping[str, JsonValue]
    user_id: str | None = None
    now: datetime = field(default_factory=_utc_now)
    event_counts: Mapping[tuple[str, int], int] = field(default_factory=dict)
    percentile_thresholds: Mapping[tuple[str, float], float | None] = field(default_factory=dict)
    lists: Collection[str] = frozenset()
    now_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Derive ``now_us`` from ``now``."""
        # The dataclass is frozen: set the derived field the way its own __init__ would.
        object.__setattr__(self, "now_us", datetime_to_us(self.now))
