"""RecordEvents' event limit, and the start-up warning about the default page-token secret."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from segmentd.config import settings_for_tests
from segmentd.security.exposure import DEFAULT_SECRET_WARNING
from segmentd.server import start_server
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2, profiles_pb2_grpc
from tests.api.conftest import create_segment, profile_message, upsert

ACTIVE = {"name": "active", "rule": {"event": {"name": "login", "operator": "GREATER_THAN", "count": 0}}}


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {"max_events_per_call": 100}


async def test_record_events__more_than_the_limit__invalid_argument_naming_events_and_nothing_recorded(
    segments, profiles, evaluation
):
    # Given
    await create_segment(segments, ACTIVE)
    await upsert(profiles, "u1", {})
    events = [profiles_pb2.Event(user_id="u1", name="login")] * 101

    # When
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=events))

    # Then
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "events: at most 100 events per call"
    verdict = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    assert list(verdict.segments) == []
    recorded = await profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=events[:100]))
    assert recorded.recorded == 100


@pytest.mark.parametrize(("secret", "warned"), [(None, True), ("a-real-secret", False)])
async def test_start_server__default_page_token_secret__warns(store_url, caplog, secret, warned):
    overrides = {} if secret is None else {"page_token_secret": secret}
    settings = settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1", **overrides)
    with caplog.at_level(logging.WARNING, logger="segmentd.server"):
        running = await start_server(settings)
        await running.stop(None)
    assert (DEFAULT_SECRET_WARNING in caplog.messages) is warned


async def test_max_concurrent_rpcs__limit_reached__next_call_resource_exhausted_until_one_ends(store_url):
    # Given: a server serving at most one call at a time, that call an import left open
    running = await start_server(
        settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1", max_concurrent_rpcs=1)
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
            evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            release = asyncio.Event()

            async def open_import() -> AsyncIterator[profiles_pb2.ImportProfilesRequest]:
                yield profiles_pb2.ImportProfilesRequest(profiles=[profile_message("u1", {"plan": "free"})])
                await release.wait()

            importing = profiles.ImportProfiles(open_import())
            await asyncio.sleep(0.3)  # the import has started on the server
            # When
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
            release.set()
            imported = await importing
            after = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    finally:
        await running.stop(None)
    # Then: refused at once while the limit was reached, served once the import ended
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert imported.imported == 1 and list(after.segments) == []


def test_max_concurrent_rpcs__negative__refused():
    with pytest.raises(ValueError, match="max_concurrent_rpcs"):
        settings_for_tests(max_concurrent_rpcs=-1)
