"""Apply the Alembic migrations from code, without alembic.ini.

    await migrate("postgresql://...")      upgrade to head; replicas may all call it at startup
    await current_revision(engine)        the revision the database is at (None when empty)

On PostgreSQL the upgrade runs under a session-level advisory lock, so when several replicas
start together one migrates and the others wait, then find nothing to do. On SQLite the
upgrade transaction takes the write lock up front (``BEGIN IMMEDIATE``) for the same effect.
Within one process, calls are serialized too: Alembic keeps its ``context`` and ``op`` in
module globals, which two interleaved upgrades would overwrite.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import SchemaItem

from segmentd.store.database import create_engine, store_operation
from segmentd.store.sqlite_inline import WRITE_LOCK_OPTION
from segmentd.store.user_list_tables import LIST_PARTITION_PREFIX

#: The directory holding env.py and versions/.
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: Key of the advisory lock held while migrating ("segmentd" in ASCII, as a bigint).
MIGRATION_LOCK_KEY = 0x7365676D656E7464


# One lock per event loop: an asyncio.Lock must not be shared between loops.
_PROCESS_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_config(url: str | None = None) -> Config:
    """Build the Alembic configuration in code; ``url`` is only needed offline (``--sql``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """Return the newest revision of the migration scripts."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migration scripts found")
    return head


def include_object_for(dialect_name: str) -> Callable[[SchemaItem, str | None, str, bool, Any], bool]:
    """Return an autogenerate filter that skips schema items not built on ``dialect_name``.

    Alembic ignores ``Index(...).ddl_if(dialect=...)``: without the filter, autogenerate
    would want to add the PostgreSQL-only GIN index to SQLite. The filter also skips the
    per-list partitions of ``user_list_members`` (PostgreSQL), which no model describes.
    """

    def include_object(item: SchemaItem, name: str | None, kind: str, reflected: bool, _other: Any) -> bool:
        if kind == "table" and reflected and (name or "").startswith(LIST_PARTITION_PREFIX):
            return False  # a list's partition (migration 0008): made by the store, not the models
        ddl_if = getattr(item, "_ddl_if", None)
        if ddl_if is None or ddl_if.dialect is None:
            return True
        dialects = {ddl_if.dialect} if isinstance(ddl_if.dialect, str) else set(ddl_if.dialect)
        return dialect_name in dialects

    return include_object


@store_operation
async def migrate(target: AsyncEngine | str, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest); safe to call concurrently.

    Args:
        target: an engine, or a database URL (an engine is then created and disposed of).
        revision: the revision to upgrade to.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    loop = asyncio.get_running_loop()
    async with _PROCESS_LOCKS.setdefault(loop, asyncio.Lock()), _connection(target) as connection:
        if connection.dialect.name != "postgresql":
            await connection.execution_options(**{WRITE_LOCK_OPTION: True})
            await connection.run_sync(_upgrade, revision)
            await connection.commit()
            return
        # Migrations may take long (index builds) and waiting for the lock too: no timeout.
        await connection.execute(text("SET statement_timeout = 0"))
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.commit()
        try:
            await connection.run_sync(_upgrade, revision)
            await connection.commit()
        finally:
            await connection.rollback()
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await connection.execute(text("RESET statement_timeout"))
            await connection.commit()


@store_operation
async def current_revision(target: AsyncEngine | str) -> str | None:
    """Return the revision the database is at, or None when it was never migrated.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    async with _connection(target) as connection:
        revision: str | None = await connection.run_sync(
            lambda sync_connection: MigrationContext.configure(sync_connection).get_current_revision()
        )
        return revision


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@asynccontextmanager
async def _connection(target: AsyncEngine | str) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        if isinstance(target, str):
            await engine.dispose()
