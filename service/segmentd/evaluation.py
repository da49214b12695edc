"""Verdicts: which segments a stored user, or a profile given inline, belongs to.

A stored user's profile and the event counts the catalogue needs are read in one database
round trip on a cache miss and none on a hit; the compiled catalogue does the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from segmentd.engine.context import EvaluationContext
from segmentd.engine.explain import Explanation, explain
from segmentd.engine.rules import JsonValue
from segmentd.errors import UserNotFound
from segmentd.population import PercentileThresholds
from segmentd.profiles import CachedUser, ProfileCache
from segmentd.segments import Catalogue, SegmentCatalog
from segmentd.store.checks import check_user_id
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Segment


def utc_now() -> datetime:
    """Return the current instant, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The segments a user belongs to, at one instant."""

    segments: list[str]
    evaluated_at: datetime


@dataclass(frozen=True, slots=True)
class ExplainedVerdict:
    """One segment's verdict for one user, node by node."""

    segment: Segment
    explanation: Explanation
    evaluated_at: datetime


class Evaluator:
    """Evaluates users and profiles against the segment catalogue.

    Args:
        catalog: the segments and their compiled predicates.
        profiles: the profile store.
        cache: cached profiles with their prefetched event counts.
        percentiles: cached percentile thresholds.
        clock: the current instant (injectable for tests).
    """

    def __init__(
        self,
        catalog: SegmentCatalog,
        profiles: ProfileRepository,
        cache: ProfileCache,
        percentiles: PercentileThresholds,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._catalog = catalog
        self._profiles = profiles
        self._cache = cache
        self._percentiles = percentiles
        self._clock = clock

    async def evaluate_user(self, user_id: str, names: Collection[str] = ()) -> Verdict:
        """Return the segments (all, or those in ``names``) stored user ``user_id`` is in."""
        check_user_id(user_id, "user_id")
        return await self._evaluate_checked_user(user_id, names)

    async def evaluate_profile(
        self, traits: Mapping[str, JsonValue], names: Collection[str] = (), user_id: str | None = None
    ) -> Verdict:
        """Return the segments a profile given inline is in; nothing is read or stored for it."""
        now = self._clock()
        catalogue = await self._catalog.catalogue()
        thresholds = await self._percentiles.thresholds(
            catalogue.compiled.required_percentiles(names or None)
        )
        context = EvaluationContext(traits, user_id or None, now, {}, thresholds)
        return Verdict(catalogue.compiled.evaluate(context, names or None), now)

    async def evaluate_users(
        self, user_ids: Sequence[str], names: Collection[str] = ()
    ) -> AsyncIterator[tuple[str, Verdict | None]]:
        """Yield ``(user_id, verdict)`` for each user in turn; ``None`` for an unknown user."""
        # Refuse a malformed id before streaming anything, naming its position.
        for index, user_id in enumerate(user_ids):
            check_user_id(user_id, f"user_ids[{index}]")
        for user_id in user_ids:
            try:
                yield user_id, await self._evaluate_checked_user(user_id, names)
            except UserNotFound:
                yield user_id, None

    async def explain_user(self, user_id: str, segment_name: str) -> ExplainedVerdict:
        """Explain, node by node, whether stored user ``user_id`` is in ``segment_name``."""
        check_user_id(user_id, "user_id")
        now = self._clock()
        catalogue = await self._catalog.catalogue()
        segment = catalogue.segment(segment_name)
        context = await self._user_context(user_id, catalogue, (segment_name,), now)
        return ExplainedVerdict(segment, explain(segment.rule, context, catalogue.rule_of), now)

    async def _evaluate_checked_user(self, user_id: str, names: Collection[str]) -> Verdict:
        now = self._clock()
        catalogue = await self._catalog.catalogue()
        context = await self._user_context(user_id, catalogue, names, now)
        return Verdict(catalogue.compiled.evaluate(context, names or None), now)

    async def _user_context(
        self, user_id: str, catalogue: Catalogue, names: Collection[str], now: datetime
    ) -> EvaluationContext:
        windows = catalogue.compiled.required_events(names or None)
        user = await self._cached_user(user_id, windows, now)
        thresholds = await self._percentiles.thresholds(
            catalogue.compiled.required_percentiles(names or None)
        )
        return EvaluationContext(user.profile.traits, user_id, now, user.event_counts, thresholds)

    async def _cached_user(
        self, user_id: str, windows: frozenset[tuple[str, int]], now: datetime
    ) -> CachedUser:
        cached = self._cache.get(user_id)
        if cached is not None and cached.day == now.date() and windows <= cached.windows:
            return cached
        generation = self._cache.generation
        profile, counts = await self._profiles.get_with_event_counts(user_id, windows, now)
        user = CachedUser(profile, counts, windows, now.date())
        self._cache.fill(user_id, user, generation)
        return user
