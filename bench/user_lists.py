"""User lists on PostgreSQL: importing ids against a bare COPY, and EvaluateUser with an in_list segment.

    uv run python bench/user_lists.py [--ids 100000] [--profiles 2000] [--rounds 3] [--database-url URL]

Import: ``--ids`` distinct ids sent with ``AsyncClient.replace_list_members`` to a server in a
process of its own (one ReplaceUserListMembers call: COPY into a staging table, then the set
operation, in one transaction), next to asyncpg's ``copy_records_to_table`` of the same ids into
a one-column table with no index, from this process. Rounds alternate; medians are printed,
and the ratio bare time / import time (1.0 = as fast as the bare COPY).

EvaluateUser: the 100 segments of ``bench/workload.py``, with and without one more segment
``all: [in_list big-list, plan = "pro"]`` over that list (which holds half the profiles and the
imported ids). Cached: 20 passes over 200 warm users, one call at a time; cold: users the
server has not seen. The two catalogues alternate round by round (the segment is created and
deleted; the catalogue recompiles only it). Prints the median calls/s of each and the ratios.

Profiles are loaded through ImportProfiles (1,000,000 take minutes); the database is dropped
at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import workload
from harness import start_server
from workers import load, recreate_database

from segmentd_client import AsyncClient
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2, profiles_pb2_grpc

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/segmentd_bench_lists"
LIST = "big-list"
IN_LIST_SEGMENT = {
    "name": "listed-pro",
    "rule": {
        "all": {
            "rules": [
                {"in_list": {"name": LIST}},
                {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "pro"}},
            ]
        }
    },
}


async def _import_round(
    client: AsyncClient, connection: asyncpg.Connection, ids: list[str]
) -> tuple[float, float]:
    await connection.execute("TRUNCATE bare_ids")
    started = time.perf_counter()
    await connection.copy_records_to_table("bare_ids", records=[(i,) for i in ids], columns=["user_id"])
    bare = time.perf_counter() - started
    await client.replace_list_members(LIST, [])
    started = time.perf_counter()
    await client.replace_list_members(LIST, ids, timeout=3600)
    return bare, time.perf_counter() - started


async def _calls_per_second(
    stub: evaluation_pb2_grpc.EvaluationServiceAsyncStub, user_ids: Sequence[str]
) -> float:
    started = time.perf_counter()
    for user_id in user_ids:
        await stub.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))
    return len(user_ids) / (time.perf_counter() - started)


async def _load(port: int, users: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """The 100 segments, then the profiles through ImportProfiles (1,000 a message)."""
    await load(port, [])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = profiles_pb2_grpc.ProfileServiceStub(channel)

        async def requests() -> AsyncIterator[profiles_pb2.ImportProfilesRequest]:
            for start in range(0, len(users), 1000):
                request = profiles_pb2.ImportProfilesRequest()
                for user_id, traits in users[start : start + 1000]:
                    request.profiles.add(user_id=user_id).traits.update(traits)
                yield request

        await stub.ImportProfiles(requests(), timeout=3600)


async def _drop_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    connection = await asyncpg.connect(f"{base}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def run(arguments: argparse.Namespace, folder: Path) -> None:
    await recreate_database(arguments.database_url)
    try:
        await _run(arguments, folder)
    finally:
        await _drop_database(arguments.database_url)


async def _run(arguments: argparse.Namespace, folder: Path) -> None:
    users = workload.population(arguments.profiles)
    server = await start_server(arguments.database_url, folder)
    try:
        started = time.perf_counter()
        await _load(server.port, users)
        print(f"loaded {len(users):,} profiles in {time.perf_counter() - started:.0f} s", flush=True)
        user_ids = [user_id for user_id, _ in users]
        ids = [*user_ids[::2], *(f"listed-{n:09d}" for n in range(arguments.ids - len(user_ids[::2])))]
        connection = await asyncpg.connect(arguments.database_url)
        await connection.execute("CREATE TABLE bare_ids (user_id text NOT NULL)")
        async with AsyncClient(f"127.0.0.1:{server.port}", stream_timeout=3600) as client:
            await client.create_user_list(LIST)
            imports = []
            for round_number in range(arguments.rounds):
                imports.append(await _import_round(client, connection, ids))
                bare, imported = imports[-1]
                print(
                    f"round {round_number + 1}: bare COPY {bare:.2f} s, import {imported:.2f} s", flush=True
                )
            await connection.close()
            figures = await _evaluations(client, server.port, user_ids, arguments.rounds)
    finally:
        server.stop()
    bare = statistics.median(b for b, _ in imports)
    imported = statistics.median(i for _, i in imports)
    print(f"ids: {len(ids):,}; figures are medians of {arguments.rounds} interleaved rounds")
    print(f"bare COPY into a one-column table   {len(ids) / bare:12,.0f} ids/s")
    print(
        f"ReplaceUserListMembers              {len(ids) / imported:12,.0f} ids/s   "
        f"{bare / imported:.2f}x bare COPY"
    )
    for kind in ("cached", "cold"):
        without, with_list = (statistics.median(figures[(kind, flag)]) for flag in (False, True))
        print(
            f"EvaluateUser {kind:6}  without in_list {without:8,.0f} calls/s   "
            f"with {with_list:8,.0f} calls/s   {with_list / without:.2f}x"
        )


async def _evaluations(
    client: AsyncClient, port: int, user_ids: list[str], rounds: int
) -> dict[tuple[str, bool], list[float]]:
    figures: dict[tuple[str, bool], list[float]] = {}
    warm = user_ids[:200]
    cold_users = iter(user_ids[200:])
    # At most 2,000 cold users a round: enough for a median, and 1,000,000 profiles stay minutes.
    cold_size = max(1, min(2000, (len(user_ids) - 200) // (2 * rounds)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: evaluation_pb2_grpc.EvaluationServiceAsyncStub = evaluation_pb2_grpc.EvaluationServiceStub(
            channel
        )
        for _ in range(rounds):
            for with_list in (False, True):
                if with_list:
                    await client.apply_segment(IN_LIST_SEGMENT)
                else:
                    await _delete_quietly(client)
                await _calls_per_second(stub, warm)  # warm the cache for this catalogue
                cached = await _calls_per_second(stub, warm * 20)
                cold = await _calls_per_second(stub, [next(cold_users) for _ in range(cold_size)])
                figures.setdefault(("cached", with_list), []).append(cached)
                figures.setdefault(("cold", with_list), []).append(cold)
    return figures


async def _delete_quietly(client: AsyncClient) -> None:
    try:
        await client.delete_segment(IN_LIST_SEGMENT["name"])  # type: ignore[arg-type]
    except Exception:  # not there yet
        return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--profiles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="segmentd-lists-") as folder:
        asyncio.run(run(arguments, Path(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
