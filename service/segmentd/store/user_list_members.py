"""Bulk changes to a user list's members, all or nothing: a new table for a large load, else a set operation.

    PostgreSQL, a large load (a replace or a load into an empty list of more than REBUILD_IDS
    ids, or a replace of a list of more than REBUILD_MEMBERS):
        ids ─> one COPY into a new leaf (user_list_tables.new_leaf) ─> its unique index
            ─> swap it for the list's leaf ─> NOTIFY '*' ─> member_count ─> COMMIT
    otherwise (and SQLite):
        ids ─> TEMP segmentd_list_staging(user_id)       PostgreSQL: COPY; SQLite: executemany
            ─> add:     INSERT INTO user_list_members SELECT DISTINCT ... ORDER BY user_id
                        ON CONFLICT DO NOTHING
               remove:  DELETE ... WHERE user_id IN (staging)
               replace: DELETE ... WHERE NOT EXISTS (staging), then the insert of add
            ─> user_lists.member_count += inserted - deleted ─> COMMIT

Replace is one transaction: readers see the old members or the new ones, never a mix
(PostgreSQL's MVCC; SQLite's WAL snapshot). A small change writes only the difference, through
the root and its notifying triggers, so replacing a list by a slightly different one touches,
and notifies, only the users whose membership moved. The list's row is locked first, so
concurrent changes to one list queue and ``member_count`` stays exact. As in
``segmentd.store.importer``, SQLite stages in a transaction of its own (the connection's temp
database only) so that other writers are not locked out while ids stream in.

Why a large load builds a table (docs/bench.md has the figures): inserting millions of rows into
an indexed table with a transition-table trigger cost 5-10 times the bare COPY; a table created
in the transaction, indexed after its load, costs about twice. PostgreSQL receives the ids as
COPY text, one chunk per message, while later messages still arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.errors import UserListNotFound
from segmentd.store.database import asyncpg_connection, rowcount
from segmentd.store.sqlite_inline import WRITE_LOCK_OPTION, one_writer
from segmentd.store.user_list_tables import (
    ensure_list_tables,
    index_leaf,
    new_leaf,
    notify_members_changed,
    swap_leaf,
)

#: add, remove, or replace a list's members.
ChangeKind = Literal["add", "remove", "replace"]

STAGING_NAME: Final = "segmentd_list_staging"
#: PostgreSQL ``statement_timeout`` inside a change, which may move millions of rows.
BULK_STATEMENT_TIMEOUT_MS: Final = 600_000
#: Up to this many changed users are named for the cache (beyond it, everything is dropped).
MAX_NAMED_CHANGES: Final = 10_000
#: A replace (or a load into an empty list) of more ids than this builds the list's table anew
#: (``segmentd.store.user_list_tables``); so does a replace of a list of more than
#: ``REBUILD_MEMBERS``. Smaller changes write only the difference, through the notifying root.
REBUILD_IDS: Final = MAX_NAMED_CHANGES
REBUILD_MEMBERS: Final = 100_000

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
    """Apply a change on PostgreSQL in one transaction: a new table for a large load, else a set operation."""
    async with connection.begin():
        await connection.execute(text(f"SET LOCAL statement_timeout = {BULK_STATEMENT_TIMEOUT_MS}"))
        count = await _lock_list(connection, name, for_update=True)
        await ensure_list_tables(connection, name)
        empty = not (await connection.execute(text(_HAS_MEMBERS), {"name": name})).scalar_one()
        head, more = await _first_batches(batches, REBUILD_IDS)
        if kind == "replace" or (kind == "add" and empty):
            large_list = not empty and count > REBUILD_MEMBERS
            if more or (kind == "replace" and large_list):
                return await _rebuild(connection, name, _copy_text(head, batches if more else None))
        staged = _Staged(set())
        for batch in head:
            staged.note(batch)
        # "C": the collation of user_list_members.user_id, so the sort is in the key's order.
        await connection.execute(
            text(f'CREATE TEMP TABLE {STAGING_NAME} (user_id text COLLATE "C" NOT NULL) ON COMMIT DROP')
        )
        rest = _noted(batches, staged) if more else None
        await (await asyncpg_connection(connection)).copy_to_table(
            STAGING_NAME, source=_copy_text(head, rest), columns=["user_id"]
        )
        if not empty:
            # Temporary tables are never analysed automatically: without it the planner
            # guesses, and the anti-join of a replace needs the staged table's size.
            await connection.execute(text(f"ANALYZE {STAGING_NAME}"))
        return await _apply(connection, name, kind, count, staged, empty=empty)


async def _rebuild(connection: AsyncConnection, name: str, source: AsyncIterator[bytes]) -> MemberChange:
    """Load the ids into a new table, index it, and swap it in for the list's members.

    The rows never pass through the root, so its notifying triggers do not see them: the
    change notifies every replica itself.
    """
    leaf = await new_leaf(connection, name)
    status = await (await asyncpg_connection(connection)).copy_to_table(
        leaf, source=source, columns=["user_id"]
    )
    leaf, count = await _indexed(connection, name, leaf, int(status.split()[-1]))
    await swap_leaf(connection, name, leaf)
    await notify_members_changed(connection, None)
    await _store_count(connection, name, count)
    return MemberChange(count, None)


async def _indexed(connection: AsyncConnection, name: str, leaf: str, count: int) -> tuple[str, int]:
    """Index the loaded leaf; if an id came twice, copy each id once into another leaf first.

    Building the unique index is the cheapest test of uniqueness; the copy is paid only by a
    stream that repeats ids.
    """
    try:
        async with connection.begin_nested():
            await index_leaf(connection, leaf)
        return leaf, count
    except IntegrityError:
        pass
    distinct = await new_leaf(connection, name)
    copy = f"INSERT INTO {distinct} (user_id) SELECT DISTINCT user_id FROM {leaf}"
    count = rowcount(await connection.execute(text(copy)))
    await connection.execute(text(f"DROP TABLE {leaf}"))
    await index_leaf(connection, distinct)
    return distinct, count


async def _first_batches(
    batches: AsyncIterator[Sequence[str]], limit: int
) -> tuple[list[Sequence[str]], bool]:
    """Read batches until more than ``limit`` ids came; return them and whether the stream goes on."""
    head: list[Sequence[str]] = []
    total = 0
    async for batch in batches:
        head.append(batch)
        total += len(batch)
        if total > limit:
            return head, True
    return head, False


async def _noted(batches: AsyncIterator[Sequence[str]], staged: _Staged) -> AsyncIterator[Sequence[str]]:
    async for batch in batches:
        staged.note(batch)
        yield batch


async def _copy_text(
    head: Sequence[Sequence[str]], rest: AsyncIterator[Sequence[str]] | None
) -> AsyncIterator[bytes]:
    """The ids as the data of one ``COPY ... FROM STDIN`` (text format), a chunk per batch.

    Joining a batch is done in C; a record per id would cost Python a tuple and a call each.
    Checked ids hold no control character, so tab, newline and carriage return cannot occur:
    only the backslash needs escaping.
    """
    for batch in head:
        if batch:
            yield _copy_lines(batch)
    if rest is not None:
        async for batch in rest:
            if batch:
                yield _copy_lines(batch)


def _copy_lines(batch: Sequence[str]) -> bytes:
    lines = "\n".join(batch)
    if "\\" in lines:
        lines = lines.replace("\\", "\\\\")
    return (lines + "\n").encode()


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


async def _store_count(connection: AsyncConnection, name: str, count: int) -> None:
    await connection.execute(
        text("UPDATE user_lists SET member_count = :count, update_time = :now WHERE name = :name"),
        {"name": name, "count": count, "now": datetime.now(UTC)},
    )


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
    await _store_count(connection, name, count)
    too_many = staged.overflowed or len(removed) > MAX_NAMED_CHANGES
    return MemberChange(count, None if too_many else frozenset(staged.named | removed))
