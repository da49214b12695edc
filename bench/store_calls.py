"""The SQLite store's point operations in-process: CPU per call, and what SQLAlchemy adds to them.

    uv run python bench/store_calls.py [--calls 1000] [--rounds 5]

In one process, on a temporary SQLite file with the hot-path workload (``workload.py``: 1,000
profiles, their events, the windows of the 100 segments), medians of interleaved rounds of
CPU µs per call (``time.process_time``):

- the repository's point operations as the server runs them inline: an upsert and a one-event
  RecordEvents, each alone and with the write-through's reread of its user; a cache miss's read;
- the parts: an empty inline write transaction, and the miss's one statement inside an open
  transaction, through SQLAlchemy Core and, the same compiled SQL, on the DBAPI cursor.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import workload
from sqlalchemy.engine import Connection, Engine

from segmentd.engine.codec import rule_from_json
from segmentd.engine.compiler import CompiledSegments
from segmentd.store.database import create_engine, create_sessionmaker
from segmentd.store.migrate import migrate
from segmentd.store.profiles import ProfileRepository, _evaluation_query
from segmentd.store.queries import event_count_parameters
from segmentd.store.records import Event, Reread, UserSnapshot
from segmentd.store.sqlite_inline import WRITE_LOCK_OPTION, SqliteInline

Call = Callable[[], Awaitable[object]]


def _ignore(_snapshots: object, _now: datetime) -> None:
    return None


async def _loaded(repository: ProfileRepository, users: list[str]) -> None:
    for user_id, traits in workload.population(len(users)):
        await repository.upsert(user_id, traits)
    events = [
        Event(user_id, name, datetime.now(UTC) - timedelta(days=days_ago), count)
        for user_id, name, days_ago, count in workload.events(users)
    ]
    for start in range(0, len(events), 500):
        await repository.record_events(events[start : start + 500])


def _part_calls(
    engines: tuple[Engine, Engine], windows: frozenset[tuple[str, int]], user_id: str
) -> tuple[dict[str, Callable[[], object]], Connection]:
    """An empty write transaction; the miss's statement through Core and on the cursor.

    Returns the calls and the connection holding their transaction, to close after them.
    """
    inline, same_configuration = engines
    keys = tuple(sorted(windows))
    statement = _evaluation_query(keys)
    parameters: dict[str, Any] = dict(event_count_parameters(user_id, keys, datetime.now(UTC)))
    compiled = statement.compile(dialect=inline.dialect)
    values = compiled.construct_params(parameters)
    # SQLite takes dates as ISO text, which is what the Date type's bind processor sends.
    positional = tuple(
        str(values[name]) if name.startswith("start_") else values[name]
        for name in compiled.positiontup or ()
    )
    # Both statement calls share one open transaction on the inline engine's one connection;
    # the empty transactions use the thread's engine, configured the same way.
    held: Connection = inline.connect()
    held.begin()
    dbapi_connection = held.connection.dbapi_connection
    assert dbapi_connection is not None

    def empty_write_transaction() -> None:
        with same_configuration.connect() as connection:
            connection.execution_options(**{WRITE_LOCK_OPTION: True})
            with connection.begin():
                pass

    def through_core() -> object:
        return held.execute(statement, parameters).one()

    def on_the_cursor() -> object:
        return dbapi_connection.execute(compiled.string, positional).fetchone()

    calls = {
        "empty write transaction": empty_write_transaction,
        "miss statement, Core": through_core,
        "miss statement, cursor": on_the_cursor,
    }
    return calls, held


def _repository_calls(
    repository: ProfileRepository, users: list[str], windows: frozenset[tuple[str, int]]
) -> dict[str, Call]:
    """The point operations as the server runs them, each on a random user."""
    rng = random.Random(1)
    shape = (windows, frozenset[str]())

    def reread(user_id: str) -> Reread:
        return Reread({user_id: shape}, _ignore)

    def miss() -> Awaitable[UserSnapshot]:
        return repository.get_with_event_counts(rng.choice(users), windows, datetime.now(UTC))

    async def upsert() -> None:
        await repository.upsert(rng.choice(users), {"nps": rng.randrange(11)})

    async def upsert_reread() -> None:
        user_id = rng.choice(users)
        await repository.upsert(user_id, {"nps": rng.randrange(11)}, reread=reread(user_id))

    async def one_event() -> None:
        await repository.record_events([Event(rng.choice(users), "login", datetime.now(UTC))])

    async def one_event_reread() -> None:
        user_id = rng.choice(users)
        await repository.record_events([Event(user_id, "login", datetime.now(UTC))], reread=reread(user_id))

    calls: dict[str, Call] = {
        "upsert": upsert,
        "upsert + reread": upsert_reread,
        "RecordEvents (1)": one_event,
        "RecordEvents (1) + reread": one_event_reread,
        "cache miss read": miss,
    }
    return calls


async def run(arguments: argparse.Namespace) -> None:
    users = [user_id for user_id, _ in workload.population(1000)]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'store.db'}"
        await migrate(url)
        engine = create_engine(url)
        try:
            repository = ProfileRepository(create_sessionmaker(engine))
            await _loaded(repository, users)
            compiled = CompiledSegments(
                {d["name"]: rule_from_json(d["rule"]) for d in workload.segment_definitions(100)}
            )
            windows = compiled.required_events()
            calls = _repository_calls(repository, users, windows)
            figures = await _rounds(calls, arguments)
            inline = SqliteInline.for_engine(engine)
            assert inline is not None
            parts, held = _part_calls(inline.engines, windows, users[0])
            try:
                figures.update(_sync_rounds(parts, arguments))
            finally:
                held.close()
        finally:
            inline = SqliteInline.for_engine(engine)
            if inline is not None:
                await inline.checkpointed()  # before the folder goes
            await engine.dispose()
    print(f"{'call':28s} {'CPU µs/call (median)':>22s}")
    for name, value in figures.items():
        print(f"{name:28s} {value:22,.1f}")


async def _rounds(calls: dict[str, Call], arguments: argparse.Namespace) -> dict[str, float]:
    spent: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(arguments.rounds):
        for name, call in calls.items():
            started = time.process_time()
            for _ in range(arguments.calls):
                await call()
            spent[name].append((time.process_time() - started) / arguments.calls * 1e6)
    return {name: statistics.median(values) for name, values in spent.items()}


def _sync_rounds(calls: dict[str, Callable[[], object]], arguments: argparse.Namespace) -> dict[str, float]:
    spent: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(arguments.rounds):
        for name, call in calls.items():
            started = time.process_time()
            for _ in range(arguments.calls):
                call()
            spent[name].append((time.process_time() - started) / arguments.calls * 1e6)
    return {name: statistics.median(values) for name, values in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
