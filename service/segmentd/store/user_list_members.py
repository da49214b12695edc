"""Bulk changes to a user list's members: stage the stream, then one set operation, all or nothing.

    ids ─> TEMP segmentd_list_staging(user_id)       PostgreSQL: COPY; SQLite: executemany
        ─> add:     INSERT INTO user_list_members SELECT DISTINCT ... ORDER BY user_id
                    ON CONFLICT DO NOTHING
           remove:  DELETE ... WHERE user_id IN (staging)
           replace: DELETE ... WHERE NOT EXISTS (staging), then the insert of add
        ─> user_lists.member_count += inserted - deleted ─> COMMIT

Replace is one transaction: readers see the old members or the new ones, never a mix
(PostgreSQL's MVCC; SQLite's WAL snapshot). Only the difference is written, so replacing a
list by a slightly different one touches, and notifies, only the users whose membership moved.
The list's row is locked first, so concurrent changes to one list queue and ``member_count``
stays exact. As in ``segmentd.store.importer``, SQLite stages in a transaction of its own (the
connection's temp database only) so that other writers are not locked out while ids stream in.

What makes a large load cheaper (docs/bench.md has the figures): when the list has no members
(a first import, or a replace of an emptied list) there is no difference to compute and no
conflict to check, so the insert is a plain ``INSERT ... SELECT DISTINCT``; the staged ids are
sorted in the members' key order (the ``"C"`` collation of migration 0006) so the primary key's
B-tree is filled left to right instead of at random; and PostgreSQL's ``COPY`` sends
``COPY_BATCH`` ids a statement however small the client's messages are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.errors import UserListNotFound
from segmentd.store.database import rowcount
from segmentd.store.sqlite_inline import WRITE_LOCK_OPTION, one_writer

#: add, remove, or replace a list's members.
ChangeKind = Literal["add", "remove", "replace"]

STAGING_NAME: Final = "segmentd_list_staging"
#: PostgreSQL ``statement_timeout`` inside a change, which may move millions of rows.
BULK_STATEMENT_TIMEOUT_MS: Final = 600_000
#: Up to this many changed users are named for the cache (beyond it, everything is dropped).
MAX_NAMED_CHANGES: Final = 10_000
#: Ids sent to PostgreSQL per COPY statement (each statement costs a few round trips).
COPY_BATCH: Final = 100_000

# In the members' key order, so the primary key's B-tree is filled left to right. Without
# conflicts possible (an empty list, locked) ON CONFLICT's probe before each row is skipped.
_NEW_MEMBERS_OF_EMPTY = (
    f"INSERT INTO user_list_members (list_name, user_id) SELECT DISTINCT :name, user_id FROM {STAGING_NAME} "
    "ORDER BY user_id"
)
# The anti-join leaves out the members already there in one pass (a hash or merge join over
# the list's key range) instead of one probe of the primary key per id; ON CONFLICT then
# only guards the rare rows written in SQL meanwhile.
_NEW_MEMBERS = (
    "INSERT INTO user_list_members (list_name, user_id) "
    f"SELECT DISTINCT :name, s.user_id FROM {STAGING_NAME} AS s WHERE NOT EXISTS "
    "(SELECT 1 FROM user_list_members AS m WHERE m.list_name = :name AND m.user_id = s.user_id) "
    "ORDER BY s.user_id ON CONFLICT DO NOTHING"
)
_HAS_MEMBERS = "SELECT EXISTS (SELECT 1 FROM user_list_members WHERE list_name = :name)"
_REMOVED = (
    "DELETE FROM user_list_members WHERE list_name = :name "
    f"AND user_id IN (SELECT user_id FROM {STAGING_NAME})"
)
_NOT_STAGED = (
    f"list_name = :name AND NOT EXISTS (SELECT 1 FROM {STAGING_NAME} AS s "
    "WHERE s.user_id = user_list_members.user_id)"
)


@dataclass(frozen=True, slots=True)
class MemberChange:
    """What a change to a list's members did.

    Attributes:
        member_count: the list's member count after the change.
        changed: a superset of the users whose membership moved, or ``None`` when more than
            ``MAX_NAMED_CHANGES`` may have (the caller then forgets every cached user).
    """

    member_count: int
    changed: frozenset[str] | None


@dataclass
class _Staged:
    """The ids sent, as far as they are remembered."""

    named: set[str]
    overflowed: bool = False

    def note(self, user_ids: Sequence[str]) -> None:
        if not self.overflowed:
            self.named.update(user_ids)
            self.overflowed = len(self.named) > MAX_NAMED_CHANGES


async def change_postgresql(
    connection: AsyncConnection, name: str, kind: ChangeKind, batches: AsyncIterator[Sequence[str]]
) -> MemberChange:
    """Apply a change on PostgreSQL, in one transaction; COPY fills the staging table."""
    async with connection.begin():
        await connection.execute(text(f"SET LOCAL statement_timeout = {BULK_STATEMENT_TIMEOUT_MS}"))
        count = await _lock_list(connection, name, for_update=True)
        # "C": the collation of user_list_members.user_id, so the sort is in the key's order.
        await connection.execute(
            text(f'CREATE TEMP TABLE {STAGING_NAME} (user_id text COLLATE "C" NOT NULL) ON COMMIT DROP')
        )
        raw = (await connection.get_raw_connection()).driver_connection
        if raw is None:  # pragma: no cover - a checked-out connection always has one
            raise RuntimeError("no asyncpg connection")
        staged = _Staged(set())
        pending: list[tuple[str]] = []
        async for batch in batches:
            staged.note(batch)
            pending.extend((user_id,) for user_id in batch)
            if len(pending) >= COPY_BATCH:
                await raw.copy_records_to_table(STAGING_NAME, records=pending, columns=["user_id"])
                pending = []
        if pending:
            await raw.copy_records_to_table(STAGING_NAME, records=pending, columns=["user_id"])
        empty = not (await connection.execute(text(_HAS_MEMBERS), {"name": name})).scalar_one()
        if not empty:
            # Temporary tables are never analysed automatically: without it the planner
            # guesses, and the anti-join of a replace needs the staged table's size.
            await connection.execute(text(f"ANALYZE {STAGING_NAME}"))
        return await _apply(connection, name, kind, count, staged, empty=empty)


async def change_sqlite(
    connection: AsyncConnection, name: str, kind: ChangeKind, batches: AsyncIterator[Sequence[str]]
) -> MemberChange:
    """Apply a change on SQLite: stage in the temp database, then one write transaction."""
    staged = _Staged(set())
    try:
        async with connection.begin():
            await connection.execute(text(f"DROP TABLE IF EXISTS temp.{STAGING_NAME}"))
            await connection.execute(text(f"CREATE TEMP TABLE {STAGING_NAME} (user_id TEXT NOT NULL)"))
            insert_id = text(f"INSERT INTO {STAGING_NAME} (user_id) VALUES (:user_id)")
            async for batch in batches:
                staged.note(batch)
                if batch:
                    await connection.execute(insert_id, [{"user_id": user_id} for user_id in batch])
            # The anti-join of replace probes it once per member.
            await connection.execute(text(f"CREATE INDEX temp.ix_{STAGING_NAME} ON {STAGING_NAME} (user_id)"))
        await connection.execution_options(**{WRITE_LOCK_OPTION: True})
        async with one_writer(connection.engine), connection.begin():
            count = await _lock_list(connection, name, for_update=False)
            empty = not (await connection.execute(text(_HAS_MEMBERS), {"name": name})).scalar_one()
            return await _apply(connection, name, kind, count, staged, empty=empty)
    finally:
        await connection.execution_options(**{WRITE_LOCK_OPTION: False})
        if not connection.invalidated:
            async with connection.begin():
                await connection.execute(text(f"DROP TABLE IF EXISTS temp.{STAGING_NAME}"))


async def _lock_list(connection: AsyncConnection, name: str, *, for_update: bool) -> int:
    """Return the list's member count, locking its row (SQLite holds the write lock already)."""
    query = "SELECT member_count FROM user_lists WHERE name = :name" + (" FOR UPDATE" if for_update else "")
    count = (await connection.execute(text(query), {"name": name})).scalar_one_or_none()
    if count is None:
        raise UserListNotFound(f"user list {name!r} does not exist")
    return int(count)


async def _apply(
    connection: AsyncConnection,
    name: str,
    kind: ChangeKind,
    count: int,
    staged: _Staged,
    *,
    empty: bool,
) -> MemberChange:
    """Write the change; ``empty``: the list has no member rows (its row is locked)."""
    parameters: dict[str, Any] = {"name": name}
    removed: set[str] = set()
    inserted = deleted = 0
    if kind == "remove":
        if not empty:
            deleted = rowcount(await connection.execute(text(_REMOVED), parameters))
    elif empty:
        count = 0  # whatever the stored count said, there are no rows
        inserted = rowcount(await connection.execute(text(_NEW_MEMBERS_OF_EMPTY), parameters))
    else:
        if kind == "replace":
            # The members leaving, named (up to the limit) before they are deleted.
            sample = text(f"SELECT user_id FROM user_list_members WHERE {_NOT_STAGED} LIMIT :limit")
            removed.update(
                (await connection.execute(sample, {**parameters, "limit": MAX_NAMED_CHANGES + 1})).scalars()
            )
            delete = text(f"DELETE FROM user_list_members WHERE {_NOT_STAGED}")
            deleted = rowcount(await connection.execute(delete, parameters))
        inserted = rowcount(await connection.execute(text(_NEW_MEMBERS), parameters))
    count += inserted - deleted
    await connection.execute(
        text("UPDATE user_lists SET member_count = :count, update_time = :now WHERE name = :name"),
        {**parameters, "count": count, "now": datetime.now(UTC)},
    )
    too_many = staged.overflowed or len(removed) > MAX_NAMED_CHANGES
    return MemberChange(count, None if too_many else frozenset(staged.named | removed))
