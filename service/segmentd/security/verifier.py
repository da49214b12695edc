"""From a presented API key to what it may do, with a short cache in front of the store.

    identify(key) ──cache hit──> Identity | None
         └─miss─> hash ─> store.find(id) ─> valid, not revoked, hash matches? ─> cache ─> answer

Verdicts are cached for ``ttl`` seconds (``--auth-cache-seconds``), refusals as well as
grants, keyed by the key's hash so no key is kept in memory after its call. On PostgreSQL a
change to ``api_keys`` is notified to every replica (``store.notifications``), which then
forgets every verdict, so a revocation reaches them within a notification's delay; the TTL
stays the bound when notifications are interrupted: a key revoked on any replica, or straight
in the database, is refused everywhere at most ``ttl`` seconds later. A lookup that was
under way when the verdicts were forgotten is not cached (it may have read the key before
the change). Refusals are cached apart from grants, so that a flood of made-up keys, each
one read from the store once, can push out only other refusals, never a real key's grant;
a repeated bad key costs no query, and the reads under way at once are bounded
(``max_lookups``), so such a flood never holds the whole connection pool. New keys are
random, so no one presents one before it exists.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from segmentd.security.keys import hash_matches, key_hash, key_id_of
from segmentd.store.api_keys import ApiKeyRepository

#: Grants kept at most, and as many refusals; beyond it the least recently used is forgotten.
DEFAULT_CACHE_SIZE = 10_000
#: Store reads of keys under way at once, by default (the server passes half its pool).
DEFAULT_MAX_LOOKUPS = 5


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified key.

    Attributes:
        key_id: the key's public id (safe to log).
        scopes: the scopes it grants.
    """

    key_id: str
    scopes: frozenset[str]


class KeyVerifier:
    """Checks API keys against the store.

    Args:
        keys: the store's API keys.
        ttl: seconds a verdict is reused (0: every call reads the store).
        maxsize: grants kept at most, and refusals kept at most.
        max_lookups: reads of the store under way at once; the others wait their turn, so
            that callers showing new keys (a flood of made-up ones) never hold more of the
            connection pool than this.
        timer: clock for the cache (injectable for tests).
    """

    def __init__(
        self,
        keys: ApiKeyRepository,
        ttl: float,
        maxsize: int = DEFAULT_CACHE_SIZE,
        max_lookups: int = DEFAULT_MAX_LOOKUPS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._lookups = asyncio.Semaphore(max_lookups)
        self._grants: TTLCache[str, Identity] | None = TTLCache(maxsize, ttl, timer) if ttl > 0 else None
        self._refusals: TTLCache[str, None] | None = TTLCache(maxsize, ttl, timer) if ttl > 0 else None
        # Bumped by forget(): a lookup begun under an older generation may have read the key
        # before the change that made forget() run, so its verdict is answered, not kept.
        self._generation = 0

    async def identify(self, key: str) -> Identity | None:
        """Return who ``key`` is, or ``None`` when it is malformed, unknown or revoked.

        Raises:
            StoreUnavailable: the store does not answer (the key is neither good nor bad).
        """
        digest = key_hash(key)
        if self._grants is None or self._refusals is None:
            return await self._look_up(key)
        granted = self._grants.get(digest)
        if granted is not None:
            return granted
        if digest in self._refusals:
            return None
        generation = self._generation
        identity = await self._look_up(key)
        if generation == self._generation:
            if identity is None:
                self._refusals[digest] = None
            else:
                self._grants[digest] = identity
        return identity

    async def _look_up(self, key: str) -> Identity | None:
        key_id = key_id_of(key)
        if key_id is None:
            return None
        async with self._lookups:
            record = await self._keys.find(key_id)
        if record is None or record.revoke_time is not None or not hash_matches(key, record.key_hash):
            return None
        return Identity(record.key_id, record.scopes)

    def forget(self) -> None:
        """Drop every cached verdict (a key changed: revoked here, or notified from elsewhere)."""
        self._generation += 1
        if self._grants is not None and self._refusals is not None:
            self._grants.clear()
            self._refusals.clear()
