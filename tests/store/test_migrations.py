"""Migrations: applied from code, idempotent, concurrent-safe, and in step with the models."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.store.database import create_engine
from segmentd.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    include_object_for,
    migrate,
)
from segmentd.store.models import Base
from tests.conftest import drop_database, recreate_database

REPO_ROOT = Path(__file__).resolve().parents[2]


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object_for(connection.dialect.name)}
    )
    differences: list[object] = compare_metadata(context, Base.metadata)
    return differences


async def test_migrate__head__models_and_migrations_agree(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_migrate__again__nothing_to_do(engine: AsyncEngine, store_url: str) -> None:
    assert await current_revision(engine) == head_revision()
    await migrate(engine)
    await migrate(store_url)
    assert await current_revision(store_url) == head_revision()


async def test_migrate__postgresql_only_gin_index(engine: AsyncEngine, dialect: str) -> None:
    async with engine.connect() as connection:
        indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("profiles"))
    assert [index["name"] for index in indexes] == (["ix_profiles_traits"] if dialect == "postgresql" else [])


@pytest.fixture
async def empty_url(dialect: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database that was never migrated."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"segmentd_test_fresh_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    try:
        yield await recreate_database(name)
    finally:
        await drop_database(name)


async def test_migrate__concurrently_in_one_process__one_upgrade(empty_url: str) -> None:
    assert await current_revision(empty_url) is None
    await asyncio.gather(*(migrate(empty_url) for _ in range(3)))
    assert await current_revision(empty_url) == head_revision()


async def test_migrate__concurrently_from_several_processes__one_upgrade(empty_url: str) -> None:
    script = (
        "import asyncio, sys; from segmentd.store.migrate import migrate; asyncio.run(migrate(sys.argv[1]))"
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, empty_url, cwd=REPO_ROOT, stderr=subprocess.PIPE
        )
        for _ in range(2)  # each process spends seconds importing; two suffice to race
    ]
    results = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err for _, err in results]
    assert await current_revision(empty_url) == head_revision()


async def test_migrate__initial_revision__downgrades_to_empty(empty_url: str) -> None:
    await migrate(empty_url, "0001")
    assert await current_revision(empty_url) == "0001"
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as connection:

            def downgrade(sync: Connection) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync
                command.downgrade(config, "base")

            await connection.run_sync(downgrade)
            await connection.commit()
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert tables == ["alembic_version"]
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_migration_0008__members_moved_into_partitions_and_back(empty_url: str) -> None:
    # Given a database at 0007 with two lists, their members, and a member row of no list
    await migrate(empty_url, "0007")
    engine = create_engine(empty_url)
    long_name = "l" * 63
    members = {"beta": ["b", "a", "c"], long_name: ["x"]}
    try:
        async with engine.begin() as connection:
            for name in ("beta", long_name, "empty"):
                await connection.execute(
                    text(
                        "INSERT INTO user_lists (name, description, member_count, create_time, update_time) "
                        "VALUES (:name, '', 0, now(), now())"
                    ),
                    {"name": name},
                )
            rows = [{"list_name": n, "user_id": u} for n, ids in members.items() for u in ids]
            rows.append({"list_name": "gone", "user_id": "orphan"})
            await connection.execute(
                text("INSERT INTO user_list_members VALUES (:list_name, :user_id)"), rows
            )

        # When it is upgraded
        await migrate(empty_url)

        # Then each list's members are in its partition, and the rows of no list are gone
        everything = text("SELECT list_name, user_id FROM user_list_members ORDER BY list_name, user_id")
        expected = sorted((n, u) for n, ids in members.items() for u in ids)
        async with engine.connect() as connection:
            assert [tuple(row) for row in await connection.execute(everything)] == expected
            partitions = await connection.scalar(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_list_members'::regclass")
            )
            assert partitions == 3
            assert await connection.run_sync(_differences) == []

        # When it is downgraded
        async with engine.connect() as connection:

            def downgrade(sync: Connection) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync
                command.downgrade(config, "0007")

            await connection.run_sync(downgrade)
            await connection.commit()

        # Then one table with its primary key holds the same members
        async with engine.connect() as connection:
            assert [tuple(row) for row in await connection.execute(everything)] == expected
            key = await connection.run_sync(lambda sync: inspect(sync).get_pk_constraint("user_list_members"))
            assert key["constrained_columns"] == ["list_name", "user_id"]
    finally:
        await engine.dispose()
