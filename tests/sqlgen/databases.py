"""Database fixtures for the SQL compiler tests: PostgreSQL and SQLite engines.

Imported by ``tests/sqlgen/conftest.py`` and ``tests/test_sql_matches_python.py``. PostgreSQL is
the worker's migrated test database of ``tests/conftest.py`` (skipped when unreachable, failed
when ``SEGMENTD_REQUIRE_POSTGRES=1``). Engines come from the store's own ``create_engine``
(SQLite gets the helper functions on connect there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentd.store.database import create_engine
from segmentd.store.models import Base


@pytest.fixture(scope="session")
def postgres_url(postgres_database_url: str) -> str:
    """This worker's migrated PostgreSQL test database (``tests/conftest.py``), asyncpg URL."""
    return (
        make_url(postgres_database_url)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
async def pg_raw(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection to the scratch database, for quick expression checks."""
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated test database: the schema and helper functions as deployed.

    Tests write only inside transactions they roll back, so they leave the database as found.
    """
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    """A SQLite engine on a fresh file, with the schema; the store registers the functions."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlgen') / 'segmentd.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()


async def empty_tables(connection: AsyncConnection) -> None:
    """Delete every profile, event and user list inside the caller's transaction (which rolls it back).

    The PostgreSQL database is shared with the store and API tests of the same worker, which
    may leave rows behind; a test that compares member sets must start from empty tables.
    """
    tables = ("segment_list_references", "user_list_members", "user_lists", "events", "profiles")
    for table in (Base.metadata.tables[name] for name in tables):
        await connection.execute(delete(table))
