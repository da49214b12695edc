"""The server's CPU per call, by kind, one call at a time: what the under-writes mix is made of.

    uv run python bench/per_call.py [--calls 1000] [--database-url URL]

Starts ``segmentd serve`` (default settings), loads the hot-path workload (``workload.py``),
warms every user, then makes ``--calls`` sequential calls of each kind, twice, interleaved:
a cached ``EvaluateUser``, an ``UpsertProfile``, a one-event ``RecordEvents``, and an upsert
followed by the ``EvaluateUser`` of that user (a cache miss where the write invalidates, a hit
where it writes through: SQLite). Prints the server process's CPU per call (all its threads),
read from ``/proc``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import workload
from evaluate_user import load, upsert_request, warm
from harness import cpu_seconds, start_server

from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2, profiles_pb2_grpc


def call_kinds(channel: grpc.aio.Channel, users: Sequence[str]) -> dict[str, Callable[[], Awaitable[None]]]:
    """One zero-argument call per kind, each on a random user of ``users``."""
    evaluate = evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser
    profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
    rng = random.Random(1)

    async def cached_evaluation() -> None:
        await evaluate(evaluation_pb2.EvaluateUserRequest(user_id=rng.choice(users)))

    async def upsert(user_id: str | None = None) -> None:
        user_id = user_id or rng.choice(users)
        await profiles.UpsertProfile(upsert_request(user_id, {"nps": rng.randrange(11)}))

    async def one_event() -> None:
        event = profiles_pb2.Event(user_id=rng.choice(users), name=rng.choice(workload.EVENT_NAMES))
        event.time.GetCurrentTime()
        await profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=[event]))

    async def upsert_then_read() -> None:
        user_id = rng.choice(users)
        await upsert(user_id)
        await evaluate(evaluation_pb2.EvaluateUserRequest(user_id=user_id))

    return {
        "EvaluateUser (cached)": cached_evaluation,
        "UpsertProfile": upsert,
        "RecordEvents (1 event)": one_event,
        "UpsertProfile + next read": upsert_then_read,
    }


async def run(arguments: argparse.Namespace) -> None:
    users = [user_id for user_id, _ in workload.population(1000)]
    with tempfile.TemporaryDirectory() as folder:
        server = await start_server(arguments.database_url, Path(folder))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                await load(channel, users)
                figures: dict[str, list[float]] = {}
                for _ in range(2):
                    for name, call in call_kinds(channel, users).items():
                        await warm(channel, users)
                        before = cpu_seconds(server.process.pid)
                        for _ in range(arguments.calls):
                            await call()
                        spent = cpu_seconds(server.process.pid) - before
                        figures.setdefault(name, []).append(spent / arguments.calls * 1e6)
        finally:
            server.stop()
    print(f"{'call':26s} {'server CPU µs/call (two rounds)':>32s}")
    for name, rounds in figures.items():
        print(f"{name:26s} {' / '.join(f'{value:,.0f}' for value in rounds):>32s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: segmentd's own default store")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
