"""Plain Python values the client returns instead of protobuf messages.

Rules and traits are in their JSON form (the segment-definition format of
``proto/segmentd/v1/rules.proto``, field names as in the proto: ``within_days``,
``ignore_case``), with integral numbers as ``int``; times are timezone-aware ``datetime``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: How fresh the data behind a verdict must be: ``"strong"`` bypasses every cache.
Consistency = Literal["cached", "strong"]

#: What applying a segment definition did (or, in a dry run, would do).
ApplyAction = Literal["created", "updated", "unchanged"]

#: The keys of a segment definition; ``name`` and ``rule`` are required.
DEFINITION_KEYS = ("name", "description", "labels", "rule")


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment at one version.

    Attributes:
        name: the segment's slug.
        rule: the membership rule, in its JSON form.
        description: free text for people.
        labels: key/value labels.
        version: 1 on creation, incremented by every update.
        etag: changes with every version; ``UpdateSegment`` needs the current one.
        create_time: when the segment was created.
        update_time: when this version was written.
    """

    name: str
    rule: dict[str, Any]
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    version: int = 0
    etag: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None

    def definition(self) -> dict[str, Any]:
        """Return the segment in the segment-definition form (what ``apply`` reads)."""
        return {
            "name": self.name,
            "description": self.description,
            "labels": dict(self.labels),
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class Profile:
    """A user's stored profile.

    Attributes:
        user_id: the user's identifier.
        traits: the user's traits, a JSON object.
        create_time: when the profile was first stored.
        update_time: when it was last changed.
    """

    user_id: str
    traits: dict[str, Any]
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something a user did, ``count`` times, on the day of ``time`` (``None``: now).

    Attributes:
        user_id: the user who did it (a profile must exist).
        name: the event's name, as event conditions refer to it.
        count: how many times it happened.
        time: when it happened; the store keeps only its UTC day.
    """

    user_id: str
    name: str
    count: int = 1
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The segments a user or profile is in, and how fresh that answer is.

    Attributes:
        segments: the names of the segments matched, sorted.
        evaluated_at: the "now" the evaluation used.
        profile_read_at: when the profile was read from the store (``None`` for an
            evaluated profile, which is never stored).
        segments_read_at: when the segment definitions were last read or confirmed current.
    """

    segments: tuple[str, ...]
    evaluated_at: datetime | None = None
    profile_read_at: datetime | None = None
    segments_read_at: datetime | None = None

    def __contains__(self, segment_name: object) -> bool:
        return segment_name in self.segments


@dataclass(frozen=True, slots=True)
class ExplanationNode:
    """One node of an explained rule tree.

    Attributes:
        kind: the node's kind: ``all``, ``any``, ``none``, ``condition``, ``event``,
            ``segment`` or ``split``.
        rule: the node in its JSON form; a group comes without its children.
        matched: the node's verdict.
        detail: a sentence saying why, for people.
        attribute_present: for a condition, whether its attribute had a value.
        actual_value: the value the node looked at (a trait, an event count, a split
            bucket); ``None`` when there was none.
        children: a group's children, or the rule a segment reference stands for.
    """

    kind: str
    rule: dict[str, Any]
    matched: bool
    detail: str = ""
    attribute_present: bool = False
    actual_value: Any = None
    children: tuple[ExplanationNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a user is in a segment or not.

    Attributes:
        segment_name: the segment explained.
        segment_version: the version evaluated.
        matched: whether the user is in the segment.
        root: the explanation of the segment's rule.
        evaluated_at: the "now" the evaluation used.
        profile_read_at: when the profile was read from the store.
        segments_read_at: when the segment definitions were last read or confirmed current.
    """

    segment_name: str
    segment_version: int
    matched: bool
    root: ExplanationNode
    evaluated_at: datetime | None = None
    profile_read_at: datetime | None = None
    segments_read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MemberCount:
    """The number of members of a segment, at the version that was counted."""

    count: int
    segment_version: int


@dataclass(frozen=True, slots=True)
class MemberChunk:
    """A chunk of a member listing, and the token that resumes right after it.

    Attributes:
        user_ids: members' ids, in ascending order.
        next_page_token: resumes the listing after the last id; empty once complete.
    """

    user_ids: tuple[str, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """Why one profile of an import was refused.

    Attributes:
        index: the profile's 1-based position in the iterable given to ``import_profiles``.
        field: the invalid field, e.g. ``user_id`` or ``traits``.
        message: what is wrong, for people.
    """

    index: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import stored.

    Attributes:
        imported: the distinct user ids stored.
        skipped: the invalid profiles skipped (``skip_invalid``).
        problems: why profiles were skipped, in order (the first 1,000 or so).
    """

    imported: int
    skipped: int = 0
    problems: tuple[ImportProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying one segment definition did.

    Attributes:
        action: ``created``, ``updated`` or ``unchanged``.
        name: the segment's name.
        previous_version: the version before (``None`` when created).
        version: the version after (``None`` in a dry run that would create or update).
        dry_run: whether nothing was written.
    """

    action: ApplyAction
    name: str
    previous_version: int | None = None
    version: int | None = None
    dry_run: bool = False

    def __str__(self) -> str:
        """The kubectl-style line: ``created NAME``, ``updated NAME (v1 -> v2)``, ``unchanged NAME``."""
        if self.action != "updated":
            return f"{self.action} {self.name}"
        after = self.version if self.version is not None else (self.previous_version or 0) + 1
        return f"updated {self.name} (v{self.previous_version} -> v{after})"
