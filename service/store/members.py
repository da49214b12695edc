"""Membership queries: the database filters profiles with a compiled rule expression.

Listings stream through a server-side cursor (asyncpg) in chunks of ``chunk_size`` rows,
ordered by ``user_id`` and resumed with ``user_id > :after`` (keyset pagination), so the
server's memory does not grow with the segment's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import ColumnElement, Table, exists, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.database import unavailable_as_store_error
from service.store.models import EventCountRow, ProfileRow

DEFAULT_CHUNK_SIZE = 1_000


class MemberQueries:
    """Runs membership queries for conditions built over :attr:`profiles` and :attr:`events`.

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
                rows = await connection.stream(query.execution_options(yield_per=self._chunk_size))
                async for partition in rows.partitions():
                    yield [row[0] for row in partition]

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
