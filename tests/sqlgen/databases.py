"""Database fixtures for the SQL compiler tests: a scratch PostgreSQL database and SQLite.

Imported by ``tests/sqlgen/conftest.py`` and ``tests/test_sql_matches_python.py``; written so
they can move to ``tests/conftest.py`` as they are. Engines come from the store's own
``create_engine`` (SQLite gets the helper functions on connect there); the PostgreSQL helper
functions are created here, as migration 0002 does.

PostgreSQL tests skip when the server does not answer, unless ``SEGMENTD_REQUIRE_POSTGRES=1``
(CI), in which case they fail: a green run must never silently mean "PostgreSQL not tested".
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.sqlgen.functions import POSTGRES_FUNCTIONS_SQL
from service.store.database import create_engine
from service.store.models import Base

#: The server's maintenance database; each xdist worker gets its own scratch database beside it.
ADMIN_URL = os.environ.get("SEGMENTD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _scratch_database_name() -> str:
    return f"segmentd_sqlgen_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def postgres_unavailable(reason: str) -> None:
    """Skip the test, or fail it when CI demands PostgreSQL (``SEGMENTD_REQUIRE_POSTGRES=1``)."""
    if os.environ.get("SEGMENTD_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (SEGMENTD_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


@pytest.fixture(scope="session")
async def postgres_url() -> str:
    """Create (once) this worker's scratch database; return its asyncpg URL."""
    name = _scratch_database_name()
    try:
        admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        postgres_unavailable(f"cannot connect to {ADMIN_URL}: {exc!r}")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # template0 with UTF8: the scratch database must hold any Unicode text.
            await admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    finally:
        await admin.close()
    return (
        make_url(ADMIN_URL)
        .set(drivername="postgresql+asyncpg", database=name)
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
    """An engine on the scratch database with a fresh schema and the helper functions."""
    engine = create_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(Base.metadata.create_all)
        for statement in POSTGRES_FUNCTIONS_SQL:
            await connection.exec_driver_sql(statement)
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
