"""What the repositories return: immutable records, detached from any session.

Segment      one version of a segment (its rule decoded into the engine's types)
SegmentPage  one page of ``SegmentRepository.list``
Profile      a user's traits
Event        what ``ProfileRepository.record_events`` takes: ``count`` events on ``time``'s day
UserSnapshot what evaluating a stored user reads in one statement
Reread       users a write reads again in its own transaction, for the profile cache
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


#: What one user's reread reads: the event windows ``(name, within_days)`` and the user lists.
SnapshotShape = tuple[frozenset[tuple[str, int]], frozenset[str]]


@dataclass(frozen=True, slots=True)
class Reread:
    """Users a write reads again after its statements, inside its own transaction.

    What the profile cache needs to replace its copies of those users instead of dropping them
    (``segmentd.profiles``): each snapshot is read by the statement of a cache miss, so it is
    exactly what a miss would read just after the write.

    Attributes:
        shapes: per user, the event windows and user lists to read.
        on_commit: called as ``on_commit(snapshots, now)`` only when the write committed inline
            on SQLite, in the same step of the event loop as the commit (so calls are ordered
            as the commits); ``now`` is the instant of the write, which the windows were
            counted at. Never called on PostgreSQL, nor for work that ran in a thread.
    """

    shapes: Mapping[str, SnapshotShape]
    on_commit: Callable[[Mapping[str, UserSnapshot], datetime], object]
