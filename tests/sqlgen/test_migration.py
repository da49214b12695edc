"""Migration 0002 creates the helper functions on PostgreSQL, and its downgrade drops them."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from segmentd.store.database import create_engine
from segmentd.store.migrate import alembic_config, migrate
from tests.conftest import drop_database, recreate_database

pytestmark = pytest.mark.postgres

_FUNCTIONS = ("segmentd_time_us", "segmentd_semver_cmp", "segmentd_bucket", "segmentd_lower")


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_migration_0002__upgrade_then_downgrade__creates_then_drops_functions(postgres_url):
    # Given: a database of its own (the shared one is migrated already)
    name = f"{make_url(postgres_url).database}_migration"
    url = await recreate_database(name)
    engine = create_engine(url)
    present = text("SELECT count(*) FROM pg_proc WHERE proname = ANY(:names)").bindparams(
        names=list(_FUNCTIONS)
    )
    try:
        # When
        await migrate(url)

        # Then
        async with engine.connect() as connection:
            assert await connection.scalar(present) == len(_FUNCTIONS)
            checks = await connection.execute(
                text(
                    "SELECT segmentd_time_us('1970-01-01T00:00:01.5+00:01'),"
                    " segmentd_semver_cmp('1.0.0-rc.1', '1.0.0'),"
                    " segmentd_bucket('x', 'y'), segmentd_lower('ΑΣ İ')"
                )
            )
            assert tuple(checks.one()) == (-58_500_000, -1, 1546756858, "ας i̇")

        # When
        async with engine.connect() as connection:
            await connection.run_sync(_downgrade, "0001")
            await connection.commit()

        # Then
        async with engine.connect() as connection:
            assert await connection.scalar(present) == 0
    finally:
        await engine.dispose()
        await drop_database(name)
