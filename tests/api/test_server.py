"""The server around the services: health, reflection, an honest UNAVAILABLE, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from segmentd.config import settings_for_tests
from segmentd.server import SERVICE_NAMES, start_server
from segmentd.store.database import APPLICATION_NAME
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, segments_pb2_grpc
from tests.api.conftest import backends_named, create_segment
from tests.conftest import _truncate

FREE = {"name": "free", "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health__store_answers__serving_for_every_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", *SERVICE_NAMES):
        response = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert response.status == SERVING, name


async def test_reflection__lists_the_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    listed = {s.name async for r in responses for s in r.list_services_response.service}
    assert set(SERVICE_NAMES) <= listed
    assert "grpc.health.v1.Health" in listed


async def test_store_unreachable__not_serving_and_unavailable_never_not_a_member():
    # Given: a server whose PostgreSQL does not answer (nothing listens on port 1)
    settings = settings_for_tests(
        database_url="postgresql://postgres@127.0.0.1:1/none", migrate=False, host="127.0.0.1"
    )
    running = await start_server(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            # When
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser(
                    evaluation_pb2.EvaluateUserRequest(user_id="u1")
                )
    finally:
        await running.stop(None)

    # Then
    assert health.status == NOT_SERVING
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "database unavailable" in str(raised.value.details())


async def test_sigterm__drains_in_flight_calls_then_exits_zero(tmp_path: Path):
    # Given: `segmentd serve` in a process of its own, on the embedded SQLite store
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "segmentd.cli",
        "serve",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--database-url",
        f"sqlite:///{tmp_path / 'segmentd.db'}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    port = int(line.rsplit(" ", 1)[1])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            request = evaluation_pb2.BatchEvaluateUsersRequest(user_ids=[f"u{i}" for i in range(1000)])
            call = stub.BatchEvaluateUsers(request)
            received = [await call.read()]

            # When: SIGTERM arrives while the call is streaming
            process.send_signal(signal.SIGTERM)
            while (response := await call.read()) is not grpc.aio.EOF:
                received.append(response)

        # Then: the call finished whole and the process exited cleanly
        assert len(received) == 1000
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.postgres
async def test_stop__calls_in_flight__every_store_connection_closed(postgres_database_url: str):
    # Given: a server busy with statistics over a population, holding connections of its pool
    await _truncate(postgres_database_url)
    connection = await asyncpg.connect(postgres_database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO profiles SELECT 'u' || i, '{\"plan\": \"free\"}', now(), now()"
            " FROM generate_series(1, 50000) AS i"
        )
    finally:
        await connection.close()
    settings = settings_for_tests(database_url=postgres_database_url, migrate=False, host="127.0.0.1")
    running = await start_server(settings)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await create_segment(segments_pb2_grpc.SegmentServiceStub(channel), FREE)
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        calls = [
            stub.GetSegmentStats(evaluation_pb2.GetSegmentStatsRequest(segment_name="free"))
            for _ in range(12)
        ]
        while running.engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
            await asyncio.sleep(0.001)

        # When: it stops without grace, cancelling them
        pool = running.engine.pool
        await running.stop(None)
        for call in calls:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
    await asyncio.sleep(0.5)  # the cancelled handlers' cleanup has long run by now

    # Then: every connection came back before the pool was closed (one returned later would sit
    # open in the discarded pool), and the database sees none left
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await backends_named(postgres_database_url, APPLICATION_NAME) == 0
