"""Servers with access control on, and keys issued straight into their database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from segmentd.config import settings_for_tests
from segmentd.security.keys import key_hash, new_key
from segmentd.server import RunningServer, start_server
from segmentd.store.api_keys import ApiKeyRecord, ApiKeyRepository
from segmentd.store.database import create_engine, create_sessionmaker


async def issue_key(database_url: str, *scopes: str, description: str = "") -> tuple[str, str]:
    """Store a new key with ``scopes``; return ``(key_id, key)``."""
    key_id, key = new_key()
    engine = create_engine(database_url)
    try:
        await ApiKeyRepository(create_sessionmaker(engine)).create(
            ApiKeyRecord(key_id, key_hash(key), frozenset(scopes), description, datetime.now(UTC))
        )
    finally:
        await engine.dispose()
    return key_id, key


async def revoke_key(database_url: str, key_id: str) -> None:
    engine = create_engine(database_url)
    try:
        await ApiKeyRepository(create_sessionmaker(engine)).revoke(key_id)
    finally:
        await engine.dispose()


async def start_auth_server(store_url: str, **overrides: Any) -> RunningServer:
    settings = settings_for_tests(
        database_url=store_url, migrate=False, host="127.0.0.1", require_auth=True, **overrides
    )
    return await start_server(settings)


@pytest.fixture
async def auth_server(store_url: str) -> AsyncIterator[RunningServer]:
    """A server with ``require_auth`` on and every call logged."""
    running = await start_auth_server(store_url, access_log="all")
    try:
        yield running
    finally:
        await running.stop(None)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)
