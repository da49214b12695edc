"""Segment statistics and comparisons as plain values (`Client.segment_stats`, `compare_segments`).

A figure that does not exist (the mean of no numbers, a share of a zero sum) is ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from segmentd_client.v1 import evaluation_pb2


@dataclass(frozen=True, slots=True)
class TraitStats:
    """Aggregates of one numeric trait over a set of members.

    Attributes:
        attribute: the trait's dotted path.
        count: members holding a number there (others are left out of every figure).
        sum: the sum of those numbers.
        mean: ``sum / count``.
        min: the smallest number.
        max: the largest number.
        p50: the nearest-rank median.
        p90: the nearest-rank 90th percentile.
        share_of_sum: ``sum`` over the sum of the trait over every profile.
    """

    attribute: str
    count: int
    sum: float
    mean: float | None
    min: float | None
    max: float | None
    p50: float | None
    p90: float | None
    share_of_sum: float | None


@dataclass(frozen=True, slots=True)
class GroupStats:
    """The members sharing one value of the ``group_by`` trait, or the rest (``rest``).

    Attributes:
        value: the value (``None``: missing, null, a list or an object; and for the rest).
        member_count: members in the group.
        traits: one entry per requested trait.
        rest: the group of every value beyond the first 50.
        value_count: distinct values in the group (1 unless ``rest``).
    """

    value: Any
    member_count: int
    traits: tuple[TraitStats, ...]
    rest: bool = False
    value_count: int = 1


@dataclass(frozen=True, slots=True)
class SegmentStats:
    """A segment's size, share of the population, trait aggregates and groups.

    Attributes:
        segment_name: the segment.
        segment_version: the version evaluated.
        member_count: members.
        population_count: profiles.
        share: ``member_count / population_count`` (0 without profiles).
        traits: one entry per requested trait.
        groups: with ``group_by``, by descending member count, the rest last.
    """

    segment_name: str
    segment_version: int
    member_count: int
    population_count: int
    share: float
    traits: tuple[TraitStats, ...]
    groups: tuple[GroupStats, ...] = ()

    def trait(self, attribute: str) -> TraitStats:
        """Return the statistics of ``attribute`` (KeyError if it was not requested)."""
        for trait in self.traits:
            if trait.attribute == attribute:
                return trait
        raise KeyError(attribute)


@dataclass(frozen=True, slots=True)
class SegmentOverlap:
    """How two segments overlap: ``both`` = |A ∩ B|, ``only_a`` = |A ∖ B|, ``only_b`` = |B ∖ A|."""

    a: str
    b: str
    both: int
    only_a: int
    only_b: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """Each segment's statistics (in request order) and every pair's overlap."""

    segments: tuple[SegmentStats, ...]
    overlaps: tuple[SegmentOverlap, ...]


def stats_request(
    segment_name: str, traits: Sequence[str], group_by: str
) -> evaluation_pb2.GetSegmentStatsRequest:
    """The request of `GetSegmentStats`."""
    return evaluation_pb2.GetSegmentStatsRequest(
        segment_name=segment_name, numeric_traits=list(traits), group_by=group_by
    )


def compare_request(
    segment_names: Sequence[str], traits: Sequence[str]
) -> evaluation_pb2.CompareSegmentsRequest:
    """The request of `CompareSegments`."""
    return evaluation_pb2.CompareSegmentsRequest(
        segment_names=list(segment_names), numeric_traits=list(traits)
    )


def stats_from_proto(message: evaluation_pb2.SegmentStats) -> SegmentStats:
    """Decode a `SegmentStats` message."""
    return SegmentStats(
        segment_name=message.segment_name,
        segment_version=message.segment_version,
        member_count=message.member_count,
        population_count=message.population_count,
        share=message.share,
        traits=tuple(_trait(trait) for trait in message.traits),
        groups=tuple(_group(group) for group in message.groups),
    )


def comparison_from_proto(message: evaluation_pb2.CompareSegmentsResponse) -> Comparison:
    """Decode a `CompareSegmentsResponse`."""
    return Comparison(
        segments=tuple(stats_from_proto(stats) for stats in message.segments),
        overlaps=tuple(SegmentOverlap(o.a, o.b, o.both, o.only_a, o.only_b) for o in message.overlaps),
    )


def _trait(message: evaluation_pb2.TraitStats) -> TraitStats:
    def optional(name: str) -> float | None:
        return getattr(message, name) if message.HasField(name) else None  # type: ignore[arg-type]

    return TraitStats(
        attribute=message.attribute,
        count=message.count,
        sum=message.sum,
        mean=optional("mean"),
        min=optional("min"),
        max=optional("max"),
        p50=optional("p50"),
        p90=optional("p90"),
        share_of_sum=optional("share_of_sum"),
    )


def _group(message: evaluation_pb2.GroupStats) -> GroupStats:
    value = json_format.MessageToDict(message.value) if message.HasField("value") else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # as the client gives integral numbers elsewhere
    return GroupStats(
        value=value,
        member_count=message.member_count,
        traits=tuple(_trait(trait) for trait in message.traits),
        rest=message.rest,
        value_count=message.value_count,
    )
