"""``serve --workers 2`` against one worker, on PostgreSQL, under load from a separate process.

    apt-get install nghttp2-client        # h2load, the load generator
    uv run python bench/workers.py [--rounds 5] [--requests 40000] [--database-url URL]

The load generator is h2load (C, a few µs of CPU per call), so that on a 2-core machine the
servers, not the client, use the cores. It sends one EvaluateUser request body (gRPC framing
by hand; the answer is checked once through a real client first) over 64 connections with 4
streams each: the kernel spreads connections across the workers by a hash, so many connections
keep the two workers' shares even. Both servers (1 and 2 workers) run on one database, and rounds alternate
between them; the figure is the median of the rounds' calls/s, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import workload
from google.protobuf import json_format
from harness import Server, start_server, tree_cpu_seconds

from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/segmentd_bench_workers"
METHOD = "/segmentd.v1.EvaluationService/EvaluateUser"
_RATE = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_SUCCEEDED = re.compile(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed")


async def recreate_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    connection = await asyncpg.connect(f"{base}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8')
    finally:
        await connection.close()


async def load(port: int, users: Sequence[tuple[str, dict[str, Any]]]) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        segments = segments_pb2_grpc.SegmentServiceStub(channel)
        for definition in workload.segment_definitions(100):
            segment = json_format.ParseDict(definition, segments_pb2.Segment())
            await segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment))
        profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
        for user_id, traits in users:
            profile = profiles_pb2.Profile(user_id=user_id)
            profile.traits.update(traits)
            await profiles.UpsertProfile(profiles_pb2.UpsertProfileRequest(profile=profile))


async def check_answer(port: int, user_id: str) -> list[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        return list((await stub.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))).segments)


def request_body(user_id: str, folder: Path) -> Path:
    """One gRPC message on the wire: uncompressed flag, big-endian length, the message."""
    message = evaluation_pb2.EvaluateUserRequest(user_id=user_id).SerializeToString()
    path = folder / "request.bin"
    path.write_bytes(struct.pack(">?I", False, len(message)) + message)
    return path


@dataclass(frozen=True)
class Round:
    """One h2load run: its calls/s, and the cores the servers and h2load kept busy meanwhile."""

    rate: float
    server_cores: float
    h2load_cores: float


def measured(server: Server, body: Path, requests: int) -> Round:
    """Run h2load once against ``server``, reading the CPU both used."""
    server_before = tree_cpu_seconds(server.process.pid)
    load_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    rate = h2load(server.port, body, requests)
    elapsed = time.perf_counter() - started
    load_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_cpu = (load_after.ru_utime - load_before.ru_utime) + (load_after.ru_stime - load_before.ru_stime)
    server_cpu = tree_cpu_seconds(server.process.pid) - server_before
    return Round(rate, server_cpu / elapsed, load_cpu / elapsed)


def h2load(port: int, body: Path, requests: int) -> float:
    """Run h2load once; return calls/s (refusing a run in which any call failed)."""
    command = [
        "h2load", "-n", str(requests), "-c", "64", "-m", "4", "-t", "1", "-d", str(body),
        "-H", "content-type: application/grpc", "-H", "te: trailers", f"http://127.0.0.1:{port}{METHOD}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    succeeded = _SUCCEEDED.search(output)
    rate = _RATE.search(output)
    if succeeded is None or rate is None or int(succeeded.group(2)) != 0:
        raise SystemExit(f"h2load reported failures:\n{output}")
    return float(rate.group(1))


async def run(arguments: argparse.Namespace, folder: Path) -> None:
    await recreate_database(arguments.database_url)
    users = workload.population(1000)
    one = await start_server(arguments.database_url, folder / "one", extra=["--workers", "1"])
    two = await start_server(arguments.database_url, folder / "two", extra=["--workers", "2", "--no-migrate"])
    servers: list[tuple[str, Server]] = [("1 worker", one), ("2 workers", two)]
    try:
        await load(one.port, users)
        user_id = users[0][0]
        expected = await check_answer(one.port, user_id)
        assert await check_answer(two.port, user_id) == expected, "both servers give the same verdict"
        body = request_body(user_id, folder)
        for _, server in servers:
            h2load(server.port, body, 2000)  # warm every worker's caches and connections
        rounds: dict[str, list[Round]] = {name: [] for name, _ in servers}
        for number in range(arguments.rounds):
            for name, server in servers if number % 2 == 0 else servers[::-1]:
                rounds[name].append(measured(server, body, arguments.requests))
    finally:
        one.stop()
        two.stop()
    medians = {name: statistics.median(r.rate for r in runs) for name, runs in rounds.items()}
    for name, runs in rounds.items():
        print(
            f"{name:10} {medians[name]:>9.0f} calls/s (rounds: {', '.join(f'{r.rate:.0f}' for r in runs)}); "
            f"cores busy: servers {statistics.median(r.server_cores for r in runs):.2f}, "
            f"h2load {statistics.median(r.h2load_cores for r in runs):.2f}"
        )
    print(f"2 workers / 1 worker: {medians['2 workers'] / medians['1 worker']:.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    arguments = parser.parse_args(argv)
    if shutil.which("h2load") is None:
        print("h2load is needed: apt-get install nghttp2-client", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="segmentd-workers-") as folder:
        for name in ("one", "two"):
            (Path(folder) / name).mkdir()
        asyncio.run(run(arguments, Path(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
