"""The `segmentd` command against a real server (grpc.aio on port 0, SQLite and PostgreSQL).

`segmentd` runs through `segmentd.cli.main`, in a thread (the server's event loop is the
test's), with SEGMENTD_TARGET pointing at the server; stdout and stderr are captured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from segmentd.cli import main
from segmentd.server import RunningServer
from tests.api.conftest import server, server_overrides  # noqa: F401  (fixtures)


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    err: str


Segmentd = Callable[..., Awaitable[Run]]


def run_segmentd(capsys: pytest.CaptureFixture[str]) -> Segmentd:
    async def run(*args: str) -> Run:
        capsys.readouterr()
        try:
            status = await asyncio.to_thread(main, list(args))
        except SystemExit as exc:
            status = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(status, out, err)

    return run


@pytest.fixture
def target(server: RunningServer) -> str:  # noqa: F811
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def segmentd(target: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Segmentd:
    """Run `segmentd ARGS...` against the test's server; returns its status and output."""
    monkeypatch.setenv("SEGMENTD_TARGET", target)
    return run_segmentd(capsys)
