"""segmentd-probe, the container's HEALTHCHECK, against a real server."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from segmentd.observability import probe
from segmentd.server import RunningServer
from tests.observability.conftest import free_port


async def _probe(*argv: str) -> int:
    return await asyncio.to_thread(probe.main, list(argv), {})


async def test_probe__serving_server__exit_0(server: RunningServer):
    assert await _probe("--target", f"127.0.0.1:{server.port}") == 0
    assert (
        await _probe("--target", f"127.0.0.1:{server.port}", "--service", "segmentd.v1.EvaluationService")
        == 0
    )


async def test_probe__server_shutting_down__exit_1(server: RunningServer, capsys):
    # Given: the server draining (health NOT_SERVING, as after SIGTERM)
    await server.health.enter_graceful_shutdown()

    assert await _probe("--target", f"127.0.0.1:{server.port}") == 1
    assert "NOT_SERVING" in capsys.readouterr().err


async def test_probe__unknown_service__exit_1(server: RunningServer, capsys):
    assert await _probe("--target", f"127.0.0.1:{server.port}", "--service", "no.such.Service") == 1
    assert "NOT_FOUND" in capsys.readouterr().err


async def test_probe__nothing_listening__exit_1_within_the_timeout(capsys):
    assert await _probe("--target", f"127.0.0.1:{free_port()}", "--timeout", "0.5") == 1
    assert "is not serving" in capsys.readouterr().err


async def test_probe__as_installed_command__default_target_from_segmentd_port(server: RunningServer):
    # The HEALTHCHECK runs `segmentd-probe` with only SEGMENTD_PORT (and the rest of the
    # container's environment) to go on; the module is that script's entry point.
    command = [sys.executable, "-m", "segmentd.observability.probe"]
    serving = await asyncio.to_thread(
        subprocess.run, command, env={"SEGMENTD_PORT": str(server.port)}, capture_output=True, timeout=30
    )
    await server.health.enter_graceful_shutdown()
    draining = await asyncio.to_thread(
        subprocess.run, command, env={"SEGMENTD_PORT": str(server.port)}, capture_output=True, timeout=30
    )

    assert (serving.returncode, serving.stderr) == (0, b"")
    assert draining.returncode == 1
