"""The typed client against a real grpc.aio server on port 0, over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from segmentd.server import RunningServer
from segmentd_client import AsyncClient
from tests.api.conftest import server, server_overrides  # noqa: F401  (fixtures)


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
