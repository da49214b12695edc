"""Membership queries: the database filters profiles with a compiled rule expression.

Listings are read in chunks of ``chunk_size`` rows, ordered by ``user_id``, each chunk by
its own short query resumed with ``user_id > :last`` (keyset pagination): the server's
memory does not grow with the segment's size, and no connection or transaction is held
while the stream waits for a slow reader. At most ``stream_connections`` chunk queries run
at once, so listings can never take the connections unary calls need; a chunk that finds
none free within ``acquire_timeout_s`` raises ``ResourceExhausted``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, exists, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from segmentd.errors import ResourceExhausted
from segmentd.store.acquire import connect
from segmentd.store.database import store_work
from segmentd.store.models import EventCountRow, ProfileRow, UserListMemberRow

DEFAULT_CHUNK_SIZE = 1_000
DEFAULT_STREAM_CONNECTIONS = 5


class MemberQueries:
    """Runs membership queries for conditions over :attr:`profiles`, :attr:`events` and :attr:`list_members`.

    Args:
        engine: the store's engine.
        chunk_size: user ids per query and per streamed chunk.
        stream_connections: most listing queries running at once (their connection budget).
        acquire_timeout_s: how long a listing query waits for a turn within that budget.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        stream_connections: int = DEFAULT_STREAM_CONNECTIONS,
        acquire_timeout_s: float = 2.0,
    ) -> None:
        self._engine = engine
        self._chunk_size = chunk_size
        self._stream_connections = stream_connections
        self._stream_slots = asyncio.Semaphore(stream_connections)
        self._acquire_timeout_s = acquire_timeout_s
        self.dialect: str = engine.dialect.name
        self.profiles: Table = ProfileRow.__table__  # type: ignore[assignment]
        self.events: Table = EventCountRow.__table__  # type: ignore[assignment]
        self.list_members: Table = UserListMemberRow.__table__  # type: ignore[assignment]

    async def stream(
        self, condition: ColumnElement[bool], *, after_user_id: str = "", limit: int | None = None
    ) -> AsyncIterator[list[str]]:
        """Yield the ids of matching profiles after ``after_user_id``, ascending, in chunks.

        Each chunk is read by its own statement, so chunks are not one snapshot: a profile
        written during the listing may or may not appear, but no id appears twice and ids
        stay ascending.

        Raises:
            ResourceExhausted: every listing connection stayed busy for the acquire timeout.
            StoreUnavailable: the database cannot be reached.
        """
        user_id = self.profiles.c.user_id
        after, remaining = after_user_id, limit
        while remaining is None or remaining > 0:
            size = self._chunk_size if remaining is None else min(self._chunk_size, remaining)
            query = select(user_id).where(condition).order_by(user_id).limit(size)
            chunk = await self._read_chunk(query.where(user_id > after) if after else query)
            if chunk:
                yield chunk
            if len(chunk) < size:
                return
            after = chunk[-1]
            remaining = None if remaining is None else remaining - len(chunk)

    async def _read_chunk(self, query: Select[Any]) -> list[str]:
        async with self._stream_slot():
            async with store_work():
                async with connect(self._engine) as connection:
                    if self.dialect == "postgresql":
                        return await _read_postgresql(connection, query)
                    return list((await connection.execute(query)).scalars())

    @contextlib.asynccontextmanager
    async def _stream_slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._acquire_timeout_s):
                await self._stream_slots.acquire()
        except TimeoutError:
            raise ResourceExhausted(
                f"all {self._stream_connections} connections for member listings stayed busy for "
                f"{self._acquire_timeout_s:g} s; retry later"
            ) from None
        try:
            yield
        finally:
            self._stream_slots.release()

    async def count(self, condition: ColumnElement[bool]) -> int:
        """Return how many profiles match."""
        query = select(func.count()).select_from(self.profiles).where(condition)
        async with store_work():
            async with connect(self._engine) as connection:
                return int((await connection.execute(query)).scalar_one())

    async def exists_after(self, condition: ColumnElement[bool], after_user_id: str) -> bool:
        """Whether a matching profile has a user id greater than ``after_user_id``."""
        query = select(exists().where(condition, self.profiles.c.user_id > after_user_id))
        async with store_work():
            async with connect(self._engine) as connection:
                return bool((await connection.execute(query)).scalar_one())


async def _read_postgresql(connection: AsyncConnection, query: Select[Any]) -> list[str]:
    """Read the ids through asyncpg itself.

    SQLAlchemy's result layer builds a row object per id, which costs about twice what
    PostgreSQL spends finding the members (see docs/bench.md); the ids need none of it. The
    query is still compiled by SQLAlchemy, and its parameters go through the dialect's own
    bind processors, so the statement is exactly the one ``connection.execute`` would send.
    """
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    parameters = _driver_parameters(compiled, connection.dialect)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    # One statement outside any transaction (autocommit): nothing stays open after it.
    return [record[0] for record in await driver.fetch(compiled.string, *parameters)]


def _driver_parameters(compiled: SQLCompiler, dialect: Dialect) -> list[Any]:
    """Return the statement's parameters in ``$n`` order, as the dialect would send them."""
    values = compiled.construct_params()  # with the IN lists expanded, as rendered
    parameters = []
    for name in compiled.positiontup or ():
        # An element of an expanded IN list is named "<list>_<n>" and has the list's type.
        bind = compiled.binds.get(name)
        if bind is None:
            bind = compiled.binds[name.rsplit("_", 1)[0]]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        parameters.append(process(values[name]) if process is not None else values[name])
    return parameters
