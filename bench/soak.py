"""Soak: mixed load on one ``segmentd serve`` process for a bounded time, on loopback only.

    uv run python bench/soak.py [--minutes 10] [--database-url URL] [--profiles 5000]

Starts the server on 127.0.0.1 (SQLite in a temporary directory by default), loads a
catalogue of 100 segments and ``--profiles`` profiles, then runs until ``--minutes`` have
passed, with ``--concurrency`` callers in a mix of EvaluateUser (70%), RecordEvents (15%),
UpsertProfile (10%) and complete ListSegmentMembers listings (5%), plus ``--slow-readers``
listings that read one message every ``--slow-read-seconds`` (a stalled client). Every call
has a 5 s deadline. Each interval (a minute by default) prints the calls, the errors by
status code and the p99 latency per RPC; at the end, the server's RSS at start and end,
and the totals. Exits non-zero when any call failed. It stops by itself: every loop ends
at the deadline, and the server is stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import workload
from google.protobuf import json_format
from harness import rss_kib, start_server

from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

DEADLINE_SECONDS = 5.0
MIX = (("EvaluateUser", 70), ("RecordEvents", 15), ("UpsertProfile", 10), ("ListSegmentMembers", 5))


@dataclass
class Interval:
    """What one interval saw: latencies per RPC, and failures by (RPC, status code)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)


@dataclass
class Soak:
    """The running soak: its stubs, its user ids, and the interval being recorded."""

    evaluation: Any
    profiles: Any
    user_ids: list[str]
    segment_names: list[str]
    ends_at: float
    current: Interval = field(default_factory=Interval)
    total_calls: int = 0
    total_errors: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    async def timed(self, rpc: str, call: Callable[[], Awaitable[object]]) -> None:
        started = time.perf_counter()
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            self.current.errors[(rpc, error.code().name)] += 1
            self.total_errors[(rpc, error.code().name)] += 1
        else:
            self.current.latencies[rpc].append(time.perf_counter() - started)
        self.total_calls += 1


async def _listing(soak: Soak, segment: str) -> None:
    request = evaluation_pb2.ListSegmentMembersRequest(segment_name=segment)
    async for _ in soak.evaluation.ListSegmentMembers(request, timeout=DEADLINE_SECONDS):
        pass


async def _one_call(soak: Soak, rng: random.Random) -> None:
    rpc = rng.choices([name for name, _ in MIX], [weight for _, weight in MIX])[0]
    user_id = rng.choice(soak.user_ids)
    if rpc == "EvaluateUser":
        request: Any = evaluation_pb2.EvaluateUserRequest(user_id=user_id)
        await soak.timed(rpc, lambda: soak.evaluation.EvaluateUser(request, timeout=DEADLINE_SECONDS))
    elif rpc == "RecordEvents":
        event = profiles_pb2.Event(user_id=user_id, name=rng.choice(workload.EVENT_NAMES), count=1)
        event.time.FromDatetime(datetime.now(UTC))
        request = profiles_pb2.RecordEventsRequest(events=[event])
        await soak.timed(rpc, lambda: soak.profiles.RecordEvents(request, timeout=DEADLINE_SECONDS))
    elif rpc == "UpsertProfile":
        profile = profiles_pb2.Profile(user_id=user_id)
        profile.traits.update({"mrr": rng.randrange(1000), "nps": rng.randrange(11)})
        request = profiles_pb2.UpsertProfileRequest(profile=profile)
        await soak.timed(rpc, lambda: soak.profiles.UpsertProfile(request, timeout=DEADLINE_SECONDS))
    else:
        segment = rng.choice(soak.segment_names)
        await soak.timed(rpc, lambda: _listing(soak, segment))


async def _caller(soak: Soak, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < soak.ends_at:
        await _one_call(soak, rng)


async def _slow_reader(soak: Soak, seed: int, pause: float) -> None:
    """Read a whole-population listing one message at a time, slowly; start again at its end."""
    rng = random.Random(seed)
    while time.monotonic() < soak.ends_at:
        request = evaluation_pb2.ListSegmentMembersRequest(segment_name=rng.choice(soak.segment_names))
        call = soak.evaluation.ListSegmentMembers(request)  # no deadline: it is meant to be slow
        try:
            while time.monotonic() < soak.ends_at and await call.read() is not grpc.aio.EOF:
                await asyncio.sleep(pause)
        except grpc.aio.AioRpcError as error:
            soak.total_errors[("slow ListSegmentMembers", error.code().name)] += 1
        finally:
            call.cancel()


def _p99_ms(latencies: list[float]) -> str:
    if not latencies:
        return "-"
    ordered = sorted(latencies)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000:.1f}"


def _report(index: int, interval: Interval, pid: int) -> None:
    calls = sum(map(len, interval.latencies.values())) + sum(interval.errors.values())
    p99 = ", ".join(f"{rpc} {_p99_ms(interval.latencies[rpc])}" for rpc, _ in MIX)
    errors = dict(interval.errors) or "none"
    print(
        f"interval {index}: {calls} calls, errors {errors}; p99 ms: {p99}; RSS {rss_kib(pid) / 1024:.0f} MiB"
    )


async def _load(arguments: argparse.Namespace, port: int) -> tuple[list[str], list[str]]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        segments = segments_pb2_grpc.SegmentServiceStub(channel)
        for definition in workload.segment_definitions(100):
            segment = json_format.ParseDict(definition, segments_pb2.Segment())
            await segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment))
        people = workload.population(arguments.profiles)
        batch = profiles_pb2.ImportProfilesRequest()
        for user_id, traits in people:
            batch.profiles.add(user_id=user_id).traits.update(traits)

        async def stream() -> Any:
            yield batch

        await profiles_pb2_grpc.ProfileServiceStub(channel).ImportProfiles(stream())
    return [user_id for user_id, _ in people], [d["name"] for d in workload.segment_definitions(100)]


async def _run(arguments: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="segmentd-soak-") as directory:
        url = arguments.database_url or f"sqlite:///{Path(directory) / 'soak.db'}"
        server = await start_server(url, Path(directory))
        try:
            user_ids, names = await _load(arguments, server.port)
            rss_start = rss_kib(server.process.pid)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                soak = Soak(
                    evaluation_pb2_grpc.EvaluationServiceStub(channel),
                    profiles_pb2_grpc.ProfileServiceStub(channel),
                    user_ids,
                    names,
                    time.monotonic() + arguments.minutes * 60,
                )
                tasks = [asyncio.create_task(_caller(soak, seed)) for seed in range(arguments.concurrency)]
                tasks += [
                    asyncio.create_task(_slow_reader(soak, 1000 + seed, arguments.slow_read_seconds))
                    for seed in range(arguments.slow_readers)
                ]
                index = 0
                while time.monotonic() < soak.ends_at:
                    await asyncio.sleep(min(arguments.interval, max(0.0, soak.ends_at - time.monotonic())))
                    index += 1
                    interval, soak.current = soak.current, Interval()
                    _report(index, interval, server.process.pid)
                await asyncio.gather(*tasks)
            rss_end = rss_kib(server.process.pid)
        finally:
            code = server.stop()
    print(f"RSS start {rss_start / 1024:.0f} MiB, end {rss_end / 1024:.0f} MiB; server exit code {code}")
    print(f"total: {soak.total_calls} calls, errors {dict(soak.total_errors) or 'none'}")
    return 1 if soak.total_errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per reported interval")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument("--profiles", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--slow-readers", type=int, default=8)
    parser.add_argument("--slow-read-seconds", type=float, default=2.0)
    return asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
