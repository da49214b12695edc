"""Engines, connection settings and the mapping of database failures to StoreUnavailable."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.errors import StoreUnavailable
from segmentd.store.database import (
    DatabaseSettings,
    create_engine,
    create_sessionmaker,
    is_unavailable,
    normalize_url,
    ping,
    unavailable_as_store_error,
)
from segmentd.store.migrate import current_revision
from segmentd.store.profiles import ProfileRepository
from segmentd.store.segments import SegmentRepository


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///segmentd.db", "sqlite+aiosqlite:///segmentd.db"),
        ("sqlite+aiosqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
    ],
)
def test_normalize_url__sync_or_async_urls__async_driver(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("url", ["mysql://h/db", "postgresql+psycopg2://h/db", "sqlite+pysqlite:///x.db"])
def test_normalize_url__unsupported__value_error(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        normalize_url(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_create_engine__in_memory_sqlite__value_error(url: str) -> None:
    # Each connection would see a database of its own: the inline connection another one
    # than the pool's.
    with pytest.raises(ValueError, match="in-memory"):
        create_engine(url)


async def test_create_engine__sqlite__pragmas_on_every_connection(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", DatabaseSettings(sqlite_busy_timeout_ms=1234))
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await connection.scalar(text("PRAGMA busy_timeout")) == 1234
            # The SQL helper functions of segmentd.sqlgen are registered.
            assert await connection.scalar(text("SELECT segmentd_lower('ÉCOLE')")) == "école"
    finally:
        await engine.dispose()


async def test_create_engine__postgresql__server_settings(postgres_database_url: str) -> None:
    engine = create_engine(postgres_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SHOW statement_timeout")) == "5s"
            assert await connection.scalar(text("SHOW application_name")) == "segmentd"
    finally:
        await engine.dispose()


async def test_statement_timeout__query_cancelled__store_unavailable(postgres_database_url: str) -> None:
    engine = create_engine(postgres_database_url, DatabaseSettings(statement_timeout_ms=50))
    try:
        with pytest.raises(StoreUnavailable):
            with unavailable_as_store_error():
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://postgres@127.0.0.1:1/segmentd", id="postgresql-closed-port"),
        pytest.param("sqlite:////nonexistent-dir/segmentd.db", id="sqlite-unopenable-file"),
    ],
)
async def test_repositories__store_down__store_unavailable(url: str) -> None:
    engine = create_engine(url, DatabaseSettings(connect_timeout_s=2))
    sessions = create_sessionmaker(engine)
    try:
        with pytest.raises(StoreUnavailable):
            await ProfileRepository(sessions).get("u1")
        with pytest.raises(StoreUnavailable):
            await SegmentRepository(sessions).catalogue_changes({})
        with pytest.raises(StoreUnavailable):
            await ProfileRepository(sessions).upsert("u1", {"a": 1})
        with pytest.raises(StoreUnavailable):
            await current_revision(engine)
    finally:
        await engine.dispose()


async def test_repositories__schema_missing__store_unavailable_on_sqlite_only(tmp_path: Path) -> None:
    # An unmigrated SQLite file: "no such table" is an OperationalError, which SQLite also
    # uses for "database is locked"; both mean the store cannot answer.
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(StoreUnavailable):
            await ProfileRepository(create_sessionmaker(engine)).get("u1")
    finally:
        await engine.dispose()


def test_is_unavailable__data_errors__not_unavailable() -> None:
    assert not is_unavailable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_unavailable(ValueError("bug"))
    assert not is_unavailable(asyncpg.exceptions.UndefinedColumnError('column "x" does not exist'))
    assert is_unavailable(ConnectionRefusedError())
    assert is_unavailable(TimeoutError())


async def test_ping__answering_or_not(engine: AsyncEngine) -> None:
    assert await ping(engine) is True
    down = create_engine("postgresql://postgres@127.0.0.1:1/segmentd", DatabaseSettings(connect_timeout_s=2))
    try:
        assert await ping(down) is False
    finally:
        await down.dispose()


async def test_create_engine__statement_timeout_keyword__overrides_settings(
    postgres_database_url: str,
) -> None:
    settings = DatabaseSettings(statement_timeout_ms=1)
    engine = create_engine(postgres_database_url, settings, statement_timeout_ms=250)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SHOW statement_timeout")) == "250ms"
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.InvalidCatalogNameError("database does not exist"),  # dropped
        asyncpg.exceptions.InvalidPasswordError("password authentication failed"),  # rotated
        asyncpg.exceptions.InvalidAuthorizationSpecificationError("role does not exist"),
        asyncpg.exceptions.UndefinedTableError('relation "api_keys" does not exist'),  # table gone
    ],
    ids=["dropped", "password", "role", "table"],
)
def test_is_unavailable__store_cannot_serve__unavailable(error: Exception) -> None:
    # A database that is gone or refuses our credentials cannot serve: UNAVAILABLE, not INTERNAL.
    assert is_unavailable(error)
