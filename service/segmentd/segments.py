"""Segment definitions: writes through the store, reads of the compiled catalogue.

The *catalogue* is every current segment compiled once into Python predicates. It is
rebuilt lazily: a write through this process drops it before the write is acknowledged
(read-your-writes), and a TTL bounds how long a change made through another replica can
go unseen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from segmentd.engine.compiler import CompiledSegments
from segmentd.engine.rules import Rule
from segmentd.errors import SegmentNotFound
from segmentd.store.records import Segment, SegmentPage
from segmentd.store.segments import SegmentRepository


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The current segments and their compiled predicates, as of one read of the store."""

    segments: Mapping[str, Segment]
    compiled: CompiledSegments

    def rule_of(self, name: str) -> Rule:
        """Return the current rule of segment ``name``."""
        segment = self.segments.get(name)
        if segment is None:
            raise SegmentNotFound(f"segment {name!r} does not exist")
        return segment.rule

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
        ttl: seconds a compiled catalogue is trusted without re-reading the store.
        timer: clock for the TTL (injectable for tests).
    """

    def __init__(
        self, repository: SegmentRepository, ttl: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._repository = repository
        self._ttl = ttl
        self._timer = timer
        self._catalogue: Catalogue | None = None
        self._loaded_at = 0.0
        self._generation = 0
        self._reload = asyncio.Lock()

    async def create(self, name: str, description: str, rule: Rule, labels: Mapping[str, str]) -> Segment:
        """Store a new segment (version 1)."""
        try:
            return await self._repository.create(name, description, rule, dict(labels))
        finally:
            self.invalidate()

    async def get(self, name: str, version: int = 0) -> Segment:
        """Return segment ``name`` at ``version`` (0: the current version)."""
        return await self._repository.get(name, version or None)

    async def list(self, page_size: int, page_token: str, labels: Mapping[str, str]) -> SegmentPage:
        """Return one page of segments, ordered by name, carrying all ``labels``."""
        return await self._repository.list(page_size, page_token, labels)

    async def update(
        self,
        name: str,
        *,
        etag: str,
        description: str | None = None,
        rule: Rule | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Segment:
        """Write a new version of segment ``name``; ``etag`` must be the current one."""
        try:
            return await self._repository.update(
                name,
                etag=etag,
                description=description,
                rule=rule,
                labels=None if labels is None else dict(labels),
            )
        finally:
            self.invalidate()

    async def delete(self, name: str, etag: str = "") -> None:
        """Delete segment ``name`` (its history stays readable)."""
        try:
            await self._repository.delete(name, etag)
        finally:
            self.invalidate()

    def invalidate(self) -> None:
        """Forget the compiled catalogue; the next read rebuilds it from the store."""
        self._generation += 1
        self._catalogue = None

    async def catalogue(self) -> Catalogue:
        """Return the compiled catalogue, rebuilding it when stale."""
        catalogue = self._fresh_catalogue()
        if catalogue is not None:
            return catalogue
        async with self._reload:
            # Another caller may have rebuilt it while this one waited for the lock.
            catalogue = self._fresh_catalogue()
            if catalogue is not None:
                return catalogue
            generation = self._generation
            segments = await self._repository.current_rules()
            catalogue = Catalogue(segments, CompiledSegments({n: s.rule for n, s in segments.items()}))
            if generation == self._generation:
                self._catalogue, self._loaded_at = catalogue, self._timer()
            return catalogue

    def _fresh_catalogue(self) -> Catalogue | None:
        if self._catalogue is not None and self._timer() - self._loaded_at < self._ttl:
            return self._catalogue
        return None
