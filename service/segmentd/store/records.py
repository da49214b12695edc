"""What the repositories return: immutable records, detached from any session.

Segment      one version of a segment (its rule decoded into the engine's types)
SegmentPage  one page of ``SegmentRepository.list``
Profile      a user's traits
Event        what ``ProfileRepository.record_events`` takes: ``count`` events on ``time``'s day
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segmentd.engine.rules import Rule


@dataclass(frozen=True, slots=True)
class Segment:
    """One version of a segment.

    Attributes:
        name: the segment's slug, ``[a-z0-9-]{1,63}``.
        description: free text; may be empty.
        rule: the membership rule.
        labels: key/value labels, used to filter listings.
        version: 1 on creation, +1 on every update.
        etag: changes with every version; compare-and-set token for updates and deletes.
        create_time: when the segment was created.
        update_time: when this version was written.
    """

    name: str
    description: str
    rule: Rule
    labels: dict[str, str]
    version: int
    etag: str
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class SegmentPage:
    """One page of segments, in ascending order of name.

    Attributes:
        segments: the segments of the page.
        next_page_token: pass it back to read the next page; empty on the last page.
    """

    segments: tuple[Segment, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    """What evaluating a stored user needs, read in one statement.

    Attributes:
        profile: the stored profile.
        event_counts: ``(event name, within_days) -> count`` for the windows asked for.
        catalogue_version: the segment catalogue's version at the same read, so a caller
            can tell whether its compiled segments are current without another round trip.
        lists: of the user lists asked about, those the user is a member of.
    """

    profile: Profile
    event_counts: dict[tuple[str, int], int]
    catalogue_version: int
    lists: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Profile:
    """A user and their traits (a JSON object).

    Attributes:
        user_id: the user's identifier.
        traits: the traits, as decoded JSON.
        create_time: when the profile was first stored.
        update_time: when it was last changed.
    """

    user_id: str
    traits: dict[str, Any]
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """``count`` occurrences of event ``name`` by ``user_id`` at ``time``.

    Attributes:
        user_id: the user; a profile must exist for it.
        name: the event name, as ``EventCondition.name`` refers to it.
        time: when it happened; only its UTC day is kept (a naive time is taken as UTC).
        count: how many times; 0 means 1.
    """

    user_id: str
    name: str
    time: datetime
    count: int = 1
