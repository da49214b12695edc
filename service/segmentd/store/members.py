"""Membership queries: the database filters profiles with a compiled rule expression.

Listings stream through a server-side cursor (asyncpg) in chunks of ``chunk_size`` rows,
ordered by ``user_id`` and resumed with ``user_id > :after`` (keyset pagination), so the
server's memory does not grow with the segment's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, exists, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from segmentd.store.database import unavailable_as_store_error
from segmentd.store.models import EventCountRow, ProfileRow, UserListMemberRow

DEFAULT_CHUNK_SIZE = 1_000


class MemberQueries:
    """Runs membership queries for conditions over :attr:`profiles`, :attr:`events` and :attr:`list_members`.

    Args:
        engine: the store's engine.
        chunk_size: rows fetched from the cursor at a time, and user ids per streamed chunk.
    """

    def __init__(self, engine: AsyncEngine, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._engine = engine
        self._chunk_size = chunk_size
        self.dialect: str = engine.dialect.name
        self.profiles: Table = ProfileRow.__table__  # type: ignore[assignment]
        self.events: Table = EventCountRow.__table__  # type: ignore[assignment]
        self.list_members: Table = UserListMemberRow.__table__  # type: ignore[assignment]

    async def stream(
        self, condition: ColumnElement[bool], *, after_user_id: str = "", limit: int | None = None
    ) -> AsyncIterator[list[str]]:
        """Yield the ids of matching profiles after ``after_user_id``, ascending, in chunks."""
        user_id = self.profiles.c.user_id
        query = select(user_id).where(condition).order_by(user_id).limit(limit)
        if after_user_id:
            query = query.where(user_id > after_user_id)
        with unavailable_as_store_error():
            async with self._engine.connect() as connection:
                if self.dialect == "postgresql":
                    chunks = _stream_postgresql(connection, query, self._chunk_size)
                else:
                    chunks = _stream(connection, query, self._chunk_size)
                async for chunk in chunks:
                    yield chunk

    async def count(self, condition: ColumnElement[bool]) -> int:
        """Return how many profiles match."""
        query = select(func.count()).select_from(self.profiles).where(condition)
        with unavailable_as_store_error():
            async with self._engine.connect() as connection:
                return int((await connection.execute(query)).scalar_one())

    async def exists_after(self, condition: ColumnElement[bool], after_user_id: str) -> bool:
        """Whether a matching profile has a user id greater than ``after_user_id``."""
        query = select(exists().where(condition, self.profiles.c.user_id > after_user_id))
        with unavailable_as_store_error():
            async with self._engine.connect() as connection:
                return bool((await connection.execute(query)).scalar_one())


async def _stream(
    connection: AsyncConnection, query: Select[Any], chunk_size: int
) -> AsyncIterator[list[str]]:
    rows = await connection.stream(query.execution_options(yield_per=chunk_size))
    async for partition in rows.partitions():
        yield [row[0] for row in partition]


async def _stream_postgresql(
    connection: AsyncConnection, query: Select[Any], chunk_size: int
) -> AsyncIterator[list[str]]:
    """Read the ids through asyncpg's own cursor.

    SQLAlchemy's result layer builds a row object per id, which costs about twice what
    PostgreSQL spends finding the members (see docs/bench.md); the ids need none of it. The
    query is still compiled by SQLAlchemy, and its parameters go through the dialect's own
    bind processors, so the statement is exactly the one ``connection.execute`` would send.
    """
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    parameters = _driver_parameters(compiled, connection.dialect)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    # A cursor lives in a transaction; the connection has none yet (nothing ran on it).
    async with driver.transaction(readonly=True):
        cursor = await driver.cursor(compiled.string, *parameters)
        while records := await cursor.fetch(chunk_size):
            yield [record[0] for record in records]


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
