"""Segment membership computed by the database: streamed member lists and counts.

The segment's rule tree is compiled to one SQL boolean expression (``segmentd.sqlgen``) and
the database does the filtering; the server holds at most one chunk of user ids at a time,
whatever the segment's size. Listings are ordered by user id and resume with a signed page
token (keyset pagination: resuming costs the same on page 1,000 as on page 1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement

from segmentd.errors import InvalidArgument
from segmentd.page_tokens import MemberCursor, decode_page_token, encode_page_token
from segmentd.population import PercentileThresholds
from segmentd.segments import Catalogue, SegmentCatalog
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.store.checks import check_segment_name_given
from segmentd.store.members import MemberQueries
from segmentd.store.records import Segment


@dataclass(frozen=True, slots=True)
class MemberChunk:
    """Consecutive members, and the token that resumes right after the last of them."""

    user_ids: list[str]
    next_page_token: str


class Membership:
    """Lists and counts the members of segments.

    Args:
        catalog: the segment definitions.
        queries: runs membership queries against the store.
        percentiles: cached percentile thresholds (the same ones verdicts use).
        page_token_secret: key signing page tokens.
        max_page_size: the largest ``page_size`` accepted.
        clock: the current instant (relative time conditions are measured from it).
    """

    def __init__(
        self,
        catalog: SegmentCatalog,
        queries: MemberQueries,
        percentiles: PercentileThresholds,
        page_token_secret: bytes,
        max_page_size: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._queries = queries
        self._percentiles = percentiles
        self._secret = page_token_secret
        self._max_page_size = max_page_size
        self._clock = clock

    async def count(self, segment_name: str) -> tuple[int, int]:
        """Return ``(member count, segment version)``."""
        check_segment_name_given(segment_name, "segment_name")
        catalogue = await self._catalog.catalogue()
        segment = catalogue.segment(segment_name)
        condition = await self._condition(segment, catalogue)
        return await self._queries.count(condition), segment.version

    async def conditions(self, segment_names: Sequence[str]) -> list[tuple[Segment, ColumnElement[bool]]]:
        """Return each named segment and its SQL condition, all from one read of the catalogue.

        Raises:
            SegmentNotFound: a name is not a current segment.
        """
        catalogue = await self._catalog.catalogue()
        segments = [catalogue.segment(name) for name in segment_names]
        return [(segment, await self._condition(segment, catalogue)) for segment in segments]

    async def list_members(
        self, segment_name: str, page_size: int, page_token: str
    ) -> AsyncIterator[MemberChunk]:
        """Yield the members of ``segment_name`` in chunks, at most ``page_size`` (0: all)."""
        check_segment_name_given(segment_name, "segment_name")
        if not 0 <= page_size <= self._max_page_size:
            raise InvalidArgument("page_size", f"must be between 0 and {self._max_page_size}")
        catalogue = await self._catalog.catalogue()
        segment = catalogue.segment(segment_name)
        after = self._resume_after(segment, page_token)
        condition = await self._condition(segment, catalogue)
        held: list[str] = []
        sent = 0
        async for chunk in self._queries.stream(condition, after_user_id=after, limit=page_size or None):
            # Hold one chunk back: only the last message may say the listing is complete.
            if held:
                yield self._chunk(segment, held)
            held, sent = chunk, sent + len(chunk)
        complete = not held or not page_size or sent < page_size
        if not complete:
            complete = not await self._queries.exists_after(condition, held[-1])
        yield MemberChunk(held, "") if complete else self._chunk(segment, held)

    def _chunk(self, segment: Segment, user_ids: list[str]) -> MemberChunk:
        cursor = MemberCursor(segment.name, segment.version, user_ids[-1])
        return MemberChunk(user_ids, encode_page_token(cursor, self._secret))

    def _resume_after(self, segment: Segment, page_token: str) -> str:
        if not page_token:
            return ""
        cursor = decode_page_token(page_token, self._secret)
        if cursor.segment != segment.name:
            raise InvalidArgument(
                "page_token", f"belongs to segment {cursor.segment!r}, not {segment.name!r}"
            )
        if cursor.version != segment.version:
            raise InvalidArgument(
                "page_token",
                f"was issued for version {cursor.version} of {segment.name!r}, which is now at version "
                f"{segment.version}; start the listing again",
            )
        return cursor.after_user_id

    async def _condition(self, segment: Segment, catalogue: Catalogue) -> ColumnElement[bool]:
        wanted = catalogue.compiled.required_percentiles([segment.name])
        return compile_rule_sql(
            segment.rule,
            dialect=self._queries.dialect,
            profiles=self._queries.profiles,
            events=self._queries.events,
            now=self._clock(),
            percentile_thresholds=await self._percentiles.thresholds(wanted),
            resolve_rule=catalogue.rule_of,
            list_members=self._queries.list_members,
        )
