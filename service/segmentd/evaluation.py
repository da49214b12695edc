"""Verdicts: which segments a stored user, or a profile given inline, belongs to.

A stored user's profile, the event counts and the user-list memberships the catalogue needs
are read in one database round trip on a cache miss and none on a hit; the compiled catalogue does the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from segmentd.engine.context import EvaluationContext
from segmentd.engine.expiry import verdict_valid_until
from segmentd.engine.explain import Explanation, explain
from segmentd.engine.rules import JsonValue
from segmentd.engine.times import datetime_to_us
from segmentd.errors import UserNotFound
from segmentd.population import PercentileThresholds
from segmentd.profiles import CachedUser, CachedVerdict, ProfileCache
from segmentd.segments import Catalogue, SegmentCatalog
from segmentd.store.checks import check_segment_name_given, check_segment_names_given, check_user_id
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Segment


def utc_now() -> datetime:
    """Return the current instant, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Freshness:
    """How fresh the data behind a verdict is.

    Attributes:
        profile_read_at: when the profile and event counts were read from the store.
        segments_read_at: when the segment definitions were last read, or confirmed current.
    """

    profile_read_at: datetime
    segments_read_at: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """The segments a user belongs to, at one instant.

    Attributes:
        segments: the names of the segments the user is in, sorted.
        evaluated_at: the "now" of the evaluation.
        freshness: for a stored user, when its data was read; ``None`` for a profile sent inline.
    """

    segments: list[str]
    evaluated_at: datetime
    freshness: Freshness | None = None


@dataclass(frozen=True, slots=True)
class ExplainedVerdict:
    """One segment's verdict for one user, node by node."""

    segment: Segment
    explanation: Explanation
    evaluated_at: datetime
    freshness: Freshness


class Evaluator:
    """Evaluates users and profiles against the segment catalogue.

    A stored user's profile comes from the cache unless ``strong`` is asked for, which reads
    the profile, its event counts and the catalogue version in one statement (and the
    catalogue too, only if that version shows it changed) and computes percentile thresholds
    afresh.

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

    async def evaluate_user(
        self, user_id: str, names: Collection[str] = (), *, strong: bool = False
    ) -> Verdict:
        """Return the segments (all, or those in ``names``) stored user ``user_id`` is in."""
        check_user_id(user_id, "user_id")
        check_segment_names_given(names, "segment_names")
        return await self._evaluate_checked_user(user_id, names, strong)

    async def evaluate_profile(
        self, traits: Mapping[str, JsonValue], names: Collection[str] = (), user_id: str | None = None
    ) -> Verdict:
        """Return the segments a profile given inline is in; nothing is read or stored for it."""
        check_segment_names_given(names, "segment_names")
        now = self._clock()
        catalogue = await self._catalog.catalogue()
        thresholds = await self._percentiles.thresholds(catalogue.required_percentiles(names))
        context = EvaluationContext(traits, user_id or None, now, {}, thresholds)
        return Verdict(catalogue.compiled.evaluate(context, names or None), now)

    async def evaluate_users(
        self, user_ids: Sequence[str], names: Collection[str] = (), *, strong: bool = False
    ) -> AsyncIterator[tuple[str, Verdict | None]]:
        """Yield ``(user_id, verdict)`` for each user in turn; ``None`` for an unknown user."""
        # Refuse a malformed id before streaming anything, naming its position.
        for index, user_id in enumerate(user_ids):
            check_user_id(user_id, f"user_ids[{index}]")
        check_segment_names_given(names, "segment_names")
        for user_id in user_ids:
            try:
                yield user_id, await self._evaluate_checked_user(user_id, names, strong)
            except UserNotFound:
                yield user_id, None

    async def explain_user(
        self, user_id: str, segment_name: str, *, strong: bool = False
    ) -> ExplainedVerdict:
        """Explain, node by node, whether stored user ``user_id`` is in ``segment_name``."""
        check_user_id(user_id, "user_id")
        check_segment_name_given(segment_name, "segment_name")
        now = self._clock()
        catalogue, context, freshness = await self._user_context(user_id, (segment_name,), now, strong)
        segment = catalogue.segment(segment_name)
        return ExplainedVerdict(segment, explain(segment.rule, context, catalogue.rule_of), now, freshness)

    async def _evaluate_checked_user(self, user_id: str, names: Collection[str], strong: bool) -> Verdict:
        now = self._clock()
        if names or strong:
            catalogue, context, freshness = await self._user_context(user_id, names, now, strong)
            return Verdict(catalogue.compiled.evaluate(context, names or None), now, freshness)
        return await self._evaluate_every_segment(user_id, now)

    async def _evaluate_every_segment(self, user_id: str, now: datetime) -> Verdict:
        """The hot path: a cached profile's verdict is reused while nothing can have changed it.

        Nothing can while the profile entry stands (a write replaces it), the catalogue is the
        same object, no percentile threshold is involved, and the clock has not passed the
        first instant at which a time-relative condition flips.
        """
        catalogue = await self._catalog.catalogue()
        user = await self._cached_user(user_id, catalogue.events, catalogue.lists, now)
        freshness = Freshness(user.read_at, self._catalog.confirmed_at)
        now_us = datetime_to_us(now)
        kept = user.verdict
        if kept is not None and kept.holds(catalogue, now_us):
            return Verdict(kept.segments, now, freshness)
        thresholds = await self._percentiles.thresholds(catalogue.percentiles)
        traits = user.profile.traits
        segments = catalogue.compiled.evaluate(
            EvaluationContext(traits, user_id, now, user.event_counts, thresholds, user.lists)
        )
        if not catalogue.percentiles:
            valid_until = verdict_valid_until(catalogue.relative_times, traits, now_us)
            user.verdict = CachedVerdict(catalogue, now_us, valid_until, segments)
        return Verdict(segments, now, freshness)

    async def _user_context(
        self, user_id: str, names: Collection[str], now: datetime, strong: bool
    ) -> tuple[Catalogue, EvaluationContext, Freshness]:
        catalogue = await self._catalog.catalogue()
        if strong:
            catalogue, user = await self._read_user(user_id, catalogue, names, now)
        else:
            user = await self._cached_user(
                user_id, catalogue.required_events(names), catalogue.required_lists(names), now
            )
        thresholds = await self._percentiles.thresholds(catalogue.required_percentiles(names), fresh=strong)
        context = EvaluationContext(
            user.profile.traits, user_id, now, user.event_counts, thresholds, user.lists
        )
        return catalogue, context, Freshness(user.read_at, self._catalog.confirmed_at)

    async def _cached_user(
        self, user_id: str, windows: frozenset[tuple[str, int]], lists: frozenset[str], now: datetime
    ) -> CachedUser:
        cached = self._cache.get(user_id)
        # Event windows move at midnight UTC; without windows, a profile does not age.
        if (
            cached is not None
            and windows <= cached.windows
            and lists <= cached.checked_lists
            and (not windows or cached.day == now.date())
        ):
            return cached
        generation = self._cache.generation
        user = await self._fetch_user(user_id, windows, lists, now)
        self._cache.fill(user_id, user, generation)
        return user

    async def _read_user(
        self, user_id: str, catalogue: Catalogue, names: Collection[str], now: datetime
    ) -> tuple[Catalogue, CachedUser]:
        """Read the user past every cache, with a catalogue at least as new as that read."""
        generation = self._cache.generation
        if any(name not in catalogue.segments for name in names):
            # Perhaps a segment written elsewhere since this catalogue was read: STRONG asks
            # the store before answering NOT_FOUND (raised below if it is still unknown).
            catalogue = await self._catalog.current()
        while True:
            windows, lists = catalogue.required_events(names), catalogue.required_lists(names)
            user = await self._fetch_user(user_id, windows, lists, now)
            if user.catalogue_version > catalogue.version:
                catalogue = await self._catalog.refresh(min_version=user.catalogue_version)
            if catalogue.required_events(names) <= windows and catalogue.required_lists(names) <= lists:
                # Read past the cache, but as current as any fill: the cache may keep it.
                self._cache.fill(user_id, user, generation)
                return catalogue, user

    async def _fetch_user(
        self, user_id: str, windows: frozenset[tuple[str, int]], lists: frozenset[str], now: datetime
    ) -> CachedUser:
        read_at = self._clock()
        snapshot = await self._profiles.get_with_event_counts(user_id, windows, now, lists)
        self._catalog.observe_version(snapshot.catalogue_version, read_at)
        return CachedUser.from_snapshot(snapshot, windows, lists, now, read_at)
