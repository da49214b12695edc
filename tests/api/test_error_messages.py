"""Error messages say what failed, never the internals, and stay small."""

from __future__ import annotations

import grpc
import pytest

from segmentd.api.errors import MAX_DETAILS_LENGTH
from segmentd.config import settings_for_tests
from segmentd.server import start_server
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, segments_pb2


@pytest.mark.parametrize(
    "database_url",
    ["postgresql://postgres@127.0.0.1:1/segmentd_nowhere", "sqlite+aiosqlite:////nonexistent/dir/x.db"],
    ids=["postgresql", "sqlite"],
)
async def test_unavailable__message_names_no_sql_parameters_host_or_port(database_url):
    # Given: a server whose database cannot be reached
    settings = settings_for_tests(database_url=database_url, migrate=False, host="127.0.0.1")
    running = await start_server(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            # When
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser(
                    evaluation_pb2.EvaluateUserRequest(user_id="secret-user-7")
                )
    finally:
        await running.stop(None)

    # Then
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    details = str(raised.value.details())
    assert details == "database unavailable"
    for internal in ("secret-user-7", "127.0.0.1", ":1", "SELECT", "nonexistent", "Error"):
        assert internal not in details


async def test_get_segment__huge_name__not_found_with_a_bounded_message(segments):
    name = "x" * 100_000
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.GetSegment(segments_pb2.GetSegmentRequest(name=name))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(str(raised.value.details())) <= MAX_DETAILS_LENGTH


async def test_create_segment__huge_attribute__invalid_argument_with_a_bounded_message(segments):
    segment = segments_pb2.Segment(name="big")
    segment.rule.condition.attribute = "a" * 100_000
    segment.rule.condition.operator = segment.rule.condition.EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = str(raised.value.details())
    assert details.startswith("segment.rule") and len(details) <= MAX_DETAILS_LENGTH
