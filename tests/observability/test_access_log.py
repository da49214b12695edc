"""The access log: one JSON line per RPC, never a payload nor a credential."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from segmentd.cli import main
from segmentd.config import Settings, settings_for_tests
from segmentd.observability.logs import JsonFormatter, formatter_for
from segmentd.server import RunningServer, start_server
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2, profiles_pb2_grpc
from tests.api.conftest import upsert

SECRET_TRAIT = "4111-1111-1111-1111"
SECRET_KEY = "Bearer sk-very-secret"


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """What the access logger writes, formatted as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("segmentd.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_access_log__each_rpc__one_json_line_with_rpc_code_duration_peer(
    server: RunningServer, access_lines: io.StringIO
):
    # Given: calls carrying personal data in their payload and a credential in their metadata
    metadata = (("authorization", SECRET_KEY),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        await upsert(profiles_pb2_grpc.ProfileServiceStub(channel), "u1", {"card": SECRET_TRAIT})
        evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError):
            await evaluation.EvaluateUser(
                evaluation_pb2.EvaluateUserRequest(user_id="nobody"), metadata=metadata
            )

    # Then: one line per call, with what an operator needs (an aborted call's line is written
    # after its status went out, so the client may see the error first)
    for _ in range(200):
        if len(_entries(access_lines)) >= 2:
            break
        await asyncio.sleep(0.01)
    upserted, not_found = _entries(access_lines)
    assert upserted["rpc"] == "segmentd.v1.ProfileService/UpsertProfile"
    assert upserted["grpc_code"] == "OK"
    assert not_found["rpc"] == "segmentd.v1.EvaluationService/EvaluateUser"
    assert not_found["grpc_code"] == "NOT_FOUND"
    for entry in (upserted, not_found):
        assert {"time", "level", "logger", "message", "duration_ms", "peer", "grpc_type"} <= entry.keys()
        assert entry["level"] == "INFO"
        assert entry["logger"] == "segmentd.access"
        assert str(entry["time"]).endswith("Z")
        assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
        assert str(entry["peer"]).startswith("ipv4:127.0.0.1:")
    # Then: neither the traits, the user ids of the payload, nor the credential
    text = access_lines.getvalue()
    assert SECRET_TRAIT not in text
    assert "nobody" not in text
    assert "sk-very-secret" not in text


def test_json_formatter__exception__traceback_in_its_own_field():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("segmentd.test").makeRecord(
            "segmentd.test", logging.ERROR, __file__, 1, "failed: %s", ("x",), sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed: x"
    assert entry["level"] == "ERROR"
    assert "RuntimeError: boom" in entry["exception"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("log_format", "stream", "expected"),
    [
        pytest.param("auto", io.StringIO(), JsonFormatter, id="auto-not-a-terminal-json"),
        pytest.param("auto", _Terminal(), logging.Formatter, id="auto-terminal-text"),
        pytest.param("json", _Terminal(), JsonFormatter, id="json"),
        pytest.param("text", io.StringIO(), logging.Formatter, id="text"),
    ],
)
def test_formatter_for__format_and_stream__formatter(log_format, stream, expected):
    assert type(formatter_for(log_format, stream)) is expected


def test_serve__unknown_log_format__exit_2_naming_the_choices(capsys):
    assert main(["serve", "--log-format", "xml"]) == 2
    assert "auto, json, text" in capsys.readouterr().err


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return err


async def test_serve__log_format_json__every_stderr_line_is_json(tmp_path: Path):
    # Given: `segmentd serve --log-format json --access-log all` as an operator starts it
    command = [sys.executable, "-m", "segmentd.cli", "serve", "--port", "0", "--host", "127.0.0.1"]
    environment = {**os.environ, "SEGMENTD_DATABASE_URL": f"sqlite:///{tmp_path / 'logs.db'}"}
    process = subprocess.Popen(
        [*command, "--log-format", "json", "--access-log", "all"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        port = int(started.rsplit(" ", 1)[1])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = evaluation_pb2.EvaluateProfileRequest()
            request.traits.update({"plan": SECRET_TRAIT})
            await evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateProfile(request)
    finally:
        err = await asyncio.to_thread(_stop, process)

    entries = [json.loads(line) for line in err.splitlines()]
    access = [entry for entry in entries if entry["logger"] == "segmentd.access"]
    assert [entry["rpc"] for entry in access] == ["segmentd.v1.EvaluationService/EvaluateProfile"]
    assert access[0]["grpc_code"] == "OK"
    assert any(entry["logger"] == "segmentd.server" for entry in entries)
    assert SECRET_TRAIT not in err


async def test_access_log__health_checks__debug_only(server: RunningServer, access_lines: io.StringIO):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest())
        logging.getLogger("segmentd.access").setLevel(logging.DEBUG)
        await health.Check(health_pb2.HealthCheckRequest())

    (entry,) = _entries(access_lines)
    assert (entry["rpc"], entry["level"]) == ("grpc.health.v1.Health/Check", "DEBUG")


@pytest.mark.parametrize(("mode", "logged"), [("errors", ["NOT_FOUND"]), ("off", [])])
async def test_access_log__errors_or_off__only_failed_calls_or_none(
    store_url: str, access_lines: io.StringIO, mode: str, logged: list[str]
):
    # Given: a server whose access log is not "all"
    settings = settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1", access_log=mode)
    running = await start_server(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
            # When: one call succeeds, one fails
            await upsert(profiles, "u1", {"plan": "free"})
            with pytest.raises(grpc.aio.AioRpcError):
                await profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="ghost"))
    finally:
        await running.stop(None)
    # Then
    assert [entry["grpc_code"] for entry in _entries(access_lines)] == logged


def test_settings__unknown_access_log_mode__refused():
    with pytest.raises(ValueError, match="access_log"):
        Settings(access_log="sometimes")
