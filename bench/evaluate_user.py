"""EvaluateUser against the ceiling: a trivial grpc.aio unary handler, under the same load.

    uv run python bench/evaluate_user.py [--rounds 5] [--seconds 4] [--concurrency 64]
                                         [--database-url URL] [--save]

One run, in a temporary folder:

1. starts ``segmentd serve`` with its default settings (the embedded SQLite store, unless
   ``--database-url``) and, beside it, the *ceiling*: this script's own trivial grpc.aio server
   whose ``EvaluateUser`` returns a constant answer (``--trivial-server``), each a process;
2. loads 100 segments (``bench/workload.py``: ~5 conditions, nested groups, mixed operators,
   one event condition each), 1,000 profiles and a few weeks of events, through the API;
3. warms the caches (every user evaluated once), then times, in interleaved rounds, 64 calls
   in flight from this process's grpc.aio client against: the ceiling; segmentd, reads only;
   segmentd with 10% of the calls writes (UpsertProfile or RecordEvents, random users);
4. reports medians: calls/s, p50, p99, the ratios to the ceiling, and the cache hit rate
   (a verdict whose ``profile_read_at`` precedes its ``evaluated_at`` came from the cache);
5. after the writes stop, checks every user's cached verdict against a STRONG one: any
   difference is a stale verdict, reported (target: none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import grpc
import workload
from google.protobuf import json_format
from grpc_health.v1 import health, health_pb2_grpc
from harness import Server, cpu_seconds, start_process, start_server

from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
WRITE_SHARE: Final = 0.10


# ---------------------------------------------------------------------------------------------
# The ceiling: a trivial handler, in a process of its own like segmentd's.


def _trivial_handler() -> grpc.GenericRpcHandler:
    """``EvaluateUser`` answering every call with the same message, doing nothing else."""
    answer = evaluation_pb2.EvaluateUserResponse(segments=["segment-000"])
    answer.evaluated_at.GetCurrentTime()

    async def evaluate_user(
        _request: evaluation_pb2.EvaluateUserRequest, _context: grpc.aio.ServicerContext[Any, Any]
    ) -> evaluation_pb2.EvaluateUserResponse:
        return answer

    handler = grpc.unary_unary_rpc_method_handler(
        evaluate_user,
        request_deserializer=evaluation_pb2.EvaluateUserRequest.FromString,
        response_serializer=evaluation_pb2.EvaluateUserResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler("segmentd.v1.EvaluationService", {"EvaluateUser": handler})


async def serve_trivial() -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_trivial_handler(),))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"trivial serving on port {port}", flush=True)
    await server.wait_for_termination()


# ---------------------------------------------------------------------------------------------
# Loading.


async def load(channel: grpc.aio.Channel, users: Sequence[str]) -> None:
    segments = segments_pb2_grpc.SegmentServiceStub(channel)
    for definition in workload.segment_definitions(100):
        segment = json_format.ParseDict(definition, segments_pb2.Segment())
        await segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment))
    profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
    for user_id, traits in workload.population(len(users)):
        await profiles.UpsertProfile(upsert_request(user_id, traits))
    batch = []
    for user_id, name, days_ago, count in workload.events(users):
        event = profiles_pb2.Event(user_id=user_id, name=name, count=count)
        event.time.FromDatetime(datetime.now(UTC) - timedelta(days=days_ago))
        batch.append(event)
    for start in range(0, len(batch), 500):
        await profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=batch[start : start + 500]))


def upsert_request(user_id: str, traits: dict[str, Any]) -> profiles_pb2.UpsertProfileRequest:
    profile = profiles_pb2.Profile(user_id=user_id)
    profile.traits.update(traits)
    return profiles_pb2.UpsertProfileRequest(profile=profile)


# ---------------------------------------------------------------------------------------------
# Load generation.


@dataclass
class Round:
    target: str
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float
    hits: int
    evaluations: int
    server_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


class Load:
    """``concurrency`` callers in a loop, each timing its calls, for ``seconds``."""

    def __init__(self, channel: grpc.aio.Channel, users: Sequence[str], write_share: float) -> None:
        self._evaluate = evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser
        self._profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
        self._requests = [evaluation_pb2.EvaluateUserRequest(user_id=user_id) for user_id in users]
        self._users = users
        self._write_share = write_share
        self.latencies: list[float] = []
        self.hits = 0
        self.evaluations = 0

    async def run(self, seconds: float, concurrency: int) -> int:
        stop = time.perf_counter() + seconds
        calls = await asyncio.gather(*(self._caller(stop, random.Random(n)) for n in range(concurrency)))
        return sum(calls)

    async def _caller(self, stop: float, rng: random.Random) -> int:
        calls = 0
        while (started := time.perf_counter()) < stop:
            await self._one_call(rng)
            self.latencies.append(time.perf_counter() - started)
            calls += 1
        return calls

    async def _one_call(self, rng: random.Random) -> None:
        if self._write_share and rng.random() < self._write_share:
            await self._write(rng)
            return
        answer = await self._evaluate(rng.choice(self._requests))
        self.evaluations += 1
        if answer.HasField("profile_read_at") and answer.profile_read_at.ToNanoseconds() < (
            answer.evaluated_at.ToNanoseconds()
        ):
            self.hits += 1

    async def _write(self, rng: random.Random) -> None:
        user_id = rng.choice(self._users)
        if rng.random() < 0.5:
            request = upsert_request(
                user_id, {"seats_used_pct": rng.randrange(0, 101), "nps": rng.randrange(11)}
            )
            await self._profiles.UpsertProfile(request)
            return
        event = profiles_pb2.Event(user_id=user_id, name=rng.choice(workload.EVENT_NAMES))
        event.time.GetCurrentTime()
        await self._profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=[event]))


async def measure(
    target: str, server: Server, users: Sequence[str], arguments: argparse.Namespace, write_share: float
) -> Round:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        driver = Load(channel, users, write_share)
        await driver.run(0.5, arguments.concurrency)  # connection and warm-up, not counted
        driver = Load(channel, users, write_share)
        cpu = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        calls = await driver.run(arguments.seconds, arguments.concurrency)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server.process.pid) - cpu
    quantiles = statistics.quantiles(driver.latencies, n=100, method="inclusive")
    return Round(
        target, calls, elapsed, quantiles[49] * 1e3, quantiles[98] * 1e3, driver.hits, driver.evaluations, cpu
    )


async def warm(channel: grpc.aio.Channel, users: Sequence[str]) -> None:
    """Evaluate every user once, so every profile is cached."""
    evaluate = evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser
    await asyncio.gather(*(evaluate(evaluation_pb2.EvaluateUserRequest(user_id=u)) for u in users))


async def stale_verdicts(server: Server, users: Sequence[str]) -> int:
    """Count the users whose cached verdict differs from a STRONG one, once writes have stopped."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        evaluate = evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser
        stale = 0
        for user_id in users:
            cached = await evaluate(evaluation_pb2.EvaluateUserRequest(user_id=user_id))
            strong = await evaluate(
                evaluation_pb2.EvaluateUserRequest(user_id=user_id, consistency=evaluation_pb2.STRONG)
            )
            stale += list(cached.segments) != list(strong.segments)
    return stale


# ---------------------------------------------------------------------------------------------
# The run.


def _median(rounds: Sequence[Round], value: Callable[[Round], float]) -> float:
    return statistics.median(value(r) for r in rounds)


def summary(rounds: Sequence[Round]) -> dict[str, dict[str, float]]:
    by_target: dict[str, list[Round]] = {}
    for measured in rounds:
        by_target.setdefault(measured.target, []).append(measured)
    ceiling = _median(by_target["ceiling"], lambda r: r.rate)
    return {
        target: {
            "calls_per_second": _median(runs, lambda r: r.rate),
            "ratio_to_ceiling": _median(runs, lambda r: r.rate) / ceiling,
            "p50_ms": _median(runs, lambda r: r.p50_ms),
            "p99_ms": _median(runs, lambda r: r.p99_ms),
            "hit_rate": _median(runs, lambda r: r.hits / r.evaluations if r.evaluations else 0.0),
            "server_cpu_per_call_us": _median(runs, lambda r: r.server_cpu_seconds / r.calls * 1e6),
        }
        for target, runs in by_target.items()
    }


def report(figures: dict[str, dict[str, float]], stale: int) -> str:
    columns = [("calls/s", 10), ("× ceiling", 11), ("p50 ms", 9), ("p99 ms", 9), ("hit rate", 10)]
    lines = [
        f"{'target':14}" + "".join(f"{name:>{width}}" for name, width in columns) + f"{'srv µs/call':>13}"
    ]
    for target, row in figures.items():
        lines.append(
            f"{target:14}{row['calls_per_second']:>10.0f}{row['ratio_to_ceiling']:>11.2f}"
            f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
            f"{(row['hit_rate'] * 100 if target != 'ceiling' else 0):>9.1f}%"
            f"{row['server_cpu_per_call_us']:>13.0f}"
        )
    lines.append(f"stale verdicts after the writes (cached vs STRONG, every user): {stale}")
    return "\n".join(lines)


async def run(arguments: argparse.Namespace, folder: Path) -> dict[str, Any]:
    users = [user_id for user_id, _ in workload.population(arguments.profiles)]
    trivial = await start_process([sys.executable, __file__, "--trivial-server"], folder, "trivial")
    segmentd = await start_server(arguments.database_url, folder)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{segmentd.port}") as channel:
            await load(channel, users)
            await warm(channel, users)
        rounds: list[Round] = []
        for number in range(arguments.rounds):
            order = [
                ("ceiling", trivial, 0.0),
                ("segmentd", segmentd, 0.0),
                ("under-writes", segmentd, WRITE_SHARE),
            ]
            for target, server, share in order if number % 2 == 0 else reversed(order):
                rounds.append(await measure(target, server, users, arguments, share))
        stale = await stale_verdicts(segmentd, users)
    finally:
        trivial.stop()
        segmentd.stop()
    figures = summary(rounds)
    print(report(figures, stale))
    return {"figures": figures, "stale_verdicts": stale, "rounds": [asdict(r) for r in rounds]}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: segmentd's own default store")
    parser.add_argument("--save", action="store_true", help="write bench/results/evaluate-user-<date>.json")
    parser.add_argument("--trivial-server", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.trivial_server:
        asyncio.run(serve_trivial())
        return 0
    with tempfile.TemporaryDirectory(prefix="segmentd-bench-") as folder:
        result = asyncio.run(run(arguments, Path(folder)))
    result["environment"] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "python": platform.python_version(),
        "store": arguments.database_url or "default (SQLite)",
        "concurrency": arguments.concurrency,
    }
    if arguments.save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"evaluate-user-{result['environment']['date']}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
