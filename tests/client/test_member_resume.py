"""A member listing broken mid-stream resumes from the last token, across a real server restart."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from segmentd.config import settings_for_tests
from segmentd.server import RunningServer, start_server
from segmentd_client import AsyncClient, Client
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc
from tests.client.conftest import FREE, scripted_server

# The server streams 1,000 ids a message. Ten messages of 64 KiB each are far more than
# HTTP/2 flow control lets the server send ahead of a client that has read one message, so
# the listing is still in flight when the server goes away.
MEMBERS = 10_000


def _user_id(n: int) -> str:
    return f"u{n:05}-{'x' * 58}"


async def test_iter_member_chunks__server_restarts_mid_stream__resumes_without_gaps_or_repeats(
    store_url: str,
):
    # Given: a server, its segment and profiles, and a listing that has had its first chunk
    settings = settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1")
    running: RunningServer | None = await start_server(settings)
    assert running is not None
    try:
        async with AsyncClient(f"127.0.0.1:{running.port}") as client:
            await client.apply_segment(FREE)
            await client.import_profiles(
                {"user_id": _user_id(n), "traits": {"plan": "free"}} for n in range(MEMBERS)
            )
            chunks = client.iter_member_chunks("free")
            received = list((await anext(chunks)).user_ids)

            # When: the server goes away at once, and another one takes its port
            port = running.port
            await running.stop(None)
            running = None
            running = await start_server(dataclasses.replace(settings, port=port))
            async for chunk in chunks:
                received.extend(chunk.user_ids)

        # Then
        assert len(received) == MEMBERS
        assert received == [_user_id(n) for n in range(MEMBERS)]
    finally:
        if running is not None:
            await running.stop(None)
        # A store connection the stop left open would warn when collected: here, in this test.
        gc.collect()


async def test_client_iter_members__server_restarts_mid_stream__resumes(store_url: str):
    # Given: the blocking client, with its first chunk received (its calls run in a thread)
    settings = settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1")
    running: RunningServer | None = await start_server(settings)
    assert running is not None
    try:
        async with AsyncClient(f"127.0.0.1:{running.port}") as setup:
            await setup.apply_segment(FREE)
            await setup.import_profiles(
                {"user_id": _user_id(n), "traits": {"plan": "free"}} for n in range(MEMBERS)
            )
        with Client(f"127.0.0.1:{running.port}") as client:
            chunks = client.iter_member_chunks("free")
            received = list((await asyncio.to_thread(next, chunks)).user_ids)

            # When
            port = running.port
            await running.stop(None)
            running = None
            running = await start_server(dataclasses.replace(settings, port=port))
            received += await asyncio.to_thread(
                lambda: [user_id for chunk in chunks for user_id in chunk.user_ids]
            )

        # Then
        assert received == [_user_id(n) for n in range(MEMBERS)]
    finally:
        if running is not None:
            await running.stop(None)
        gc.collect()


@dataclass
class ListingThenUnavailable(evaluation_pb2_grpc.EvaluationServiceServicer):
    """Sends a complete listing, then ends the stream UNAVAILABLE: the status lost, not the data."""

    requests: list[evaluation_pb2.ListSegmentMembersRequest] = field(default_factory=list)

    async def ListSegmentMembers(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.requests.append(request)
        yield evaluation_pb2.ListSegmentMembersResponse(user_ids=["a", "b"], next_page_token="b")
        yield evaluation_pb2.ListSegmentMembersResponse(user_ids=["c"], next_page_token="")
        await context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")


@pytest.fixture
async def listing_then_unavailable() -> AsyncIterator[tuple[ListingThenUnavailable, str]]:
    servicer = ListingThenUnavailable()  # type: ignore[abstract]  # only ListSegmentMembers is called
    async with scripted_server(
        evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server, servicer
    ) as target:
        yield servicer, target


async def test_iter_member_chunks__broken_after_the_last_message__each_member_once(
    listing_then_unavailable: tuple[ListingThenUnavailable, str],
):
    # Given: a listing whose stream breaks only after its last message (empty token)
    servicer, target = listing_then_unavailable
    # When
    async with AsyncClient(target) as client:
        received = await _ids_of_first_chunks(client.iter_member_chunks("free"), 10)
    with Client(target) as blocking:
        received_blocking = await asyncio.to_thread(
            lambda: [
                user_id
                for chunk in itertools.islice(blocking.iter_member_chunks("free"), 10)
                for user_id in chunk.user_ids
            ]
        )
    # Then: complete, and not resumed (from "", which would list every member again, forever)
    assert received == received_blocking == ["a", "b", "c"]
    assert len(servicer.requests) == 2


async def _ids_of_first_chunks(chunks: AsyncIterator[Any], limit: int) -> list[str]:
    """The ids of at most ``limit`` chunks: a client that resumed forever would still stop."""
    ids: list[str] = []
    async for chunk in chunks:
        ids.extend(chunk.user_ids)
        limit -= 1
        if limit == 0:
            break
    return ids
