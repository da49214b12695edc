"""The store's API keys, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.store.api_keys import ApiKeyNotFound, ApiKeyRecord, ApiKeyRepository

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _record(key_id: str, *scopes: str, created: datetime = T0) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, "ab" * 32, frozenset(scopes), f"for {key_id}", created)


async def test_create_then_find__key__read_back_as_written(sessions: async_sessionmaker[AsyncSession]):
    keys = ApiKeyRepository(sessions)
    await keys.create(_record("000000000001", "read", "evaluate"))
    assert await keys.find("000000000001") == _record("000000000001", "read", "evaluate")
    assert await keys.find("000000000002") is None


async def test_list__keys__oldest_first_revoked_included(sessions: async_sessionmaker[AsyncSession]):
    keys = ApiKeyRepository(sessions)
    await keys.create(_record("00000000000b", "admin", created=T0 + timedelta(seconds=1)))
    await keys.create(_record("00000000000a", "read"))
    await keys.revoke("00000000000a", T0 + timedelta(minutes=1))
    listed = await keys.list()
    assert [record.key_id for record in listed] == ["00000000000a", "00000000000b"]
    assert listed[0].revoke_time == T0 + timedelta(minutes=1)
    assert listed[1].revoke_time is None


async def test_revoke__twice__first_revocation_time_kept(sessions: async_sessionmaker[AsyncSession]):
    keys = ApiKeyRepository(sessions)
    await keys.create(_record("000000000001", "read"))
    first = await keys.revoke("000000000001", T0 + timedelta(minutes=1))
    again = await keys.revoke("000000000001", T0 + timedelta(minutes=2))
    assert first.revoke_time == again.revoke_time == T0 + timedelta(minutes=1)


async def test_revoke__unknown_id__not_found(sessions: async_sessionmaker[AsyncSession]):
    with pytest.raises(ApiKeyNotFound, match="ffffffffffff"):
        await ApiKeyRepository(sessions).revoke("ffffffffffff")
