"""Segment statistics and comparisons: request checks, then one statement in the database.

    SegmentStatistics.stats(name, traits, group_by)   -> NamedFigures (with groups if asked)
    SegmentStatistics.compare(names, traits)          -> NamedFigures per segment, NamedOverlaps

A requested numeric trait whose value is missing or not a number for some members is not an
error: those members are left out of its aggregates (``count`` says how many count), as the
percentile operators leave them out of the population they rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from segmentd.engine.limits import DEFAULT_LIMITS
from segmentd.engine.traits import split_path
from segmentd.errors import InvalidArgument
from segmentd.membership import Membership
from segmentd.store.checks import check_segment_name_given, check_segment_names_given, is_addressable_key
from segmentd.store.stats import SegmentFigures, StatsQueries

#: The most numeric traits one call may aggregate.
MAX_TRAITS: Final = 20
#: How many segments ``compare`` takes.
MIN_COMPARED, MAX_COMPARED = 2, 10
# The rules' own bound: a trait a rule cannot name is not one to aggregate either.
_MAX_ATTRIBUTE_LENGTH: Final = DEFAULT_LIMITS.max_attribute_length


@dataclass(frozen=True, slots=True)
class NamedFigures:
    """A segment's figures, with the segment's name and the version evaluated."""

    name: str
    version: int
    figures: SegmentFigures


@dataclass(frozen=True, slots=True)
class NamedOverlap:
    """|A ∩ B|, |A ∖ B| and |B ∖ A| of segments ``a`` and ``b``."""

    a: str
    b: str
    both: int
    only_a: int
    only_b: int


class SegmentStatistics:
    """Describes and compares segments with aggregates computed by the database.

    Args:
        membership: turns segments into SQL conditions (the same ones member listings use).
        queries: runs the statistics statement.
    """

    def __init__(self, membership: Membership, queries: StatsQueries) -> None:
        self._membership = membership
        self._queries = queries

    async def stats(self, segment_name: str, traits: Sequence[str], group_by: str) -> NamedFigures:
        """Return one segment's statistics, per value of ``group_by`` too when it is set.

        Raises:
            InvalidArgument: an empty name, or a malformed or repeated trait path.
            SegmentNotFound: no segment has that name.
        """
        check_segment_name_given(segment_name, "segment_name")
        _check_traits(traits)
        if group_by:
            _check_attribute(group_by, "group_by")
        [(segment, condition)] = await self._membership.conditions([segment_name])
        if group_by:
            figures = await self._queries.grouped(condition, traits, split_path(group_by))
        else:
            figures = (await self._queries.compare([condition], traits))[0][0]
        return NamedFigures(segment.name, segment.version, figures)

    async def compare(
        self, segment_names: Sequence[str], traits: Sequence[str]
    ) -> tuple[list[NamedFigures], list[NamedOverlap]]:
        """Return each segment's statistics and every pair's overlap, from one scan.

        Raises:
            InvalidArgument: fewer than 2 or more than 10 names, an empty or repeated name,
                or a malformed or repeated trait path.
            SegmentNotFound: a name is not a segment.
        """
        if not MIN_COMPARED <= len(segment_names) <= MAX_COMPARED:
            raise InvalidArgument(
                "segment_names", f"name {MIN_COMPARED} to {MAX_COMPARED} segments, not {len(segment_names)}"
            )
        check_segment_names_given(segment_names, "segment_names")
        _check_unique(segment_names, "segment_names")
        _check_traits(traits)
        pairs = await self._membership.conditions(segment_names)
        figures, overlaps = await self._queries.compare([condition for _, condition in pairs], traits)
        named = [NamedFigures(s.name, s.version, f) for (s, _), f in zip(pairs, figures, strict=True)]
        return named, [
            NamedOverlap(named[o.a].name, named[o.b].name, o.both, o.only_a, o.only_b) for o in overlaps
        ]


def _check_traits(traits: Sequence[str]) -> None:
    if len(traits) > MAX_TRAITS:
        raise InvalidArgument("numeric_traits", f"at most {MAX_TRAITS} traits per call, not {len(traits)}")
    for index, attribute in enumerate(traits):
        _check_attribute(attribute, f"numeric_traits[{index}]")
    _check_unique(traits, "numeric_traits")


def _check_unique(values: Sequence[str], field: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise InvalidArgument(f"{field}[{index}]", f"{value!r} is named twice")
        seen.add(value)


def _check_attribute(attribute: str, field: str) -> None:
    """Refuse paths no stored trait can have, with the rules' own limits on attribute paths."""
    if not attribute:
        raise InvalidArgument(field, "an attribute path is required")
    if len(attribute) > _MAX_ATTRIBUTE_LENGTH:
        raise InvalidArgument(field, f"an attribute path has at most {_MAX_ATTRIBUTE_LENGTH} characters")
    steps = split_path(attribute)
    if "" in steps:
        raise InvalidArgument(field, f"empty step in attribute path {attribute!r}")
    if not all(is_addressable_key(step) for step in steps):
        raise InvalidArgument(field, f"attribute path {attribute!r} has a step no stored trait can have")
