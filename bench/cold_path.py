"""A cold EvaluateUser (a cache miss) on PostgreSQL, next to a bare asyncpg fetch of the same row.

    uv run python bench/cold_path.py [--calls 2000] [--database-url URL]

Loads 100 segments (``bench/workload.py``) and ``--calls`` profiles, then, one call at a time
and interleaved, for each user once: a bare ``SELECT traits FROM profiles WHERE user_id = $1``
through asyncpg in this process (prepared, as asyncpg does), and ``EvaluateUser`` of a user
the server has not seen (a miss: one statement reads the profile, its event counts and the
catalogue version). Prints p50 and p99 of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import grpc
import workload
from harness import start_server
from workers import load, recreate_database

from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/segmentd_bench_cold"


def _quantiles(samples: Sequence[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1e3, cuts[98] * 1e3


async def run(arguments: argparse.Namespace, folder: Path) -> None:
    await recreate_database(arguments.database_url)
    users = workload.population(arguments.calls)
    server = await start_server(arguments.database_url, folder)
    bare: list[float] = []
    cold: list[float] = []
    try:
        await load(server.port, users)
        connection = await asyncpg.connect(arguments.database_url)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            evaluate = evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser
            statement = await connection.prepare("SELECT traits FROM profiles WHERE user_id = $1")
            await evaluate(evaluation_pb2.EvaluateUserRequest(user_id=users[0][0]))  # compile the catalogue
            for user_id, _ in users[1:]:
                started = time.perf_counter()
                await statement.fetchrow(user_id)
                bare.append(time.perf_counter() - started)
                started = time.perf_counter()
                await evaluate(evaluation_pb2.EvaluateUserRequest(user_id=user_id))
                cold.append(time.perf_counter() - started)
        await connection.close()
    finally:
        server.stop()
    for name, samples in (("bare asyncpg fetch", bare), ("cold EvaluateUser", cold)):
        p50, p99 = _quantiles(samples)
        print(f"{name:20} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   ({len(samples)} calls)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="segmentd-cold-") as folder:
        asyncio.run(run(arguments, Path(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
