"""Server memory while 1,000,000 distinct users are evaluated with a 100,000-entry profile cache.

    uv run python bench/memory.py [--users 1000000] [--cache 100000]

Writes ``--users`` synthetic profiles straight into a SQLite file (the embedded store; the
load is not what is measured), starts ``segmentd serve`` on it with
``--profile-cache-size --cache`` and the 100 segments of ``bench/workload.py``, then
evaluates every user once with ``BatchEvaluateUsers`` (1,000 a call, 4 calls in flight),
printing the server's RSS every 100,000 users. The cache fills, then evicts: RSS must level
off instead of growing with the users seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
import workload
from google.protobuf import json_format
from harness import rss_kib, start_server

from segmentd.store.migrate import migrate
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, segments_pb2, segments_pb2_grpc

BATCH = 1000
SAMPLE_EVERY = 100_000


def write_profiles(path: Path, count: int) -> None:
    asyncio.run(migrate(f"sqlite:///{path}"))
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(path) as connection:
        rows = ((user_id, json.dumps(traits), now, now) for user_id, traits in workload.population(count))
        connection.executemany(
            "INSERT INTO profiles (user_id, traits, create_time, update_time) VALUES (?, ?, ?, ?)", rows
        )


async def evaluate_everyone(port: int, pid: int, count: int) -> list[tuple[int, int]]:
    samples: list[tuple[int, int]] = [(0, rss_kib(pid))]
    # (users evaluated, RSS in KiB), every SAMPLE_EVERY users
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        segments = segments_pb2_grpc.SegmentServiceStub(channel)
        for definition in workload.segment_definitions(100):
            segment = json_format.ParseDict(definition, segments_pb2.Segment())
            await segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment))
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        ids = [f"user-{i:07}" for i in range(count)]
        semaphore = asyncio.Semaphore(4)

        async def batch(start: int) -> None:
            async with semaphore:
                request = evaluation_pb2.BatchEvaluateUsersRequest(user_ids=ids[start : start + BATCH])
                async for answer in stub.BatchEvaluateUsers(request):
                    assert answer.found
            if (start + BATCH) % SAMPLE_EVERY == 0:
                samples.append((start + BATCH, rss_kib(pid)))
                print(f"{start + BATCH:>9} users  RSS {samples[-1][1] / 1024:7.1f} MiB", flush=True)

        await asyncio.gather(*(batch(start) for start in range(0, count, BATCH)))
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--cache", type=int, default=100_000)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="segmentd-memory-") as folder:
        database = Path(folder) / "segmentd.db"
        started = time.perf_counter()
        write_profiles(database, arguments.users)
        print(f"wrote {arguments.users} profiles in {time.perf_counter() - started:.0f} s")
        server = asyncio.run(
            start_server(
                f"sqlite:///{database}",
                Path(folder),
                extra=["--no-migrate", "--profile-cache-size", str(arguments.cache)],
            )
        )
        try:
            started = time.perf_counter()
            samples = asyncio.run(evaluate_everyone(server.port, server.process.pid, arguments.users))
        finally:
            server.stop()
    elapsed = time.perf_counter() - started
    first, last = samples[0][1] // 1024, samples[-1][1] // 1024
    print(
        f"{arguments.users} users evaluated in {elapsed:.0f} s;"
        f" RSS {first} MiB at the start, {last} MiB at the end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
