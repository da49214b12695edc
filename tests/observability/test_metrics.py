"""/metrics of a real server: per-RPC counters and histograms, caches, pool, member rows."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from segmentd.server import RunningServer
from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2_grpc,
    segments_pb2_grpc,
)
from tests.api.conftest import create_segment, upsert
from tests.observability.conftest import labels, scrape, start_metrics_server

EVALUATION = "segmentd.v1.EvaluationService"
HEALTH = "grpc.health.v1.Health"
PAYING = {
    "name": "paying",
    "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "pro"}},
}


def _rpc(kind: str, method: str, service: str = EVALUATION, **more: str) -> frozenset[tuple[str, str]]:
    return labels(grpc_type=kind, grpc_service=service, grpc_method=method, **more)


async def test_metrics__ok_and_not_found_calls__counted_by_code_with_latency(metrics_server: RunningServer):
    # Given: a segment, three profiles (two paying)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{metrics_server.port}") as channel:
        evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        await create_segment(segments_pb2_grpc.SegmentServiceStub(channel), PAYING)
        profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
        for user_id, plan in (("u1", "pro"), ("u2", "free"), ("u3", "pro")):
            await upsert(profiles, user_id, {"plan": plan})

        # When: u1 is evaluated twice (a miss, then a cache hit), an unknown user once, and
        # the segment's members are listed
        for user_id in ("u1", "u1"):
            await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="nobody"))
        members = [
            user_id
            async for message in evaluation.ListSegmentMembers(
                evaluation_pb2.ListSegmentMembersRequest(segment_name="paying")
            )
            for user_id in message.user_ids
        ]
        samples = await scrape(metrics_server)

    # Then: started, handled by code, and the latency histogram, with the gRPC labels
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert members == ["u1", "u3"]
    assert samples["grpc_server_started_total", _rpc("unary", "EvaluateUser")] == 3
    assert samples["grpc_server_handled_total", _rpc("unary", "EvaluateUser", grpc_code="OK")] == 2
    assert samples["grpc_server_handled_total", _rpc("unary", "EvaluateUser", grpc_code="NOT_FOUND")] == 1
    assert samples["grpc_server_handling_seconds_count", _rpc("unary", "EvaluateUser")] == 3
    assert samples["grpc_server_handling_seconds_bucket", _rpc("unary", "EvaluateUser", le="+Inf")] == 3
    assert 0 < samples["grpc_server_handling_seconds_sum", _rpc("unary", "EvaluateUser")] < 30
    assert (
        samples["grpc_server_started_total", _rpc("unary", "UpsertProfile", "segmentd.v1.ProfileService")]
        == 3
    )
    listing = _rpc("server_stream", "ListSegmentMembers")
    assert samples["grpc_server_started_total", listing] == 1
    assert samples["grpc_server_handled_total", listing | labels(grpc_code="OK")] == 1
    assert samples["grpc_server_handling_seconds_count", listing] == 1
    assert samples["segmentd_member_rows_streamed_total", labels()] == 2

    # Then: the profile cache, read live (u1 cached once, then hit; "nobody" missed)
    profiles_cache = labels(cache="profiles")
    assert samples["segmentd_cache_hits_total", profiles_cache] == 1
    assert samples["segmentd_cache_misses_total", profiles_cache] == 2
    assert samples["segmentd_cache_evictions_total", profiles_cache] == 0
    assert samples["segmentd_cache_size", profiles_cache] == 1
    assert samples["segmentd_cache_max_size", profiles_cache] == 100_000

    # Then: the pool, idle between calls; and the process collectors of prometheus-client
    assert samples["segmentd_db_pool_connections_in_use", labels()] == 0
    assert samples["segmentd_db_pool_connections_idle", labels()] >= 1
    assert samples["process_resident_memory_bytes", labels()] > 0


async def test_metrics__stream_ended_by_an_error__handled_with_its_code(metrics_server: RunningServer):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{metrics_server.port}") as channel:
        evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            async for _ in evaluation.ListSegmentMembers(
                evaluation_pb2.ListSegmentMembersRequest(segment_name="no-such-segment")
            ):
                pass
        samples = await scrape(metrics_server)

    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    listing = _rpc("server_stream", "ListSegmentMembers")
    assert samples["grpc_server_handled_total", listing | labels(grpc_code="NOT_FOUND")] == 1
    assert samples["segmentd_member_rows_streamed_total", labels()] == 0


async def test_metrics__two_servers_in_one_process__each_counts_its_own_calls(
    metrics_server: RunningServer, store_url: str
):
    other = await start_metrics_server(store_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{metrics_server.port}") as channel:
            request = evaluation_pb2.EvaluateProfileRequest()
            request.traits.update({"plan": "pro"})
            await evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateProfile(request)
        mine, theirs = await scrape(metrics_server), await scrape(other)
    finally:
        await other.stop(None)

    assert mine["grpc_server_started_total", _rpc("unary", "EvaluateProfile")] == 1
    assert ("grpc_server_started_total", _rpc("unary", "EvaluateProfile")) not in theirs


async def test_metrics__off_by_default__no_endpoint(server: RunningServer):
    assert server.telemetry is not None
    assert server.telemetry.metrics is None
    assert server.telemetry.metrics_port is None


async def _handled(running: RunningServer, code: str) -> float | None:
    """The Health/Watch calls handled with ``code``, once the server has seen the end (≤ 5 s)."""
    key = ("grpc_server_handled_total", _rpc("server_stream", "Watch", HEALTH, grpc_code=code))
    for _ in range(50):
        samples = await scrape(running)
        if key in samples:
            return samples[key]
        await asyncio.sleep(0.1)
    return None


async def test_metrics__stream_cancelled_or_past_its_deadline__counted_as_such(metrics_server: RunningServer):
    # Health/Watch streams until the client goes away: once cancelled, once by its deadline.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{metrics_server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        assert await _handled(metrics_server, "CANCELLED") == 1

        with pytest.raises(grpc.aio.AioRpcError) as expired:
            async for _ in health.Watch(health_pb2.HealthCheckRequest(), timeout=0.5):
                pass
        assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert await _handled(metrics_server, "DEADLINE_EXCEEDED") == 1
