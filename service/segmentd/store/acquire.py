"""How long taking a PostgreSQL connection may last: a hung server costs seconds, not deadlines.

    bound_acquisition(engine, limits)     at engine creation (PostgreSQL only)
    bounded(bind, acquiring)              pool wait + connect + pre-ping, within the bound
    connect(engine)                       ``engine.connect()`` within the bound

A frozen or unreachable server accepts TCP connections, or keeps pooled ones, and then
never answers: without a bound the pre-ping or the connect waits for the caller's whole
deadline. The bound is the connect timeout when the pool has a connection to spare, and the
pool timeout plus the connect timeout when every connection is taken (a queue under load is
not an outage: the pool's own timeout answers that one, as ``ResourceExhausted``, first).
SQLite engines are not bounded: a local file does not hang, and cancelling a thread's
SQLite call would not stop it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

from segmentd.errors import StoreUnavailable

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class AcquireLimits:
    """An engine's connection limits.

    Attributes:
        connect_s: how long opening (or pinging) a connection may take.
        pool_wait_s: how long a caller waits in the pool's queue.
        capacity: the pool's connections, overflow included.
    """

    connect_s: float
    pool_wait_s: float
    capacity: int


_LIMITS: weakref.WeakKeyDictionary[Engine, AcquireLimits] = weakref.WeakKeyDictionary()


def bound_acquisition(engine: AsyncEngine, limits: AcquireLimits) -> None:
    """Bound every acquisition of a connection of ``engine`` made through this module."""
    _LIMITS[engine.sync_engine] = limits


def acquire_timeout(bind: AsyncEngine | Engine | Connection) -> float | None:
    """Return how long taking a connection of ``bind`` may last now (None: unbounded)."""
    if isinstance(bind, AsyncEngine):
        engine = bind.sync_engine
    else:
        engine = bind.engine if isinstance(bind, Connection) else bind
    limits = _LIMITS.get(engine)
    if limits is None:
        return None
    pool = engine.pool
    busy = isinstance(pool, QueuePool) and pool.checkedout() >= limits.capacity
    return limits.connect_s + (limits.pool_wait_s if busy else 0.0)


async def bounded(bind: AsyncEngine | Engine | Connection, acquiring: Awaitable[_T]) -> _T:
    """Await ``acquiring`` (a checkout) within ``bind``'s acquire timeout.

    Raises:
        StoreUnavailable: the database did not answer within the timeout.
    """
    limit = acquire_timeout(bind)
    if limit is None:
        return await acquiring
    try:
        async with asyncio.timeout(limit):
            return await acquiring
    except TimeoutError:
        raise StoreUnavailable(f"database unavailable: no answer within {limit:g} s") from None


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Like ``engine.connect()``, but a server that does not answer fails within the bound.

    Raises:
        StoreUnavailable: no working connection within the acquire timeout.
    """
    connection = await bounded(engine, engine.connect().start())
    try:
        yield connection
    finally:
        await connection.close()
