"""Alembic environment: runs the migrations on the connection ``segmentd.store.migrate`` passes.

There is no alembic.ini: ``segmentd.store.migrate.alembic_config`` builds the configuration in
code and hands over an open (synchronous facade of an async) connection in
``config.attributes["connection"]``. Without one, a URL in the ``sqlalchemy.url`` option is
used (online, through the async engine) or rendered as SQL (offline, ``--sql``).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from segmentd.store.database import create_engine
from segmentd.store.migrate import include_object_for
from segmentd.store.models import Base

config = context.config


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object_for(connection.dialect.name),
        # SQLite cannot ALTER most things in place; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite has transactional DDL too once pysqlite stops managing transactions
        # (database.py): the whole upgrade is one transaction on both databases.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = config.attributes.get("connection")
    url = config.get_main_option("sqlalchemy.url") or ""
    if context.is_offline_mode():
        _run_offline(url)
    elif connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_with_url(url))


_main()
