"""How long a write through one replica stays unseen by another (PostgreSQL notifications).

    uv run python bench/staleness.py [--writes 200] [--database-url URL]

Two ``segmentd serve`` processes on one database. For each write: the second replica has the
user's verdict cached; the profile is changed through the first; on even writes the second
is asked, every millisecond, until its cached verdict follows (the delay is reported: p50, p99,
maximum); on odd writes it is asked once with ``consistency = STRONG``, which must see the
write at once (the misses are counted; target: none).
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
from typing import Any

import grpc
from google.protobuf import json_format
from harness import start_server
from workers import load, recreate_database

from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/segmentd_bench_staleness"
FREE: dict[str, Any] = {"plan": "free", "seats_used_pct": 95, "mrr": 10}
PRO: dict[str, Any] = {"plan": "pro", "seats_used_pct": 5, "mrr": 900}
FREE_PLAN = {
    "name": "free-plan",
    "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
}


async def measure(a: grpc.aio.Channel, b: grpc.aio.Channel, writes: int) -> tuple[list[float], int]:
    """Write through ``a``; return the delays until ``b``'s cache followed, and STRONG misses."""
    plan = json_format.ParseDict(FREE_PLAN, segments_pb2.Segment())
    await segments_pb2_grpc.SegmentServiceStub(a).CreateSegment(
        segments_pb2.CreateSegmentRequest(segment=plan)
    )
    write = profiles_pb2_grpc.ProfileServiceStub(a).UpsertProfile
    evaluate = evaluation_pb2_grpc.EvaluationServiceStub(b).EvaluateUser
    cached = evaluation_pb2.EvaluateUserRequest(user_id="u1")
    strong = evaluation_pb2.EvaluateUserRequest(user_id="u1", consistency=evaluation_pb2.STRONG)
    delays: list[float] = []
    strong_misses = 0
    for number in range(writes):
        before = list((await evaluate(cached)).segments)
        profile = profiles_pb2.Profile(user_id="u1")
        profile.traits.update(FREE if number % 2 == 0 else PRO)
        await write(profiles_pb2.UpsertProfileRequest(profile=profile))
        written = time.perf_counter()
        if number % 2:  # every other write: STRONG must see it at once
            strong_misses += list((await evaluate(strong)).segments) == before
            continue
        while list((await evaluate(cached)).segments) == before:
            if time.perf_counter() - written > 10:
                raise SystemExit("replica B did not see the write within 10 s")
            await asyncio.sleep(0.001)
        delays.append(time.perf_counter() - written)
    return delays, strong_misses


async def run(arguments: argparse.Namespace, folder: Path) -> None:
    await recreate_database(arguments.database_url)
    for name in ("a", "b"):
        (folder / name).mkdir()
    first = await start_server(arguments.database_url, folder / "a")
    second = await start_server(arguments.database_url, folder / "b", extra=["--no-migrate"])
    try:
        await load(first.port, [("u1", PRO)])
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a,
            grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as b,
        ):
            delays, strong_misses = await measure(a, b, arguments.writes)
    finally:
        first.stop()
        second.stop()
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    print(
        f"replica B saw replica A's write after: p50 {cuts[49] * 1e3:.1f} ms, p99 {cuts[98] * 1e3:.1f} ms, "
        f"max {max(delays) * 1e3:.1f} ms ({len(delays)} writes); STRONG reads that missed it: {strong_misses}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="segmentd-staleness-") as folder:
        asyncio.run(run(arguments, Path(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
