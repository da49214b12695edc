"""``segmentd serve --workers N``: processes on one port, coherent through PostgreSQL, drained on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from segmentd.store.notifications import LISTENER_APPLICATION_NAME
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2_grpc, segments_pb2_grpc
from tests.api.conftest import backends_named, create_segment, upsert
from tests.conftest import _truncate

FREE = {"name": "free", "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}}


def _serve_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "segmentd.cli", "serve", "--host", "127.0.0.1", "--port", "0", *arguments]


async def _port_of(process: asyncio.subprocess.Process) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        if " serving on port " in line:
            return int(line.split(" serving on port ")[1].split()[0])
        assert line, "the server exited before serving"
    raise AssertionError("no port announced")


@pytest.fixture
async def workers(
    postgres_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    await _truncate(postgres_database_url)
    process = await asyncio.create_subprocess_exec(
        *_serve_command("--workers", "2", "--database-url", postgres_database_url, "--no-migrate"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        yield process, await _port_of(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.postgres
async def test_workers__share_the_port__coherent__drained_on_sigterm(workers, postgres_database_url):
    process, port = workers
    # Given: both workers up, each listening for changes
    deadline = time.monotonic() + 30
    while await backends_named(postgres_database_url, LISTENER_APPLICATION_NAME) < 2:
        assert time.monotonic() < deadline, "both workers should listen for notifications"
        await asyncio.sleep(0.1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await create_segment(segments_pb2_grpc.SegmentServiceStub(channel), FREE)
        await upsert(profiles_pb2_grpc.ProfileServiceStub(channel), "u1", {"plan": "free"})
    # When / Then: every new connection, whichever worker the kernel gives it, sees the write
    for _ in range(10):
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            for _ in range(50):
                answer = await stub.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
                if list(answer.segments) == ["free"]:
                    break
                await asyncio.sleep(0.05)
            assert list(answer.segments) == ["free"]
    # And SIGTERM stops the supervisor and its workers cleanly
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert await backends_named(postgres_database_url, LISTENER_APPLICATION_NAME) == 0


async def test_workers__on_sqlite__refused_with_a_usage_error(tmp_path: Path):
    process = await asyncio.create_subprocess_exec(
        *_serve_command("--workers", "2", "--database-url", f"sqlite:///{tmp_path / 'db.sqlite'}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"PostgreSQL" in stderr


@pytest.mark.postgres
async def test_workers__unreadable_tls_file__usage_error_before_any_worker(
    postgres_database_url: str, tmp_path: Path
):
    missing = str(tmp_path / "missing.pem")
    process = await asyncio.create_subprocess_exec(
        *_serve_command(
            "--workers",
            "2",
            "--database-url",
            postgres_database_url,
            "--no-migrate",
            "--tls-cert",
            missing,
            "--tls-key",
            missing,
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2
    assert b"cannot read" in stderr
    assert b"missing.pem" in stderr
    assert b"serving" not in stdout


def _children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.postgres
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
async def test_workers__supervisor_killed__workers_exit(workers):
    # Given: a supervisor and its workers serving
    process, _ = workers
    children = _children_of(process.pid)
    assert len(children) >= 2

    # When: the supervisor dies abruptly (not awaiting process.wait(): it also waits for the
    # stdout pipe, which orphaned workers would hold open)
    process.kill()

    # Then: no worker outlives it
    deadline = time.monotonic() + 15
    while any(_is_running(child) for child in children) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not [child for child in children if _is_running(child)]
