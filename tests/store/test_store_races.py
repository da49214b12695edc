"""Writes racing on one user: never a deadlock, never "database is locked" (issue 16, finding 6)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from segmentd.errors import UserNotFound
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event

_ROUNDS = 40


async def _record(profiles: ProfileRepository, user_id: str) -> bool:
    try:
        await profiles.record_events([Event(user_id, "login", datetime.now(UTC), 1)])
    except UserNotFound:
        return False
    return True


async def test_delete_profile_racing_record_events__one_of_them_wins_cleanly(sessions):
    # Given: a profile that one call deletes while others record its events, many times over
    profiles = ProfileRepository(sessions)
    for round_ in range(_ROUNDS):
        user_id = f"user-{round_}"
        await profiles.upsert(user_id, {"plan": "free"})
        await profiles.record_events([Event(user_id, "login", datetime.now(UTC), 1)])

        # When: the delete and the recordings run at once
        results = await asyncio.gather(
            _record(profiles, user_id), profiles.delete(user_id), _record(profiles, user_id)
        )

        # Then: nothing but UserNotFound ever failed (a deadlock would raise), and nothing is left
        assert results[1] is None
        with pytest.raises(UserNotFound):
            await profiles.get(user_id)


async def test_concurrent_upserts_and_event_batches__none_locked_out(sessions):
    # Given: many writers at once on few users
    profiles = ProfileRepository(sessions)
    users = [f"user-{i}" for i in range(5)]
    for user_id in users:
        await profiles.upsert(user_id, {"n": 0})

    # When: upserts and event batches interleave
    writes: list[Coroutine[Any, Any, object]] = [profiles.upsert(users[i % 5], {"n": i}) for i in range(30)]
    writes += [
        profiles.record_events([Event(users[i % 5], "login", datetime.now(UTC), 1)]) for i in range(30)
    ]
    await asyncio.gather(*writes)

    # Then: every write was acknowledged, and every event counted
    totals = 0
    for user_id in users:
        snapshot = await profiles.get_with_event_counts(user_id, [("login", 0)], datetime.now(UTC))
        totals += sum(snapshot.event_counts.values())
    assert totals == 30
