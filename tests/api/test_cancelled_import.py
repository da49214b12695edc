"""A cancelled import: all or nothing was stored, and sending it again is safe (finding 6).

A cancellation that reaches the server as the import commits cannot undo the commit: the
caller sees CANCELLED although every profile was stored. The guarantee is therefore
"unknown outcome, never a partial one", and a re-sent import converges on the same state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import text

from segmentd.server import RunningServer
from segmentd_client.v1 import profiles_pb2
from tests.api.conftest import profile_message

_PROFILES = 2_000


async def _batches() -> AsyncIterator[profiles_pb2.ImportProfilesRequest]:
    for start in range(0, _PROFILES, 500):
        yield profiles_pb2.ImportProfilesRequest(
            profiles=[profile_message(f"user-{i:05d}", {"i": i}) for i in range(start, start + 500)]
        )


async def _stored(server: RunningServer) -> int:
    async with server.engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM profiles"))).scalar_one())


@pytest.mark.parametrize("cancel_after_seconds", [0.05, 0.3])
async def test_cancelled_import__all_or_nothing__and_resending_converges(
    server, profiles, cancel_after_seconds
):
    # Given: an import cancelled by its caller at some point of its life, the commit included
    call = profiles.ImportProfiles(_batches())
    await asyncio.sleep(cancel_after_seconds)
    if call.cancel():
        with pytest.raises((asyncio.CancelledError, grpc.aio.AioRpcError)):
            await call
    else:  # it had already ended, on a fast machine: that is one of the outcomes too
        await call
    await asyncio.sleep(0.3)  # the server's side of the cancellation settles

    # Then: either nothing or everything was stored, never a part
    assert await _stored(server) in (0, _PROFILES)

    # When: the caller, not knowing the outcome, sends the same import again
    report = await profiles.ImportProfiles(_batches())

    # Then: the same state as if the first had never been cancelled
    assert report.imported == _PROFILES
    assert await _stored(server) == _PROFILES
