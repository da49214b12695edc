"""An OpenFeature hook that puts the user's segments into the evaluation context.

    flag evaluation ─> SegmentsHook.before(context with targeting_key = user id)
                    ─> EvaluateUser (or the hook's cache, for ttl_seconds)
                    ─> context attribute ``segments``: ["free-plan", "upgrade-candidates"]
                    ─> any provider's targeting: "segments contains upgrade-candidates"

Install with the extra: ``pip install 'segmentd-client[openfeature]'``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from openfeature.evaluation_context import EvaluationContext
from openfeature.hook import Hook, HookContext, HookHints

from segmentd_client.client import Client
from segmentd_client.errors import NotFound, SegmentdError

log = logging.getLogger(__name__)

DEFAULT_ATTRIBUTE: Final = "segments"


class SegmentsHook(Hook):
    """Adds the segments of the context's targeting key to the evaluation context.

    A user segmentd does not know, or a context without a targeting key, gets no segments
    (an empty list). When segmentd fails (unreachable, ...), the context is left as it
    was and the evaluation goes on: a flag must not fail because segments are unknown.

    Args:
        client: the segmentd client to call (the hook does not close it).
        ttl_seconds: how long a user's segments are reused (0: call on every evaluation).
        max_users: the most users whose segments are cached (least recently used go first).
        attribute: the name of the context attribute to set.
        segments: only these segments are evaluated (default: all).
        clock: seconds on a monotonic clock (``time.monotonic``).
    """

    def __init__(
        self,
        client: Client,
        *,
        ttl_seconds: float = 5.0,
        max_users: int = 10_000,
        attribute: str = DEFAULT_ATTRIBUTE,
        segments: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl, self._max_users, self._attribute = ttl_seconds, max_users, attribute
        self._segments, self._clock = segments, clock
        self._cache: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext | None:
        """Return a context holding the user's segments (``None`` when segmentd failed)."""
        user_id = hook_context.evaluation_context.targeting_key
        if not user_id:
            return EvaluationContext(attributes={self._attribute: []})
        segments = self._cached(user_id)
        if segments is None:
            try:
                segments = self._evaluate(user_id)
            except SegmentdError as exc:
                log.warning("segments of %r unknown, flag evaluated without them: %s", user_id, exc)
                return None
            self._remember(user_id, segments)
        return EvaluationContext(targeting_key=user_id, attributes={self._attribute: segments})

    def _evaluate(self, user_id: str) -> list[str]:
        try:
            return list(self._client.evaluate_user(user_id, self._segments).segments)
        except NotFound:
            return []

    def _cached(self, user_id: str) -> list[str] | None:
        with self._lock:
            entry = self._cache.get(user_id)
            if entry is None or self._clock() >= entry[0]:
                return None
            self._cache.move_to_end(user_id)
            return list(entry[1])

    def _remember(self, user_id: str, segments: list[str]) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._cache[user_id] = (self._clock() + self._ttl, segments)
            self._cache.move_to_end(user_id)
            while len(self._cache) > self._max_users:
                self._cache.popitem(last=False)
