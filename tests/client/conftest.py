"""The typed client against a real grpc.aio server on port 0, over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from segmentd.server import RunningServer
from segmentd_client import AsyncClient
from tests.api.conftest import server, server_overrides  # noqa: F401  (fixtures)


@asynccontextmanager
async def scripted_server(
    add_servicer: Callable[[Any, grpc.aio.Server], None], servicer: Any
) -> AsyncIterator[str]:
    """A plaintext grpc.aio server on port 0 serving ``servicer`` alone; yields its target."""
    scripted = grpc.aio.server()
    add_servicer(servicer, scripted)
    port = scripted.add_insecure_port("127.0.0.1:0")
    await scripted.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await scripted.stop(None)


@pytest.fixture
def target(server: RunningServer) -> str:  # noqa: F811
    return f"127.0.0.1:{server.port}"


@pytest.fixture
async def client(target: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(target) as client:
        yield client


FREE = {
    "name": "free",
    "description": "On the free plan",
    "labels": {"team": "growth"},
    "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
}

UPGRADE_CANDIDATES = {
    "name": "upgrade-candidates",
    "labels": {"team": "growth"},
    "rule": {
        "all": {
            "rules": [
                {"segment": {"name": "free"}},
                {
                    "condition": {
                        "attribute": "seats_used_pct",
                        "operator": "GREATER_THAN_OR_EQUALS",
                        "value": 80,
                    }
                },
            ]
        }
    },
}
