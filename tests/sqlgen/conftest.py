"""Fixtures of the SQL compiler tests (defined in `tests.sqlgen.databases`)."""

from tests.sqlgen.databases import pg_engine, pg_raw, postgres_url, sqlite_engine

__all__ = ["pg_engine", "pg_raw", "postgres_url", "sqlite_engine"]
