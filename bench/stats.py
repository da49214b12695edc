"""Statistics benchmark: GetSegmentStats and CompareSegments against hand-written SQL.

    uv run python bench/stats.py [--profiles 100000] [--rounds 7] [--database-url URL]

On a database of its own (``segmentd_bench_stats``, created afresh and dropped at the end):
the synthetic profiles of ``bench/membership.py`` loaded with ``COPY``, its three segments
plus two more, a ``segmentd serve`` subprocess; then, interleaved for ``--rounds`` rounds
(medians reported):

1. ``GetSegmentStats`` of the typical 5-condition segment with the traits ``mrr`` and
   ``seats_used_pct`` against one hand-written PostgreSQL aggregate of the same figures
   (``count(*) FILTER``, ``sum``, ``min``, ``max``, ``percentile_disc``), fetched with asyncpg;
   the figures are checked equal first;
2. ``CompareSegments`` of 5 segments (sizes and pairwise overlaps; then also with ``mrr``)
   against one ``CountSegmentMembers`` of the typical segment.

Ratios above 1 mean segmentd is faster (speed ratios: the baseline's time over segmentd's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

import asyncpg
import grpc
from google.protobuf import json_format
from harness import start_server
from membership import (
    SEGMENTS,
    TYPICAL,
    copy_profiles,
    create_database,
    create_segments,
    drop_database,
    generate_profiles,
    plain_dsn,
)
from sqlalchemy.engine import make_url

from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, segments_pb2, segments_pb2_grpc

DEFAULT_DATABASE_URL: Final = "postgresql://postgres@127.0.0.1:5432/segmentd_bench_stats"
TRAITS: Final = ("mrr", "seats_used_pct")
MORE_SEGMENTS: Final = (
    ("bench-pro", {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "pro"}}),
    ("bench-churned", {"condition": {"attribute": "churned", "operator": "EQUALS", "value": True}}),
)
COMPARED: Final = (*(segment.name for segment in SEGMENTS), *(name for name, _ in MORE_SEGMENTS))


def baseline_stats_sql() -> str:
    """The figures of GetSegmentStats as a DBA would write them (one scan, ordered-set aggregates)."""
    values = ",\n".join(
        f"CASE WHEN jsonb_typeof(traits->'{t}') = 'number' THEN (traits->'{t}')::numeric END AS {t}"
        for t in TRAITS
    )
    figures = ",\n".join(
        f"count({t}) FILTER (WHERE m), sum({t}) FILTER (WHERE m), min({t}) FILTER (WHERE m), "
        f"max({t}) FILTER (WHERE m), "
        f"percentile_disc(0.5) WITHIN GROUP (ORDER BY {t}) FILTER (WHERE m), "
        f"percentile_disc(0.9) WITHIN GROUP (ORDER BY {t}) FILTER (WHERE m), sum({t})"
        for t in TRAITS
    )
    # MATERIALIZED, or PostgreSQL inlines `m` (the whole WHERE) into each FILTER: 3x slower.
    return (
        f"WITH p AS MATERIALIZED (SELECT ({TYPICAL.baseline_where.strip()}) IS TRUE AS m,\n{values}\n"
        f"FROM profiles)\nSELECT count(*) FILTER (WHERE m), count(*),\n{figures}\nFROM p"
    )


def median_seconds(samples: Sequence[float]) -> float:
    return statistics.median(samples)


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def interleaved(calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int) -> dict[str, float]:
    """Run each call once per round, in turn; return each one's median seconds."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            samples[name].append(await timed(call))
    return {name: median_seconds(times) for name, times in samples.items()}


def check_same(service: evaluation_pb2.SegmentStats, row: asyncpg.Record) -> list[str]:
    """Differences between the service's figures and the baseline's (empty when they agree)."""
    problems = []
    if (service.member_count, service.population_count) != (row[0], row[1]):
        problems.append(f"counts {service.member_count}/{service.population_count} vs {row[0]}/{row[1]}")
    for index, trait in enumerate(service.traits):
        count, total, low, high, p50, p90, _ = row[2 + 7 * index : 9 + 7 * index]
        expected = (count, float(total), float(low), float(high), float(p50), float(p90))
        got = (trait.count, trait.sum, trait.min, trait.max, trait.p50, trait.p90)
        if got != expected:
            problems.append(f"{trait.attribute}: {got} vs {expected}")
    return problems


async def no_jit(connection: asyncpg.Connection, sql: str) -> asyncpg.Record:
    """The baseline with JIT compilation off for it, as segmentd runs its statistics."""
    async with connection.transaction():
        await connection.execute("SET LOCAL jit = off")
        return await connection.fetchrow(sql)


async def create_more_segments(stub: segments_pb2_grpc.SegmentServiceAsyncStub) -> None:
    await create_segments(stub)
    for name, rule in MORE_SEGMENTS:
        message = json_format.ParseDict({"name": name, "rule": rule}, segments_pb2.Segment())
        await stub.CreateSegment(segments_pb2.CreateSegmentRequest(segment=message))


async def measure(arguments: argparse.Namespace, dsn: str, port: int) -> str:
    connection = await asyncpg.connect(dsn)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await copy_profiles(connection, list(generate_profiles(arguments.profiles)))
        await connection.execute("VACUUM (ANALYZE) profiles")
        await create_more_segments(segments_pb2_grpc.SegmentServiceStub(channel))
        evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        stats_request = evaluation_pb2.GetSegmentStatsRequest(
            segment_name=TYPICAL.name, numeric_traits=TRAITS
        )
        sql = baseline_stats_sql()
        problems = check_same(await evaluation.GetSegmentStats(stats_request), await connection.fetchrow(sql))
        plain = evaluation_pb2.CompareSegmentsRequest(segment_names=COMPARED)
        with_mrr = evaluation_pb2.CompareSegmentsRequest(segment_names=COMPARED, numeric_traits=["mrr"])
        count = evaluation_pb2.CountSegmentMembersRequest(segment_name=TYPICAL.name)
        medians = await interleaved(
            {
                "stats": lambda: evaluation.GetSegmentStats(stats_request),
                "stats baseline": lambda: connection.fetchrow(sql),
                "baseline no jit": lambda: no_jit(connection, sql),
                "compare": lambda: evaluation.CompareSegments(plain),
                "compare mrr": lambda: evaluation.CompareSegments(with_mrr),
                "count": lambda: evaluation.CountSegmentMembers(count),
            },
            arguments.rounds,
        )
    finally:
        await channel.close()
        await connection.close()
    return report(arguments, medians, problems)


def report(arguments: argparse.Namespace, medians: dict[str, float], problems: list[str]) -> str:
    ms = {name: seconds * 1000 for name, seconds in medians.items()}
    lines = [
        f"{arguments.profiles:,} profiles, {arguments.rounds} interleaved rounds, medians",
        f"GetSegmentStats (typical, {len(TRAITS)} traits)  {ms['stats']:8.1f} ms",
        f"hand-written aggregate (asyncpg)       {ms['stats baseline']:8.1f} ms",
        f"  GetSegmentStats speed vs baseline    {medians['stats baseline'] / medians['stats']:8.2f}x",
        f"hand-written aggregate, jit off        {ms['baseline no jit']:8.1f} ms",
        f"  GetSegmentStats speed vs that        {medians['baseline no jit'] / medians['stats']:8.2f}x",
        f"CompareSegments (5 segments)           {ms['compare']:8.1f} ms",
        f"CompareSegments (5 segments, mrr)      {ms['compare mrr']:8.1f} ms",
        f"CountSegmentMembers (typical)          {ms['count']:8.1f} ms",
        f"  CompareSegments time / count time    {medians['compare'] / medians['count']:8.2f}x"
        f"  (with mrr {medians['compare mrr'] / medians['count']:.2f}x)",
        "figures equal to the baseline's: " + ("yes" if not problems else "NO: " + "; ".join(problems)),
    ]
    return "\n".join(lines)


async def main_async(arguments: argparse.Namespace) -> int:
    url = make_url(arguments.database_url)
    await create_database(url, reuse=False)
    try:
        with tempfile.TemporaryDirectory(prefix="segmentd-bench-") as log_dir:
            server = await start_server(plain_dsn(url), Path(log_dir))
            try:
                print(await measure(arguments, plain_dsn(url), server.port))
            finally:
                server.stop()
    finally:
        await drop_database(url)
    return 0


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_arguments(None))))
