"""Membership benchmark: segmentd's ListSegmentMembers against a hand-written SQL query.

    uv run python bench/membership.py [--profiles 1000000] [--database-url URL] [--keep] [--save]

One run does, on a database of its own (``segmentd_bench`` by default, created afresh):

1. starts ``segmentd serve`` as a subprocess on a free port (it migrates the database) and
   waits for the gRPC health status SERVING;
2. generates N synthetic profiles (fixed seed) and loads them through ``ImportProfiles``
   (batches of 1,000 profiles a message); past ``--rpc-import-limit`` profiles the rest is
   loaded with ``COPY`` straight into ``profiles`` (the output says which figure is which);
3. creates three segments with ``CreateSegment``: ``typical`` (five conditions), ``tenth``
   (about 10% of the profiles) and ``everyone`` (every profile);
4. for each segment checks that the service and a hand-written SQL query (the *baseline*,
   streamed through an asyncpg server-side cursor in this process) return the same ids (count
   and SHA-256 of the ordered ids), then times both, interleaved, ``--rounds`` times, and
   reports medians; also ``CountSegmentMembers`` against ``SELECT count(*)``;
5. samples the server's RSS (``/proc/PID/status``) every 100 ms while it streams;
6. prints a results table (``--save``: also ``bench/results/membership-<date>.json``), stops
   the server with SIGTERM and drops the database unless ``--keep``.

``--reuse`` skips steps 2-3 on a database kept by an earlier ``--keep`` run. ``--explain``
prints EXPLAIN (ANALYZE, BUFFERS) of the SQL the service generates for the typical segment
and of the baseline query. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import platform
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
import grpc
from google.protobuf import json_format
from harness import RssSampler, Server, cpu_seconds, rss_kib, start_server
from sqlalchemy.engine import URL, make_url

from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

SEED: Final = 20_260_301
PROFILES_PER_MESSAGE: Final = 1_000
RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
DEFAULT_DATABASE_URL: Final = "postgresql://postgres@127.0.0.1:5432/segmentd_bench"
# Databases this script never drops, whatever --database-url says.
PROTECTED_DATABASES: Final = ("postgres", "test", "template0", "template1", "root")

# ---------------------------------------------------------------------------------------------
# The segments, as the service sees them (rule JSON) and as a DBA would write them (WHERE).


@dataclass(frozen=True)
class BenchSegment:
    name: str
    description: str
    rule: dict[str, Any]
    baseline_where: str


TYPICAL: Final = BenchSegment(
    name="bench-typical",
    description="upgrade candidates: 5 conditions",
    rule={
        "all": {
            "rules": [
                {"condition": {"attribute": "plan", "operator": "IN", "value": ["free", "team"]}},
                {
                    "condition": {
                        "attribute": "seats_used_pct",
                        "operator": "GREATER_THAN_OR_EQUALS",
                        "value": 60,
                    }
                },
                {"condition": {"attribute": "company.size", "operator": "BETWEEN", "value": [10, 500]}},
                {"condition": {"attribute": "country", "operator": "NOT_IN", "value": ["XX"]}},
                {
                    "none": {
                        "rules": [
                            {"condition": {"attribute": "churned", "operator": "EQUALS", "value": True}}
                        ]
                    }
                },
            ]
        }
    },
    # The same semantics (docs/semantics.md): numbers compare with numbers only, a missing or
    # null trait makes a condition false, NOT_IN needs the trait present, `none` is two-valued.
    baseline_where="""
        traits->>'plan' IN ('free', 'team')
        AND jsonb_typeof(traits->'seats_used_pct') = 'number'
        AND traits->'seats_used_pct' >= '60'::jsonb
        AND jsonb_typeof(traits->'company'->'size') = 'number'
        AND traits->'company'->'size' BETWEEN '10'::jsonb AND '500'::jsonb
        AND traits->>'country' <> 'XX'
        AND traits->'churned' IS DISTINCT FROM 'true'::jsonb""",
)
TENTH: Final = BenchSegment(
    name="bench-tenth",
    description="about 10% of the profiles: 1 condition",
    rule={"condition": {"attribute": "seats_used_pct", "operator": "LESS_THAN", "value": 10}},
    baseline_where="""
        jsonb_typeof(traits->'seats_used_pct') = 'number'
        AND traits->'seats_used_pct' < '10'::jsonb""",
)
EVERYONE: Final = BenchSegment(
    name="bench-everyone",
    description="every profile (plan EXISTS)",
    rule={"condition": {"attribute": "plan", "operator": "EXISTS"}},
    baseline_where="jsonb_typeof(traits->'plan') <> 'null'",
)
SEGMENTS: Final = (TYPICAL, TENTH, EVERYONE)


def baseline_sql(segment: BenchSegment) -> str:
    return f"SELECT user_id FROM profiles WHERE {segment.baseline_where.strip()}\nORDER BY user_id"


def baseline_count_sql(segment: BenchSegment) -> str:
    return f"SELECT count(*) FROM profiles WHERE {segment.baseline_where.strip()}"


# ---------------------------------------------------------------------------------------------
# Synthetic profiles.

PLANS: Final = (("free", 55), ("pro", 22), ("team", 15), ("enterprise", 8))
COUNTRIES: Final = (
    ("US", 30), ("GB", 8), ("DE", 8), ("IN", 8), ("FR", 6), ("BR", 5), ("CA", 4), ("JP", 4),
    ("AU", 3), ("NL", 3), ("ES", 3), ("IT", 3), ("SE", 2), ("PL", 2), ("MX", 2), ("XX", 2),
    ("NG", 1), ("KR", 1), ("SG", 1), ("ZA", 1),
)  # fmt: skip
INDUSTRIES: Final = ("saas", "retail", "finance", "health", "education", "media", "logistics", "gaming")
SEAT_PRICE: Final = {"free": 0.0, "pro": 12.0, "team": 20.0, "enterprise": 45.0}
SIGNUP_START: Final = datetime(2019, 1, 1, tzinfo=UTC)
SIGNUP_SPAN_SECONDS: Final = int((datetime(2026, 1, 1, tzinfo=UTC) - SIGNUP_START).total_seconds())
OFFSETS: Final = ("Z", "Z", "Z", "+01:00", "+02:00", "-05:00", "+05:30", "-08:00")


def user_id_width(count: int) -> int:
    return max(7, len(str(count - 1)))


def generate_profiles(count: int, seed: int = SEED) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(user_id, traits)``: deterministic for a seed, ids ascending."""
    rng = random.Random(seed)
    plans = [plan for plan, _ in PLANS]
    countries = [country for country, _ in COUNTRIES]
    plan_cum = list(_cumulative([weight for _, weight in PLANS]))
    country_cum = list(_cumulative([weight for _, weight in COUNTRIES]))
    width = user_id_width(count)
    for index in range(count):
        plan = rng.choices(plans, cum_weights=plan_cum)[0]
        seats = rng.randint(0, 100) if rng.random() < 0.9 else round(rng.uniform(0, 100), 1)
        size = max(1, int(rng.lognormvariate(3.6, 1.4)))
        traits: dict[str, Any] = {
            "plan": plan,
            "seats_used_pct": seats,
            "mrr": round(SEAT_PRICE[plan] * max(1, size // 4) * rng.uniform(0.8, 1.2), 2),
            "company": {"size": size, "industry": rng.choice(INDUSTRIES)},
            "signup_time": _signup_time(rng),
            "app_version": f"{rng.randint(1, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}",
            "churned": rng.random() < 0.08,
        }
        if rng.random() < 0.99:
            traits["country"] = rng.choices(countries, cum_weights=country_cum)[0]
        nps_draw = rng.random()
        if nps_draw < 0.45:
            traits["nps"] = min(10, max(0, round(rng.gauss(7.5, 2.2))))
        elif nps_draw < 0.55:
            traits["nps"] = None  # stored as JSON null: "missing" for every operator
        yield f"user-{index:0{width}d}", traits


def _cumulative(weights: Sequence[int]) -> Iterator[int]:
    total = 0
    for weight in weights:
        total += weight
        yield total


def _signup_time(rng: random.Random) -> str:
    instant = SIGNUP_START + timedelta(seconds=rng.randrange(SIGNUP_SPAN_SECONDS))
    offset = rng.choice(OFFSETS)
    if offset == "Z":
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = 1 if offset[0] == "+" else -1
    local = instant + sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return local.strftime("%Y-%m-%dT%H:%M:%S") + offset


def import_messages(profiles: Sequence[tuple[str, dict[str, Any]]]) -> list[bytes]:
    """The ``ImportProfiles`` stream for ``profiles``, serialized (built before the clock starts)."""
    messages = []
    for start in range(0, len(profiles), PROFILES_PER_MESSAGE):
        request = profiles_pb2.ImportProfilesRequest()
        for user_id, traits in profiles[start : start + PROFILES_PER_MESSAGE]:
            request.profiles.add(user_id=user_id).traits.update(traits)
        messages.append(request.SerializeToString())
    return messages


# ---------------------------------------------------------------------------------------------
# Measurements.


@dataclass
class ProcessCpu:
    """CPU seconds (user + system) of a set of processes, read from /proc."""

    pids: Callable[[], Awaitable[list[int]]]
    start: dict[int, float] = field(default_factory=dict)

    async def begin(self) -> None:
        self.start = {pid: cpu_seconds(pid) for pid in await self.pids()}

    async def seconds(self) -> float:
        now = {pid: cpu_seconds(pid) for pid in await self.pids()}
        return sum(max(0.0, value - self.start.get(pid, 0.0)) for pid, value in now.items())


@dataclass
class StreamRun:
    side: str  # "service" or "baseline"
    members: int
    seconds: float
    digest: str = ""
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    messages: int = 0
    rss_start_kib: int = 0
    rss_peak_kib: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.members / self.seconds if self.seconds else 0.0


class IdDigest:
    """SHA-256 of the ids, each followed by a newline, in the order received."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, user_ids: Sequence[str]) -> None:
        if user_ids:
            self._hash.update(("\n".join(user_ids) + "\n").encode())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


async def stream_service(
    stub: evaluation_pb2_grpc.EvaluationServiceAsyncStub, name: str, digest: IdDigest | None
) -> tuple[int, int]:
    """List every member (``page_size`` 0); return ``(members, messages)``."""
    members = messages = 0
    request = evaluation_pb2.ListSegmentMembersRequest(segment_name=name, page_size=0)
    async for response in stub.ListSegmentMembers(request):
        user_ids = response.user_ids
        members += len(user_ids)
        messages += 1
        if digest is not None:
            digest.add(list(user_ids))
    return members, messages


async def stream_baseline(
    connection: asyncpg.Connection, sql: str, prefetch: int, digest: IdDigest | None
) -> tuple[int, int]:
    """Stream the baseline query through a server-side cursor; return ``(rows, 0)``."""
    members = 0
    held: list[str] = []
    async with connection.transaction(readonly=True):
        async for row in connection.cursor(sql, prefetch=prefetch):
            members += 1
            if digest is not None:
                held.append(row[0])
                if len(held) >= prefetch:
                    digest.add(held)
                    held = []
    if digest is not None:
        digest.add(held)
    return members, 0


@dataclass
class Bench:
    """What the measurements need: the server process, the stubs, database connections."""

    server_pid: int
    evaluation: evaluation_pb2_grpc.EvaluationServiceAsyncStub
    profiles: profiles_pb2_grpc.ProfileServiceAsyncStub
    baseline: asyncpg.Connection  # streams the baseline queries
    monitor: asyncpg.Connection  # finds backend pids; never busy during a run
    prefetch: int

    async def backend_pids(self) -> list[int]:
        rows = await self.monitor.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [int(row["pid"]) for row in rows]

    async def run(self, side: str, segment: BenchSegment, *, verify: bool) -> StreamRun:
        digest = IdDigest() if verify else None
        server_cpu = ProcessCpu(self.server_pids)
        postgres_cpu = ProcessCpu(self.backend_pids)
        await server_cpu.begin()
        await postgres_cpu.begin()
        rss_start = rss_kib(self.server_pid)
        client_start = time.process_time()
        with RssSampler(self.server_pid) as sampler:
            started = time.perf_counter()
            if side == "service":
                members, messages = await stream_service(self.evaluation, segment.name, digest)
            else:
                members, messages = await stream_baseline(
                    self.baseline, baseline_sql(segment), self.prefetch, digest
                )
            seconds = time.perf_counter() - started
        return StreamRun(
            side=side,
            members=members,
            seconds=seconds,
            digest=digest.hexdigest() if digest else "",
            client_cpu=time.process_time() - client_start,
            server_cpu=await server_cpu.seconds(),
            postgres_cpu=await postgres_cpu.seconds(),
            messages=messages,
            rss_start_kib=rss_start,
            rss_peak_kib=max(sampler.samples, default=0),
        )

    async def server_pids(self) -> list[int]:
        return [self.server_pid]


@dataclass
class SegmentResult:
    name: str
    description: str
    members: int
    digest: str
    service_rows_per_second: float
    baseline_rows_per_second: float
    ratio: float
    service_seconds: list[float]
    baseline_seconds: list[float]
    service_cpu: dict[str, float]
    baseline_cpu: dict[str, float]
    service_messages: int
    rss_start_kib: int
    rss_peak_kib: int
    count_service_seconds: float = 0.0
    count_baseline_seconds: float = 0.0
    count: int = 0


def _median_cpu(runs: Sequence[StreamRun]) -> dict[str, float]:
    return {
        "client": statistics.median(run.client_cpu for run in runs),
        "server": statistics.median(run.server_cpu for run in runs),
        "postgres": statistics.median(run.postgres_cpu for run in runs),
    }


async def measure_segment(bench: Bench, segment: BenchSegment, rounds: int) -> SegmentResult:
    """Verify the service against the baseline, then time both ``rounds`` times, interleaved."""
    print(f"  {segment.name}: verifying ...", flush=True)
    checked = {side: await bench.run(side, segment, verify=True) for side in ("service", "baseline")}
    service, baseline = checked["service"], checked["baseline"]
    if (service.members, service.digest) != (baseline.members, baseline.digest):
        raise SystemExit(
            f"MISMATCH on {segment.name}: service {service.members} ids (sha256 {service.digest}), "
            f"baseline {baseline.members} ids (sha256 {baseline.digest})"
        )
    runs: dict[str, list[StreamRun]] = {"service": [], "baseline": []}
    for round_number in range(rounds):
        # Alternate which side goes first, so that neither always finds the cache warmer.
        order = ("service", "baseline") if round_number % 2 == 0 else ("baseline", "service")
        for side in order:
            run = await bench.run(side, segment, verify=False)
            if run.members != service.members:
                raise SystemExit(
                    f"{segment.name}: {side} returned {run.members} ids, expected {service.members}"
                )
            runs[side].append(run)
            print(
                f"  {segment.name}: round {round_number + 1} {side:8} {run.seconds:7.2f} s "
                f"{run.rows_per_second:12,.0f} rows/s",
                flush=True,
            )
    service_rate = statistics.median(run.rows_per_second for run in runs["service"])
    baseline_rate = statistics.median(run.rows_per_second for run in runs["baseline"])
    service_runs = [service, *runs["service"]]
    return SegmentResult(
        name=segment.name,
        description=segment.description,
        members=service.members,
        digest=service.digest,
        service_rows_per_second=service_rate,
        baseline_rows_per_second=baseline_rate,
        ratio=service_rate / baseline_rate if baseline_rate else 0.0,
        service_seconds=[run.seconds for run in runs["service"]],
        baseline_seconds=[run.seconds for run in runs["baseline"]],
        service_cpu=_median_cpu(runs["service"]),
        baseline_cpu=_median_cpu(runs["baseline"]),
        service_messages=service.messages,
        rss_start_kib=service_runs[0].rss_start_kib,
        rss_peak_kib=max(run.rss_peak_kib for run in service_runs),
    )


async def measure_count(bench: Bench, segment: BenchSegment, result: SegmentResult, rounds: int) -> None:
    """Time CountSegmentMembers against ``SELECT count(*)``, interleaved; medians into ``result``."""
    timings: dict[str, list[float]] = {"service": [], "baseline": []}
    counts: set[int] = set()
    for round_number in range(rounds + 1):  # round 0 warms up and is not kept
        order = ("service", "baseline") if round_number % 2 == 0 else ("baseline", "service")
        for side in order:
            started = time.perf_counter()
            if side == "service":
                response = await bench.evaluation.CountSegmentMembers(
                    evaluation_pb2.CountSegmentMembersRequest(segment_name=segment.name)
                )
                count = int(response.count)
            else:
                # fetch, not fetchval: asyncpg runs fetchval with a row limit, and PostgreSQL
                # never runs a portal with a row limit in parallel.
                count = int((await bench.baseline.fetch(baseline_count_sql(segment)))[0][0])
            seconds = time.perf_counter() - started
            counts.add(count)
            if round_number:
                timings[side].append(seconds)
    if counts != {result.members}:
        raise SystemExit(
            f"{segment.name}: counts {sorted(counts)} differ from {result.members} members listed"
        )
    result.count = result.members
    result.count_service_seconds = statistics.median(timings["service"])
    result.count_baseline_seconds = statistics.median(timings["baseline"])


# ---------------------------------------------------------------------------------------------
# The database and the server.


def admin_dsn(url: URL) -> str:
    return url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def plain_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(url: URL, *, reuse: bool) -> None:
    name = url.database or ""
    if name in PROTECTED_DATABASES or name.startswith(("segmentd_test", "template")):
        raise SystemExit(
            f"refusing to use database {name!r}: pick one for the benchmark, e.g. segmentd_bench"
        )
    connection = await asyncpg.connect(admin_dsn(url))
    try:
        exists = await connection.fetchval("SELECT true FROM pg_database WHERE datname = $1", name)
        if reuse:
            if not exists:
                raise SystemExit(f"--reuse: database {name!r} does not exist (run once with --keep)")
            return
        if exists:
            if not name.startswith("segmentd_bench"):
                raise SystemExit(f"database {name!r} exists; only segmentd_bench* databases are recreated")
            await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(url: URL) -> None:
    connection = await asyncpg.connect(admin_dsn(url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await connection.close()


# ---------------------------------------------------------------------------------------------
# Loading.


@dataclass
class LoadResult:
    profiles: int
    rpc_profiles: int = 0
    rpc_calls: int = 0
    rpc_seconds: float = 0.0
    rpc_build_seconds: float = 0.0
    rpc_call_rates: list[float] = field(default_factory=list)
    copy_profiles: int = 0
    copy_seconds: float = 0.0
    baseline_copy_seconds: float = 0.0
    generate_seconds: float = 0.0
    vacuum_seconds: float = 0.0
    rpc_cpu: dict[str, float] = field(default_factory=dict)
    rss_before_import_kib: int = 0
    rss_peak_import_kib: int = 0
    rss_after_import_kib: int = 0
    reimport_seconds: float = 0.0

    @property
    def rpc_rows_per_second(self) -> float:
        return self.rpc_profiles / self.rpc_seconds if self.rpc_seconds else 0.0

    @property
    def copy_rows_per_second(self) -> float:
        return self.copy_profiles / self.copy_seconds if self.copy_seconds else 0.0

    @property
    def baseline_copy_rows_per_second(self) -> float:
        return self.rpc_profiles / self.baseline_copy_seconds if self.baseline_copy_seconds else 0.0

    @property
    def reimport_rows_per_second(self) -> float:
        return self.rpc_profiles / self.reimport_seconds if self.reimport_seconds else 0.0

    @property
    def import_ratio(self) -> float:
        rate = self.baseline_copy_rows_per_second
        return self.rpc_rows_per_second / rate if rate else 0.0


async def _requests(messages: Sequence[bytes]) -> AsyncIterator[profiles_pb2.ImportProfilesRequest]:
    for message in messages:
        yield profiles_pb2.ImportProfilesRequest.FromString(message)


async def import_rpc(
    bench: Bench, profiles: Sequence[tuple[str, dict[str, Any]]], call_size: int, result: LoadResult
) -> None:
    """Load ``profiles`` with ImportProfiles calls of ``call_size``; record times, CPU, RSS in ``result``.

    The messages of each call are built before its clock starts; CPU and RSS cover the calls only.
    """
    cpu = {"client": 0.0, "server": 0.0, "postgres": 0.0}
    result.rss_before_import_kib = rss_kib(bench.server_pid)
    for start in range(0, len(profiles), call_size):
        part = profiles[start : start + call_size]
        built = time.perf_counter()
        messages = import_messages(part)
        result.rpc_build_seconds += time.perf_counter() - built
        server_cpu, postgres_cpu = ProcessCpu(bench.server_pids), ProcessCpu(bench.backend_pids)
        await server_cpu.begin()
        await postgres_cpu.begin()
        client_start = time.process_time()
        with RssSampler(bench.server_pid) as sampler:
            started = time.perf_counter()
            response = await bench.profiles.ImportProfiles(_requests(messages), timeout=3600)
            seconds = time.perf_counter() - started
        cpu["client"] += time.process_time() - client_start
        cpu["server"] += await server_cpu.seconds()
        cpu["postgres"] += await postgres_cpu.seconds()
        result.rss_peak_import_kib = max(result.rss_peak_import_kib, *sampler.samples)
        if response.imported != len(part):
            raise SystemExit(f"ImportProfiles imported {response.imported} of {len(part)} profiles")
        result.rpc_seconds += seconds
        result.rpc_call_rates.append(len(part) / seconds)
        print(
            f"  ImportProfiles: {start + len(part):,} / {len(profiles):,} profiles "
            f"({len(part) / seconds:,.0f} rows/s for this call)",
            flush=True,
        )
    result.rpc_cpu = cpu


async def copy_profiles(
    connection: asyncpg.Connection, profiles: Sequence[tuple[str, dict[str, Any]]]
) -> float:
    """COPY straight into ``profiles`` (what an import writes, minus the merge); return seconds."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, len(profiles), 100_000):
        records = [
            (user_id, json.dumps(traits, separators=(",", ":"), ensure_ascii=False), now, now)
            for user_id, traits in profiles[start : start + 100_000]
        ]
        await connection.copy_records_to_table(
            "profiles", records=records, columns=["user_id", "traits", "create_time", "update_time"]
        )
    return time.perf_counter() - started


async def copy_baseline(
    connection: asyncpg.Connection, profiles: Sequence[tuple[str, dict[str, Any]]]
) -> float:
    """COPY ``profiles`` into an empty copy of ``profiles`` (its indexes too); return seconds.

    The import's baseline: what PostgreSQL takes to write the same rows with nothing in the
    way. The records are built before the clock starts, as the import's messages are.
    """
    now = datetime.now(UTC)
    batches = [
        [
            (user_id, json.dumps(traits, separators=(",", ":"), ensure_ascii=False), now, now)
            for user_id, traits in profiles[start : start + 100_000]
        ]
        for start in range(0, len(profiles), 100_000)
    ]
    await connection.execute("DROP TABLE IF EXISTS bench_copy_baseline")
    await connection.execute("CREATE TABLE bench_copy_baseline (LIKE profiles INCLUDING ALL)")
    try:
        started = time.perf_counter()
        for records in batches:
            await connection.copy_records_to_table(
                "bench_copy_baseline",
                records=records,
                columns=["user_id", "traits", "create_time", "update_time"],
            )
        return time.perf_counter() - started
    finally:
        await connection.execute("DROP TABLE bench_copy_baseline")


async def load(arguments: argparse.Namespace, bench: Bench) -> LoadResult:
    connection = bench.monitor
    result = LoadResult(profiles=arguments.profiles)
    started = time.perf_counter()
    profiles = list(generate_profiles(arguments.profiles))
    result.generate_seconds = time.perf_counter() - started
    rpc_part = profiles[: min(arguments.rpc_import_limit, len(profiles))]
    result.rpc_profiles, result.rpc_calls = len(rpc_part), -(-len(rpc_part) // arguments.import_call_size)
    print(f"generated {len(profiles):,} profiles in {result.generate_seconds:.1f} s", flush=True)
    await import_rpc(bench, rpc_part, arguments.import_call_size, result)
    if rpc_part:
        result.baseline_copy_seconds = await copy_baseline(connection, rpc_part)
    rest = profiles[len(rpc_part) :]
    if rest:
        print(f"  COPY: the remaining {len(rest):,} profiles straight into profiles ...", flush=True)
        result.copy_profiles = len(rest)
        result.copy_seconds = await copy_profiles(connection, rest)
    started = time.perf_counter()
    await connection.execute("VACUUM (ANALYZE) profiles")
    result.vacuum_seconds = time.perf_counter() - started
    return result


async def create_segments(stub: segments_pb2_grpc.SegmentServiceAsyncStub) -> None:
    for segment in SEGMENTS:
        message = json_format.ParseDict(
            {"name": segment.name, "description": segment.description, "rule": segment.rule},
            segments_pb2.Segment(),
        )
        await stub.CreateSegment(segments_pb2.CreateSegmentRequest(segment=message))


# ---------------------------------------------------------------------------------------------
# EXPLAIN of the generated SQL.


def generated_sql(segment: BenchSegment) -> str:
    """The membership query the service runs for ``segment``, constants inlined."""
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    from segmentd.engine.codec import rule_from_json
    from segmentd.sqlgen.compiler import compile_rule_sql
    from segmentd.store.models import EventCountRow, ProfileRow

    def no_references(name: str) -> Any:
        raise LookupError(name)

    profiles = ProfileRow.__table__
    condition = compile_rule_sql(
        rule_from_json(segment.rule),
        dialect="postgresql",
        profiles=profiles,
        events=EventCountRow.__table__,
        now=datetime.now(UTC),
        percentile_thresholds={},
        resolve_rule=no_references,
    )
    user_id = profiles.c.user_id
    compiled = select(user_id).where(condition).order_by(user_id).compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]

    # SQLAlchemy renders no JSONB literals (literal_binds): inline the parameters ourselves.
    def inline(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        return sql_literal(compiled.params[name], compiled.binds[name].type)

    return re.sub(r"%\((\w+)\)s|%%", inline, compiled.string)


def sql_literal(value: object, type_: Any) -> str:
    """``value`` as a PostgreSQL constant of the bind's type."""
    from sqlalchemy.dialects.postgresql import JSONB

    if isinstance(type_, JSONB):  # the compiled SQL casts it (::JSONB) already
        return _quote(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return _quote(value.isoformat()) + "::timestamptz"
    return _quote(str(value))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def explain(connection: asyncpg.Connection, sql: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) as the listing runs it.

    A listing reads a cursor, which PostgreSQL never runs with parallel workers: the plan is
    the same, but the leader does all the work. ``max_parallel_workers = 0`` does just that.
    """
    async with connection.transaction():
        await connection.execute("SET LOCAL max_parallel_workers = 0")
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
    return "\n".join(row[0] for row in rows)


async def print_explains(connection: asyncpg.Connection) -> dict[str, str]:
    texts = {}
    for label, sql in (("generated", generated_sql(TYPICAL)), ("baseline", baseline_sql(TYPICAL))):
        plan = await explain(connection, sql)
        texts[label] = f"{sql}\n\n{plan}"
        print(f"\n--- {label} SQL ({TYPICAL.name}) ---\n{sql}\n\n{plan}")
    return texts


# ---------------------------------------------------------------------------------------------
# Report.


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def report(environment: dict[str, Any], loaded: LoadResult | None, results: Sequence[SegmentResult]) -> str:
    lines = [
        f"segmentd membership benchmark  {environment['date']}  {environment['profiles']:,} profiles  "
        f"{environment['cpus']} CPUs  {environment['postgres']}",
    ]
    if loaded is not None:
        lines += _load_lines(loaded)
    lines += [
        "",
        f"ListSegmentMembers (page_size 0) vs baseline SQL (asyncpg cursor, prefetch"
        f" {environment['prefetch']}); median of {environment['rounds']} interleaved rounds",
        f"{'segment':16}{'members':>11}{'service rows/s':>16}{'baseline rows/s':>17}{'ratio':>7}"
        f"{'service CPU s client/server/pg':>33}{'baseline CPU s client/pg':>27}",
    ]
    for result in results:
        service_cpu, baseline_cpu = result.service_cpu, result.baseline_cpu
        lines.append(
            f"{result.name:16}{result.members:>11,}{result.service_rows_per_second:>16,.0f}"
            f"{result.baseline_rows_per_second:>17,.0f}{result.ratio:>7.2f}"
            f"{service_cpu['client']:>15.2f}/{service_cpu['server']:.2f}/{service_cpu['postgres']:.2f}"
            f"{baseline_cpu['client']:>20.2f}/{baseline_cpu['postgres']:.2f}"
        )
    lines += ["", "server RSS while streaming (sampled every 100 ms)"]
    for result in results:
        lines.append(
            f"  {result.name:16} start {_mib(result.rss_start_kib):>9}  peak {_mib(result.rss_peak_kib):>9}  "
            f"(+{_mib(result.rss_peak_kib - result.rss_start_kib)}; {result.members:,} members, "
            f"{result.service_messages:,} messages)"
        )
    lines += [
        "",
        f"count (median of {environment['rounds']}): CountSegmentMembers vs SELECT count(*);"
        " ratio = baseline time / service time",
    ]
    for result in results:
        ratio = (
            result.count_baseline_seconds / result.count_service_seconds
            if result.count_service_seconds
            else 0
        )
        lines.append(
            f"  {result.name:16} {result.count:>11,}  service {result.count_service_seconds * 1000:8.1f} ms  "
            f"baseline {result.count_baseline_seconds * 1000:8.1f} ms  ratio {ratio:.2f}"
        )
    return "\n".join(lines)


def _load_lines(loaded: LoadResult) -> list[str]:
    lines = [
        "",
        f"load: generated {loaded.profiles:,} profiles in {loaded.generate_seconds:.1f} s (seed {SEED})",
        f"  ImportProfiles (gRPC, {PROFILES_PER_MESSAGE} profiles/message, {loaded.rpc_calls} call(s)): "
        f"{loaded.rpc_profiles:,} profiles in {loaded.rpc_seconds:.1f} s = "
        f"{loaded.rpc_rows_per_second:,.0f} rows/s  [import rows/s; messages built beforehand in "
        f"{loaded.rpc_build_seconds:.1f} s]",
    ]
    if loaded.baseline_copy_seconds:
        lines.append(
            f"  baseline: COPY of the same {loaded.rpc_profiles:,} rows into an empty table like profiles"
            f" (same indexes): {loaded.baseline_copy_seconds:.1f} s"
            f" = {loaded.baseline_copy_rows_per_second:,.0f} rows/s;"
            f" ImportProfiles ratio {loaded.import_ratio:.2f}"
        )
    if loaded.reimport_seconds:
        lines.append(
            f"  ImportProfiles again, merged onto the stored profiles: {loaded.reimport_seconds:.1f} s"
            f" = {loaded.reimport_rows_per_second:,.0f} rows/s"
        )
    if loaded.rpc_calls > 1:
        lines.append(
            "    per call: " + ", ".join(f"{rate:,.0f}" for rate in loaded.rpc_call_rates) + " rows/s"
        )
    if loaded.copy_profiles:
        lines.append(
            f"  COPY into profiles (NOT the service; loads the rest): {loaded.copy_profiles:,} profiles in "
            f"{loaded.copy_seconds:.1f} s = {loaded.copy_rows_per_second:,.0f} rows/s"
        )
    cpu = loaded.rpc_cpu
    lines.append(
        f"    CPU s during the calls: client {cpu.get('client', 0):.1f}, server {cpu.get('server', 0):.1f}, "
        f"postgres {cpu.get('postgres', 0):.1f}; server RSS {_mib(loaded.rss_before_import_kib)} before, "
        f"{_mib(loaded.rss_peak_import_kib)} peak, {_mib(loaded.rss_after_import_kib)} after"
    )
    lines.append(f"  VACUUM (ANALYZE) profiles: {loaded.vacuum_seconds:.1f} s")
    return lines


# ---------------------------------------------------------------------------------------------
# Main.


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark ListSegmentMembers against hand-written SQL.")
    parser.add_argument(
        "--profiles", type=int, default=1_000_000, help="profiles to generate (default 1,000,000)"
    )
    parser.add_argument(
        "--database-url", default=DEFAULT_DATABASE_URL, help=f"default {DEFAULT_DATABASE_URL}"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="use the data of a database kept with --keep (implies --keep)"
    )
    parser.add_argument("--save", action="store_true", help="write bench/results/membership-<date>.json")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side (default 3)")
    parser.add_argument(
        "--rpc-import-limit",
        type=int,
        default=sys.maxsize,
        help="load at most this many profiles through ImportProfiles, the rest with COPY (default: all)",
    )
    parser.add_argument(
        "--import-call-size",
        type=int,
        default=1_000_000,
        help="profiles per ImportProfiles call (default 1,000,000)",
    )
    parser.add_argument(
        "--prefetch", type=int, default=1_000, help="baseline cursor prefetch (default 1,000)"
    )
    parser.add_argument(
        "--segments", default="typical,tenth,everyone", help="which segments to measure (default all three)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of both queries"
    )
    parser.add_argument(
        "--server-command",
        default="",
        help="run this instead of `segmentd` (e.g. a profiling wrapper); `serve ...` is appended",
    )
    return parser.parse_args(argv)


async def postgres_version(connection: asyncpg.Connection) -> str:
    version = str(await connection.fetchval("SHOW server_version"))
    return f"PostgreSQL {version.split()[0]}"


async def reimport(arguments: argparse.Namespace, bench: Bench, loaded: LoadResult) -> None:
    """Import the profiles ``loaded`` imported again, merged onto themselves (the nightly re-sync)."""
    again = LoadResult(profiles=loaded.rpc_profiles)
    profiles = list(itertools.islice(generate_profiles(arguments.profiles), loaded.rpc_profiles))
    await import_rpc(bench, profiles, arguments.import_call_size, again)
    loaded.reimport_seconds = again.rpc_seconds
    await bench.monitor.execute("VACUUM (ANALYZE) profiles")  # for a later --reuse
    print(f"ImportProfiles again, merged onto the stored profiles: {loaded.reimport_seconds:.1f} s")


async def measure_segment_and_count(bench: Bench, segment: BenchSegment, rounds: int) -> SegmentResult:
    result = await measure_segment(bench, segment, rounds)
    await measure_count(bench, segment, result, rounds)
    return result


async def measure(arguments: argparse.Namespace, url: URL, server: Server) -> dict[str, Any]:
    wanted = {f"bench-{name.strip()}" for name in arguments.segments.split(",")}
    environment: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "profiles": arguments.profiles,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "rounds": arguments.rounds,
        "prefetch": arguments.prefetch,
    }
    baseline = await asyncpg.connect(plain_dsn(url))
    monitor = await asyncpg.connect(plain_dsn(url))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        environment["postgres"] = await postgres_version(monitor)
        bench = Bench(
            server.process.pid,
            evaluation_pb2_grpc.EvaluationServiceStub(channel),
            profiles_pb2_grpc.ProfileServiceStub(channel),
            baseline,
            monitor,
            arguments.prefetch,
        )
        loaded = None
        if not arguments.reuse:
            loaded = await load(arguments, bench)
            loaded.rss_after_import_kib = rss_kib(server.process.pid)
            await create_segments(segments_pb2_grpc.SegmentServiceStub(channel))
        environment["profiles"] = int(await monitor.fetchval("SELECT count(*) FROM profiles"))
        print("measuring ...", flush=True)
        results = [
            await measure_segment_and_count(bench, s, arguments.rounds) for s in SEGMENTS if s.name in wanted
        ]
        explains = await print_explains(monitor) if arguments.explain else {}
        if loaded is not None and loaded.rpc_profiles:  # last: it leaves a dead version of every row
            await reimport(arguments, bench, loaded)
    finally:
        await channel.close()
        await baseline.close()
        await monitor.close()
    text = report(environment, loaded, results)
    print("\n" + text)
    return {
        "environment": environment,
        "load": asdict(loaded) if loaded else None,
        "segments": [asdict(result) for result in results],
        "explain": explains,
        "report": text,
    }


async def main_async(arguments: argparse.Namespace) -> int:
    url = make_url(arguments.database_url)
    await create_database(url, reuse=arguments.reuse)
    server: Server | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="segmentd-bench-") as log_dir:
            server = await start_server(plain_dsn(url), Path(log_dir), arguments.server_command)
            print(
                f"segmentd serve: pid {server.process.pid}, port {server.port}, database {url.database}",
                flush=True,
            )
            try:
                outcome = await measure(arguments, url, server)
            finally:
                status = server.stop()
                if status not in (0, -signal.SIGTERM):
                    print(f"segmentd serve exited with {status}; its log:\n{server.log_path.read_text()}")
        if arguments.save:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            path = RESULTS_DIR / f"membership-{datetime.now(UTC).strftime('%Y-%m-%d')}.json"
            path.write_text(json.dumps(outcome, indent=2) + "\n")
            print(f"saved {path}")
    finally:
        if server is not None:
            server.stop()
        if arguments.keep or arguments.reuse:  # a reused database was not ours to drop
            print(f"kept database {url.database}")
        else:
            await drop_database(url)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    return asyncio.run(main_async(arguments))


if __name__ == "__main__":
    sys.exit(main())
