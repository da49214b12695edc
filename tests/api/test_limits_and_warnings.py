"""RecordEvents' event limit, and the start-up warning about the default page-token secret."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from segmentd.config import settings_for_tests
from segmentd.security.exposure import DEFAULT_SECRET_WARNING
from segmentd.server import start_server
from segmentd_client.v1 import evaluation_pb2, profiles_pb2
from tests.api.conftest import create_segment, upsert

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
