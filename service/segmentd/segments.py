"""Segment definitions: writes through the store, reads of the compiled catalogue.

The *catalogue* is every current segment compiled once into Python predicates, tagged with
the store's catalogue version (a counter a trigger bumps on every change to a segment, in the
same transaction). It is rebuilt only when that version moved, and then incrementally: only
the segments whose etag changed are read and recompiled.

    write through this process ──> invalidate() ──> the next call refreshes   (read-your-writes)
    NOTIFY from another replica ──┐
    version seen by a profile read ┴> observe_version(v) ──> stale if v > catalogue.version
    every check_interval seconds ───> a background version read (safety net; never blocks)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from segmentd.engine.compiler import CompiledSegments
from segmentd.engine.expiry import RelativeTime, relative_times
from segmentd.engine.rules import Rule
from segmentd.errors import SegmentNotFound, StoreUnavailable
from segmentd.store.checks import check_segment_name_given
from segmentd.store.deadlines import detached
from segmentd.store.records import Segment, SegmentPage
from segmentd.store.segment_writes import SegmentWrite
from segmentd.store.segments import CatalogueChanges, SegmentRepository

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The current segments and their compiled predicates, as of one read of the store.

    Attributes:
        segments: the current version of every segment, by name.
        compiled: their compiled predicates.
        version: the store's catalogue version this was built from.
        events: the event windows of all segments (what a call testing every segment reads).
        percentiles: the percentile thresholds of all segments, likewise.
        lists: the user lists all segments test (``in_list``), likewise.
        relative_times: the time-relative conditions of all segments, which bound how long
            a verdict of every segment holds (``segmentd.engine.expiry``).
    """

    segments: Mapping[str, Segment]
    compiled: CompiledSegments
    version: int
    events: frozenset[tuple[str, int]] = field(init=False)
    percentiles: frozenset[tuple[str, float]] = field(init=False)
    lists: frozenset[str] = field(init=False)
    relative_times: frozenset[RelativeTime] = field(init=False)

    def __post_init__(self) -> None:
        """Derive the inputs of a call that tests every segment, once per catalogue."""
        object.__setattr__(self, "events", self.compiled.required_events())
        object.__setattr__(self, "percentiles", self.compiled.required_percentiles())
        object.__setattr__(self, "lists", self.compiled.required_lists())
        object.__setattr__(self, "relative_times", relative_times(s.rule for s in self.segments.values()))

    def required_events(self, names: Collection[str]) -> frozenset[tuple[str, int]]:
        """The event windows the segments ``names`` (empty: all) read, references included."""
        return self.compiled.required_events(names) if names else self.events

    def required_percentiles(self, names: Collection[str]) -> frozenset[tuple[str, float]]:
        """The percentile thresholds the segments ``names`` (empty: all) read."""
        return self.compiled.required_percentiles(names) if names else self.percentiles

    def required_lists(self, names: Collection[str]) -> frozenset[str]:
        """The user lists the segments ``names`` (empty: all) test, references included."""
        return self.compiled.required_lists(names) if names else self.lists

    def rule_of(self, name: str) -> Rule:
        """Return the current rule of segment ``name``."""
        return self.segment(name).rule

    def segment(self, name: str) -> Segment:
        """Return the current version of segment ``name``."""
        segment = self.segments.get(name)
        if segment is None:
            raise SegmentNotFound(f"segment {name!r} does not exist")
        return segment


class SegmentCatalog:
    """Create, read, update and delete segments; hand out the compiled catalogue.

    Args:
        repository: where segments are stored.
        check_interval: seconds between background reads of the store's catalogue version,
            the safety net should a change notification be lost (``0``: check on every call).
        timer: monotonic clock for the interval (injectable for tests).
        clock: wall clock for ``confirmed_at`` (injectable for tests).
    """

    def __init__(
        self,
        repository: SegmentRepository,
        check_interval: float,
        timer: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._repository = repository
        self._check_interval = check_interval
        self._timer = timer
        self._clock = clock
        self._catalogue: Catalogue | None = None
        # Bumped by every invalidation; the catalogue is current when it was built at the latest.
        self._generation = 0
        self._built_generation = -1
        self._checked_at = -math.inf
        self._confirmed_at = datetime.min.replace(tzinfo=UTC)
        self._refreshing = asyncio.Lock()
        self._check: asyncio.Task[None] | None = None

    async def create(
        self,
        name: str,
        description: str,
        rule: Rule,
        labels: Mapping[str, str],
        *,
        validate_only: bool = False,
    ) -> Segment:
        """Store a new segment (version 1); with ``validate_only``, only check it."""
        try:
            return await self._repository.create(
                name, description, rule, dict(labels), validate_only=validate_only
            )
        finally:
            if not validate_only:
                self.invalidate()

    async def get(self, name: str, version: int = 0) -> Segment:
        """Return segment ``name`` at ``version`` (0: the current version)."""
        check_segment_name_given(name, "name")
        return await self._repository.get(name, version or None)

    async def list(self, page_size: int, page_token: str, labels: Mapping[str, str]) -> SegmentPage:
        """Return one page of segments, ordered by name, carrying all ``labels``."""
        return await self._repository.list(page_size, page_token, labels)

    async def write(self, write: SegmentWrite, *, validate_only: bool = False) -> Segment:
        """Update a segment, or create it when missing and ``write.allow_missing``."""
        try:
            return await self._repository.write(write, validate_only=validate_only)
        finally:
            if not validate_only:
                self.invalidate()

    async def write_many(
        self, writes: Sequence[SegmentWrite], *, validate_only: bool = False
    ) -> tuple[Segment, ...]:
        """Apply ``writes`` in order, all or none (``SegmentRepository.write_many``)."""
        try:
            return await self._repository.write_many(writes, validate_only=validate_only)
        finally:
            if not validate_only:
                self.invalidate()

    async def delete(self, name: str, etag: str = "") -> None:
        """Delete segment ``name`` (its history stays readable)."""
        check_segment_name_given(name, "name")
        try:
            await self._repository.delete(name, etag)
        finally:
            self.invalidate()

    @property
    def confirmed_at(self) -> datetime:
        """When the catalogue handed out was last read, or confirmed current, from the store."""
        return self._confirmed_at

    def invalidate(self) -> None:
        """Mark the catalogue stale: the next call reads what changed before answering."""
        self._generation += 1

    def observe_version(self, version: int, read_at: datetime) -> None:
        """Take note of the store's catalogue version, as read at ``read_at``.

        A newer version than the catalogue's makes it stale; the same one confirms it.
        """
        catalogue = self._catalogue
        if catalogue is None or version > catalogue.version:
            self.invalidate()
        elif version == catalogue.version and read_at > self._confirmed_at:
            self._confirmed_at = read_at

    async def catalogue(self) -> Catalogue:
        """Return the compiled catalogue: cached, unless something is known to have changed."""
        catalogue = self._catalogue
        if catalogue is None or self._built_generation != self._generation:
            return await self.refresh()
        if self._check is None and self._timer() - self._checked_at >= self._check_interval:
            self._check = detached(self._check_version())
        return catalogue

    async def current(self) -> Catalogue:
        """Return the catalogue as the store has it now: one read of its version, a refresh if it moved.

        Raises:
            StoreUnavailable: the store does not answer.
        """
        read_at = self._clock()
        version = await self._repository.catalogue_version()
        self.observe_version(version, read_at)
        return await self.refresh(min_version=version)

    async def refresh(self, min_version: int = 0) -> Catalogue:
        """Return a catalogue built after every invalidation so far, of ``min_version`` or later."""
        wanted_generation = self._generation
        async with self._refreshing:
            catalogue = self._catalogue
            if (
                catalogue is not None
                and self._built_generation >= wanted_generation
                and catalogue.version >= min_version
            ):
                return catalogue  # another caller refreshed it while this one waited
            generation, read_at = self._generation, self._clock()
            changes = await self._repository.catalogue_changes(
                {} if catalogue is None else {n: s.etag for n, s in catalogue.segments.items()}
            )
            catalogue = _apply_changes(catalogue, changes)
            self._catalogue, self._built_generation = catalogue, generation
            self._checked_at, self._confirmed_at = self._timer(), read_at
            return catalogue

    async def _check_version(self) -> None:
        """The safety net: read the catalogue version, off the callers' path."""
        try:
            read_at = self._clock()
            self.observe_version(await self._repository.catalogue_version(), read_at)
        except StoreUnavailable as error:
            log.debug("catalogue version check failed: %s", error)
        except Exception:  # a background task has nobody to raise to
            log.exception("catalogue version check failed")
        finally:
            # Paced even when failing: an unreachable store is not asked on every call.
            self._checked_at = self._timer()
            self._check = None

    async def close(self) -> None:
        """Cancel a version check in flight (at shutdown)."""
        if self._check is not None:
            self._check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._check


def _apply_changes(catalogue: Catalogue | None, changes: CatalogueChanges) -> Catalogue:
    """Return ``catalogue`` with ``changes`` applied, recompiling only if a segment changed."""
    if catalogue is not None and not changes.changed and not changes.removed:
        return Catalogue(catalogue.segments, catalogue.compiled, changes.version)
    segments = {} if catalogue is None else dict(catalogue.segments)
    for name in changes.removed:
        del segments[name]
    segments.update(changes.changed)
    # Only the changed segments are regenerated; the others' code is reused.
    compiled = CompiledSegments(
        {n: s.rule for n, s in segments.items()}, previous=None if catalogue is None else catalogue.compiled
    )
    return Catalogue(segments, compiled, changes.version)
