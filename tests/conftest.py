"""Database fixtures: every store test runs on SQLite and on PostgreSQL.

    store_url   "sqlite" / "postgresql"     a migrated, empty database, fresh for each test
    engine      create_engine(store_url)    disposed of after the test
    sessions    create_sessionmaker(engine)

PostgreSQL: one database per xdist worker (``segmentd_test_<worker>_<pid>``: the pid keeps
two test runs on one machine from dropping each other's database), created from scratch,
migrated once per session and dropped at its end; each test starts from truncated tables.
SQLite: one migrated template file per session, copied for each test.

Why truncation and not a rolled-back transaction per test: the repositories open their
own sessions and commit, and the concurrency tests need several connections that see each
other's commits, which a per-test outer transaction (even with
``join_transaction_mode="create_savepoint"``) cannot give. Truncating five small tables
costs a few milliseconds.

PostgreSQL tests are skipped when the server does not answer, unless
``SEGMENTD_REQUIRE_POSTGRES=1`` (CI), which turns that into a failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from segmentd.store.database import create_engine, create_sessionmaker
from segmentd.store.migrate import migrate

#: The server's maintenance database; the per-worker test databases are created beside it.
POSTGRES_ADMIN_URL = os.environ.get(
    "SEGMENTD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

#: Emptied before each PostgreSQL test (segment_catalogue keeps its one row).
_TABLES = (
    "api_keys, events, profiles, segment_references, segment_list_references, segment_versions, segments, "
    "user_list_members, user_lists"
)


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("SEGMENTD_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (SEGMENTD_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


async def _administer(*statements: str) -> None:
    """Run statements on the maintenance database, outside any transaction."""
    admin = create_async_engine(
        make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await admin.dispose()


async def recreate_database(name: str) -> str:
    """Create PostgreSQL database ``name`` afresh (dropping any leftover); return its URL."""
    await _administer(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        # template0 with UTF8: the database must hold any Unicode text, whatever the server default.
        f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'",
    )
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(name: str) -> None:
    """Drop PostgreSQL database ``name``, disconnecting its sessions."""
    await _administer(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """This worker's PostgreSQL test database, created from scratch and migrated."""
    name = f"segmentd_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    try:
        url = asyncio.run(recreate_database(name))
    except Exception as error:  # any failure to reach the server means "unreachable"
        _postgres_unavailable(f"cannot create a database on {POSTGRES_ADMIN_URL}: {error!r}")
    asyncio.run(migrate(url))
    yield url
    asyncio.run(drop_database(name))


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undo what a test's in-process ``serve`` or ``migrate`` did to the root logger.

    Both configure logging for the process (``basicConfig(force=True)``); left in place, the
    level and handlers they set would change how every later test of the process logs.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database file, copied by each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(migrate(f"sqlite:///{path}"))
    return path


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {_TABLES}"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated database for this test: a copy of the SQLite template, or PostgreSQL."""
    # Sync on purpose: the session fixtures it pulls in call asyncio.run, which cannot
    # run inside the event loop of an async fixture.
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "store.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture
async def store_url(database_url: str) -> str:
    """The URL of an empty, migrated database: SQLite or PostgreSQL."""
    if database_url.startswith("postgresql"):
        await _truncate(database_url)
    return database_url


@pytest.fixture
async def engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database."""
    engine = create_engine(store_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory the repositories take."""
    return create_sessionmaker(engine)


@pytest.fixture
def dialect(store_url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return make_url(store_url).get_backend_name()
