"""Bulk import of profiles: stage the whole stream, then one upsert, all or nothing.

    batches ─> TEMP segmentd_import_staging(seq, user_id, traits, ...)  PostgreSQL: one COPY; SQLite: inserts
            ─> INSERT INTO profiles SELECT <last seq per user_id> ON CONFLICT (user_id) DO UPDATE
            ─> users whose merged traits exceed 64 KiB: refused (or left out, on request) ─> COMMIT
               (PostgreSQL checks only the merges its guard left, written by a second statement)

Each row means what ``ProfileRepository.upsert`` means: merge (stored minus the keys sent as
null, then each other sent key replaces its stored value whole) or replace (the sent traits minus
the null keys), the size limit applying to the result. PostgreSQL merges in the ``DO UPDATE``
(atomic under concurrent upserts) with ``import_sql.merge_traits_sql``; SQLite, whose write lock keeps
other writers out, calls ``merge_traits`` itself, registered as a SQL function.

PostgreSQL runs it all in one transaction. SQLite fills the staging table in a transaction of its
own, which touches only the connection's temp database, so that other writers are not locked out
while a long stream arrives; the upsert then runs in one write transaction (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentd.errors import InvalidArgument
from segmentd.store.checks import check_traits_size
from segmentd.store.database import asyncpg_connection, store_operation
from segmentd.store.import_sql import (
    POSTGRESQL_DDL,
    POSTGRESQL_STAGING_INDEX,
    SQLITE_DDL,
    STAGED_USERS,
    STAGING,
    STAGING_NAME,
    compact_json,
    oversized_query,
    postgresql_record,
    postgresql_remerge_over_bound,
    postgresql_upsert,
    register_merge_function,
    sqlite_upsert,
)
from segmentd.store.sqlite_inline import WRITE_LOCK_OPTION, one_writer


class StagedProfile(NamedTuple):
    """A profile of the stream; a later position wins.

    Attributes:
        position: its position in the stream.
        user_id: its user id.
        traits: the traits as sent (null values delete keys).
        sent_json: the compact JSON of ``traits`` without the null keys, as
            ``checks.check_traits_size`` returned it (within the limit): PostgreSQL stages it
            as it is, and a replace stores it without measuring it again.
    """

    position: int
    user_id: str
    traits: Mapping[str, Any]
    sent_json: str


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A staged profile the store refused: ``field`` and ``message`` as ``InvalidArgument``'s."""

    position: int
    field: str
    message: str


class RowsRejected(InvalidArgument):
    """Profiles whose merged traits would exceed the size limit; nothing was written."""

    def __init__(self, rows: Sequence[RejectedRow]) -> None:
        super().__init__(rows[0].field, f"{rows[0].message} (profile at position {rows[0].position})")
        self.rows = tuple(rows)


@dataclass(frozen=True, slots=True)
class BulkImportResult:
    """``imported``: distinct user ids written; ``rejected``: left out (``skip_rejected``)."""

    imported: int
    rejected: tuple[RejectedRow, ...] = ()


class BulkImporter:
    """Upserts a stream of profiles in one transaction.

    Args:
        engine: the store's engine.
        statement_timeout_ms: PostgreSQL ``statement_timeout`` inside an import, which moves
            far more rows than one request (0: none).
    """

    def __init__(self, engine: AsyncEngine, *, statement_timeout_ms: int = 600_000) -> None:
        self._engine = engine
        self._statement_timeout_ms = int(statement_timeout_ms)

    async def import_profiles(
        self, batches: AsyncIterable[Sequence[StagedProfile]], *, replace: bool, skip_rejected: bool = False
    ) -> BulkImportResult:
        """Stage every batch, then upsert the last profile of each user id; commit.

        The profiles must have passed ``checks.check_user_id``, ``checks.check_traits`` and, without
        their null keys, ``checks.check_traits_size`` (``importer.check_profile`` does all three):
        the store checks only the merged results.
        No connection is taken before the first batch arrives, and an exception raised by
        ``batches`` rolls everything back and is raised as it is.

        Raises:
            RowsRejected: merged traits over the size limit, without ``skip_rejected``.
            StoreUnavailable: the database cannot be reached.
        """
        stream = aiter(batches)
        first = await anext(stream, None)
        if first is None:
            return BulkImportResult(0)
        try:
            return await self._import(_chain(first, stream), replace, skip_rejected)
        except _StreamFailed as failure:
            raise failure.error from None

    @store_operation
    async def _import(
        self, batches: AsyncIterator[Sequence[StagedProfile]], replace: bool, skip: bool
    ) -> BulkImportResult:
        async with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                return await self._import_postgresql(connection, batches, replace, skip)
            return await _import_sqlite(connection, batches, replace, skip)

    async def _import_postgresql(
        self,
        connection: AsyncConnection,
        batches: AsyncIterator[Sequence[StagedProfile]],
        replace: bool,
        skip: bool,
    ) -> BulkImportResult:
        async with connection.begin():
            await connection.execute(text(f"SET LOCAL statement_timeout = {self._statement_timeout_ms}"))
            await connection.execute(text(POSTGRESQL_DDL))
            raw = await asyncpg_connection(connection)
            # One COPY fed as the stream arrives: PostgreSQL stores each buffer while the server
            # decodes and checks the next profiles (one COPY per batch would take turns). An
            # error of the stream aborts the COPY and is raised as it is.
            records = (postgresql_record(*profile) async for batch in batches for profile in batch)
            await raw.copy_records_to_table(STAGING_NAME, records=records, columns=STAGING.c.keys())
            for statement in POSTGRESQL_STAGING_INDEX:
                await connection.execute(text(statement))
            if replace:
                # Every result is a sent profile, measured before it was staged: none is too large.
                return BulkImportResult((await connection.execute(postgresql_upsert(True))).rowcount)
            return await _upsert(connection, _merge_postgresql, skip)


async def _merge_postgresql(connection: AsyncConnection) -> tuple[int, list[RejectedRow]]:
    """Merge the staged profiles; check exactly only the merged traits that may be too large.

    New users' traits are the sent ones (measured); a stored user's merge is written by the
    guarded upsert only if it surely fits. When every staged user was written, nothing needs
    reading again. Otherwise the merges the guard left are written by a second statement, which
    returns them for the exact check (the guard's bound is over the limit for some merges that
    fit). The first statement left every staged user's row locked, so the second finds the
    rows it left unchanged; a row it did write is merged again, to the same traits.
    """
    now = datetime.now(UTC)
    written = (await connection.execute(postgresql_upsert(False, guarded=True, now=now))).rowcount
    staged = int((await connection.execute(text(STAGED_USERS))).scalar_one())
    if written == staged:
        return staged, []
    rows = (await connection.execute(postgresql_remerge_over_bound(now))).all()
    return staged, _over_limit(rows)


async def _import_sqlite(
    connection: AsyncConnection, batches: AsyncIterator[Sequence[StagedProfile]], replace: bool, skip: bool
) -> BulkImportResult:
    try:
        async with connection.begin():
            await connection.execute(text(f"DROP TABLE IF EXISTS temp.{STAGING_NAME}"))
            await connection.execute(text(SQLITE_DDL))
            insert_row = text(
                f"INSERT INTO {STAGING_NAME} (seq, user_id, traits) VALUES (:seq, :user_id, :traits)"
            )
            async for batch in batches:
                rows = [
                    {"seq": seq, "user_id": user_id, "traits": compact_json(traits)}
                    for seq, user_id, traits, _ in batch
                ]
                await connection.execute(insert_row, rows)
        await connection.run_sync(register_merge_function)
        await connection.execution_options(**{WRITE_LOCK_OPTION: True})
        async with one_writer(connection.engine), connection.begin():
            return await _upsert(connection, functools.partial(_upsert_sqlite, replace), skip)
    finally:
        await connection.execution_options(**{WRITE_LOCK_OPTION: False})
        if not connection.invalidated:
            async with connection.begin():
                await connection.execute(text(f"DROP TABLE IF EXISTS temp.{STAGING_NAME}"))


async def _upsert(
    connection: AsyncConnection,
    write: Callable[[AsyncConnection], Awaitable[tuple[int, list[RejectedRow]]]],
    skip: bool,
) -> BulkImportResult:
    """Write the staged profiles with ``write``; leave out the users whose result is too large, or raise.

    ``write`` returns the users written and those over the limit, in a savepoint rolled back
    when there are any.
    """
    rejected: list[RejectedRow] = []
    while True:
        savepoint = await connection.begin_nested()
        written, oversized = await write(connection)
        if not oversized:
            await savepoint.commit()
            return BulkImportResult(written, tuple(rejected))
        await savepoint.rollback()
        if not skip:
            raise RowsRejected(oversized)
        # Each user's result depends on that user's rows only: the others stay as they were.
        rejected.extend(oversized)
        users = select(STAGING.c.user_id).where(STAGING.c.seq.in_([row.position for row in oversized]))
        await connection.execute(delete(STAGING).where(STAGING.c.user_id.in_(users.scalar_subquery())))


async def _upsert_sqlite(replace: bool, connection: AsyncConnection) -> tuple[int, list[RejectedRow]]:
    """The upsert, merged by ``merge_traits`` itself, then every result read back that is over the limit."""
    written = (await connection.execute(sqlite_upsert(replace))).rowcount
    return written, _over_limit((await connection.execute(oversized_query())).all())


def _over_limit(rows: Sequence[Any]) -> list[RejectedRow]:
    """The ``(last position, stored traits)`` rows whose traits are over the size limit, in stream order."""
    rejected: list[RejectedRow] = []
    for position, traits in rows:
        try:
            check_traits_size(traits, "traits")
        except InvalidArgument as exc:
            rejected.append(RejectedRow(int(position), exc.field, exc.message))
    return sorted(rejected, key=lambda row: row.position)


class _StreamFailed(Exception):
    """An error of the caller's stream, carried past ``store_operation``.

    Not to be taken for a database failure: an ``OSError`` from the client is not the database's.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _chain(
    first: Sequence[StagedProfile], rest: AsyncIterator[Sequence[StagedProfile]]
) -> AsyncIterator[Sequence[StagedProfile]]:
    yield first
    while True:
        try:
            batch = await anext(rest)
        except StopAsyncIteration:
            return
        except Exception as error:
            raise _StreamFailed(error) from error
        yield batch
