"""The key verifier's cache against a real store: what it keeps, and what it must not."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.security.keys import new_key
from segmentd.security.verifier import KeyVerifier
from segmentd.store.api_keys import ApiKeyRecord, ApiKeyRepository
from tests.security.conftest import issue_key, revoke_key


class CountedKeys(ApiKeyRepository):
    """The store's keys, counting reads; ``pause`` holds each read's answer until it is set."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.reads = 0
        self.read_done = asyncio.Event()
        self.pause: asyncio.Event | None = None

    async def find(self, key_id: str) -> ApiKeyRecord | None:
        self.reads += 1
        record = await super().find(key_id)
        self.read_done.set()
        if self.pause is not None:
            await self.pause.wait()
        return record


async def test_identify__verdicts_forgotten_during_a_lookup__that_lookup_not_kept(
    store_url: str, sessions: async_sessionmaker[AsyncSession]
):
    # Given: a lookup of a valid key that has read the key's row, its answer not yet back
    key_id, key = await issue_key(store_url, "read")
    keys = CountedKeys(sessions)
    keys.pause = asyncio.Event()
    verifier = KeyVerifier(keys, ttl=3600)
    lookup = asyncio.create_task(verifier.identify(key))
    await keys.read_done.wait()
    # When: the key is revoked and the change is notified (every verdict forgotten) meanwhile
    await revoke_key(store_url, key_id)
    verifier.forget()
    keys.pause.set()
    in_flight = await lookup
    keys.pause = None
    # Then: that lookup answers what it read, but the next call reads the store again
    assert in_flight is not None and in_flight.key_id == key_id
    assert await verifier.identify(key) is None
    assert keys.reads == 2


async def test_identify__flood_of_made_up_keys__a_real_grant_stays_cached(
    store_url: str, sessions: async_sessionmaker[AsyncSession]
):
    # Given: a small cache holding a real key's grant
    _, key = await issue_key(store_url, "evaluate")
    keys = CountedKeys(sessions)
    verifier = KeyVerifier(keys, ttl=3600, maxsize=4)
    assert await verifier.identify(key) is not None
    # When: ten times as many made-up keys as the cache holds, one of them repeated
    made_up = [new_key()[1] for _ in range(40)]
    assert all([await verifier.identify(fake) is None for fake in made_up])
    reads = keys.reads
    assert await verifier.identify(made_up[-1]) is None
    # Then: the real key is still answered from the cache, as is the latest refusal
    assert await verifier.identify(key) is not None
    assert keys.reads == reads == 41


async def test_identify__many_new_keys_at_once__at_most_max_lookups_read_the_store_together(
    sessions: async_sessionmaker[AsyncSession],
):
    # Given: reads of the store that do not answer until released
    keys = CountedKeys(sessions)
    keys.pause = asyncio.Event()
    verifier = KeyVerifier(keys, ttl=3600, max_lookups=2)
    # When: five callers show five new keys at once
    lookups = [asyncio.create_task(verifier.identify(new_key()[1])) for _ in range(5)]
    for _ in range(50):
        await asyncio.sleep(0.01)
    in_flight = keys.reads
    keys.pause.set()
    verdicts = await asyncio.gather(*lookups)
    # Then: two read the store while the others waited their turn; every one was answered
    assert in_flight == 2
    assert verdicts == [None] * 5 and keys.reads == 5
