"""What the benchmarks share: server processes, their CPU time and memory.

start_server(url, dir) -> Server      ``segmentd serve`` in a process of its own, SERVING
start_process(cmd, dir, name)         any gRPC server that prints "... serving on port N"
cpu_seconds(pid), rss_kib(pid)        read from /proc
RssSampler(pid)                       samples RSS every 100 ms while a block runs
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

RSS_SAMPLE_SECONDS: Final = 0.1
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and of its live descendants (a server's worker processes)."""
    total = cpu_seconds(pid)
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            child_pids = children.read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu_seconds(int(child)) for child in child_pids)
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """Samples a process's RSS every 100 ms on a thread while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(rss_kib(self.pid))
            if self._stop.wait(RSS_SAMPLE_SECONDS):
                self.samples.append(rss_kib(self.pid))
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def server_command(database_url: str | None, program: str = "", extra: Sequence[str] = ()) -> list[str]:
    """``segmentd serve`` from this environment (its own process, so its PID is the server's).

    ``database_url`` ``None`` keeps the default store (a SQLite file in the working directory).
    """
    script = Path(sys.executable).with_name("segmentd")
    if program:
        command = shlex.split(program)
    else:
        command = [str(script)] if script.exists() else [sys.executable, "-m", "segmentd.cli"]
    store = [] if database_url is None else ["--database-url", database_url]
    return [*command, "serve", "--host", "127.0.0.1", "--port", "0", *store, *extra]


async def start_server(
    database_url: str | None, log_dir: Path, program: str = "", extra: Sequence[str] = ()
) -> Server:
    """Start ``segmentd serve`` in ``log_dir`` (its log there too); return once it is SERVING."""
    return await start_process(server_command(database_url, program, extra), log_dir, "segmentd-serve")


async def start_process(command: Sequence[str], log_dir: Path, name: str) -> Server:
    """Start a gRPC server process that prints ``... serving on port N``; wait for SERVING."""
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        list(command),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=log_dir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}); see {log_path}:\n{log_path.read_text()}")
        for line in log_path.read_text(errors="replace").splitlines():
            if " serving on port " in line:
                server = Server(process, int(line.split(" serving on port ")[1].split()[0]), log_path)
                await wait_serving(server, deadline)
                return server
        await asyncio.sleep(0.1)
    process.terminate()
    raise SystemExit(f"{name} did not start in 120 s; see {log_path}")


async def wait_serving(server: Server, deadline: float) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.RpcError):
                answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit("the server never reported SERVING")
