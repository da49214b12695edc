"""The store fails under a running server: stopped, frozen, dropped (issue 16, finding 8 and
"Faults in the suite"), on a PostgreSQL cluster of the test's own.

Each test keeps writers running through the fault and checks: the first failure comes fast
and is UNAVAILABLE (never INTERNAL, never a hang until the deadline), health turns
NOT_SERVING, the service recovers by itself once the database is back, and every write it
acknowledged is in the database afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text

from segmentd import server as server_module
from segmentd.config import settings_for_tests
from segmentd.server import RunningServer, start_server
from segmentd.store.database import create_engine
from segmentd.store.migrate import migrate
from segmentd_client.v1 import profiles_pb2, profiles_pb2_grpc
from tests.api.conftest import profile_message
from tests.faults.cluster import DisposableCluster

if TYPE_CHECKING:
    from segmentd_client.v1.profiles_pb2_grpc import ProfileServiceAsyncStub

_DATABASE = "segmentd_faults"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def cluster() -> Iterator[DisposableCluster]:
    try:
        cluster = DisposableCluster.create()
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        if os.environ.get("SEGMENTD_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"cannot create a PostgreSQL cluster: {error}")
    try:
        yield cluster
    finally:
        cluster.destroy()


async def _admin(cluster: DisposableCluster, *statements: str) -> None:
    engine = create_engine(cluster.url())
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _fresh_database(cluster: DisposableCluster) -> str:
    await _admin(cluster, f"DROP DATABASE IF EXISTS {_DATABASE} WITH (FORCE)", f"CREATE DATABASE {_DATABASE}")
    await migrate(cluster.url(_DATABASE))
    return cluster.url(_DATABASE)


@pytest.fixture
async def server(cluster: DisposableCluster, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    monkeypatch.setattr(server_module, "HEALTH_PROBE_SECONDS", 0.5)  # seconds of test, not of product
    url = await _fresh_database(cluster)
    running = await start_server(
        settings_for_tests(
            database_url=url, migrate=False, host="127.0.0.1", database_connect_timeout_seconds=1.0
        )
    )
    try:
        yield running
    finally:
        await running.stop(None)


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


@dataclass
class WriteLog:
    """What the writers were told: acknowledged user ids, and when each call ended how."""

    acknowledged: list[str] = field(default_factory=list)
    outcomes: list[tuple[float, grpc.StatusCode]] = field(default_factory=list)

    def first_after(self, since: float, wanted: Callable[[grpc.StatusCode], bool]) -> float | None:
        return next((at - since for at, code in self.outcomes if at >= since and wanted(code)), None)

    def codes_after(self, since: float) -> set[grpc.StatusCode]:
        return {code for at, code in self.outcomes if at >= since}


async def _write(stub: ProfileServiceAsyncStub, log: WriteLog, writer: int, stop: asyncio.Event):
    for i in range(100_000):  # bounded; the test stops it long before
        if stop.is_set():
            return
        user_id = f"w{writer}-{i}"
        request = profiles_pb2.UpsertProfileRequest(profile=profile_message(user_id, {"i": i}))
        try:
            await stub.UpsertProfile(request, timeout=10)
        except grpc.aio.AioRpcError as error:
            log.outcomes.append((time.monotonic(), error.code()))
            await asyncio.sleep(0.05)
        else:
            log.acknowledged.append(user_id)
            log.outcomes.append((time.monotonic(), grpc.StatusCode.OK))
            await asyncio.sleep(0.01)


@pytest.fixture
async def writers(channel: grpc.aio.Channel) -> AsyncIterator[WriteLog]:
    log, stop = WriteLog(), asyncio.Event()
    stub: ProfileServiceAsyncStub = profiles_pb2_grpc.ProfileServiceStub(channel)
    tasks = [asyncio.create_task(_write(stub, log, writer, stop)) for writer in range(4)]
    await asyncio.sleep(0.5)
    yield log
    stop.set()
    await asyncio.gather(*tasks)


async def _until(condition: Callable[[], object], timeout: float) -> float:
    """Wait until ``condition()`` (sync or async) is true; return how long it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def _health_is(channel: grpc.aio.Channel, status: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        return bool(response.status == status)

    return check


async def _stored_user_ids(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set((await connection.execute(text("SELECT user_id FROM profiles"))).scalars())
    finally:
        await engine.dispose()


async def _outage(log: WriteLog, channel: grpc.aio.Channel, fault_at: float) -> None:
    """The outage as writers and health see it: UNAVAILABLE fast, then NOT_SERVING."""
    await _until(lambda: log.first_after(fault_at, lambda code: code != grpc.StatusCode.OK) is not None, 8)
    first = log.first_after(fault_at, lambda code: code != grpc.StatusCode.OK)
    assert first is not None and first < 4.0
    await _until(_health_is(channel, _NOT_SERVING), 8)


async def _recovery(log: WriteLog, channel: grpc.aio.Channel, url: str) -> None:
    """The service comes back by itself, and lost no acknowledged write."""
    back_at = time.monotonic()
    await _until(lambda: log.first_after(back_at, lambda code: code == grpc.StatusCode.OK) is not None, 15)
    await _until(_health_is(channel, _SERVING), 8)
    acknowledged = set(log.acknowledged)
    assert acknowledged <= await _stored_user_ids(url)


async def test_stopped_database__unavailable_fast_then_recovers(cluster, server, channel, writers):
    # When: the database crashes under load, and comes back
    fault_at = time.monotonic()
    cluster.stop()
    try:
        await _outage(writers, channel, fault_at)
    finally:
        cluster.start()

    # Then: only UNAVAILABLE, recovery, nothing acknowledged lost
    assert writers.codes_after(fault_at) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    await _recovery(writers, channel, cluster.url(_DATABASE))


async def test_frozen_database__unavailable_within_the_connect_timeout(cluster, server, channel, writers):
    # When: every process of the database stops answering (connections stay open)
    fault_at = time.monotonic()
    cluster.freeze()
    try:
        await _outage(writers, channel, fault_at)
        # Then: no call waited for its 10 s deadline
        assert grpc.StatusCode.DEADLINE_EXCEEDED not in writers.codes_after(fault_at)
    finally:
        cluster.thaw()
    assert writers.codes_after(fault_at) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    await _recovery(writers, channel, cluster.url(_DATABASE))


async def test_dropped_database__unavailable_and_not_serving_then_recovers(cluster, server, channel, writers):
    # When: the database is dropped under the server, then created again
    fault_at = time.monotonic()
    await _admin(cluster, f"DROP DATABASE {_DATABASE} WITH (FORCE)")
    await _outage(writers, channel, fault_at)
    await asyncio.sleep(1.0)  # the health loop keeps running: still NOT_SERVING, not dead
    assert await _health_is(channel, _NOT_SERVING)()
    assert writers.codes_after(fault_at) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    writers.acknowledged.clear()  # what was acknowledged before went with the dropped database
    await _fresh_database(cluster)

    # Then: the same server serves the new database
    await _recovery(writers, channel, cluster.url(_DATABASE))
