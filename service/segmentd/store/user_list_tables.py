"""PostgreSQL: each user list's members in tables of their own, so a bulk load builds one and swaps it in.

    user_list_members               PARTITION BY LIST (list_name); the notifying triggers (0004)
    └── user_list_members_<h>       the list's table: PARTITION BY LIST (list_name) FOR VALUES IN (name)
        └── user_list_members_<h>_<g>
                                    the members: a plain table, UNIQUE (user_id), CHECK (list_name = name)

``<h>`` is 24 hex digits of md5(name) (a name may have 63 characters, as many as an identifier),
``<g>`` tells one load's table from the next. Statements on ``user_list_members`` with the list
named as a constant touch only that list's tables (partition pruning), and its leaf's unique
index serves both the probe of the hot path and the ordered listing.

Why a load builds a new leaf: a table created in the transaction has no index to maintain and no
trigger to capture rows for while ``COPY`` fills it; its index is built once, afterwards, from
sorted input. The CHECK constraint lets ATTACH skip the scan that would otherwise prove the rows
belong. Why two levels: dropping or detaching a partition takes an ACCESS EXCLUSIVE lock on its
parent. Swapping a list's leaf locks only that list's table, so readers of other lists never wait
for it (the service's statements name the list as a constant: a generic plan of one that
bound it would lock every partition, docs/bench.md). Readers of
the list itself wait for the swap, which takes milliseconds, but it must first wait for them:
each attempt gives up after ``LOCK_TIMEOUT_MS``, so a long listing of the list delays the swap,
not the readers queued behind it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Final

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.engine.validation import is_valid_segment_name
from segmentd.errors import UserListBusy
from segmentd.store.notifications import EVERY_PROFILE, NAMED_USERS_PER_STATEMENT, PROFILES_CHANNEL

#: The members' root table (partitioned on PostgreSQL).
ROOT: Final = "user_list_members"
#: How the name of every list's table (and of its leaves) begins.
LIST_PARTITION_PREFIX: Final = f"{ROOT}_"
#: How long one attempt to lock a list's table for a swap (or the root, to drop a list) waits.
LOCK_TIMEOUT_MS: Final = 50
#: How long the attempts may go on before the change gives up with ABORTED.
LOCK_BUDGET_S: Final = 60.0
#: Memory for sorting a load's ids into its index (PostgreSQL takes only what it needs):
#: 10 million ids sort in memory, without spilling to temporary files.
LOAD_MAINTENANCE_WORK_MEM: Final = "1GB"
_LOCK_NOT_AVAILABLE: Final = "55P03"
_FIRST_RETRY_S: Final = 0.02
_LAST_RETRY_S: Final = 1.0


def list_table(name: str) -> str:
    """The name of the table holding list ``name``'s members (the middle level)."""
    return f"{LIST_PARTITION_PREFIX}{hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:24]}"


def _literal(name: str) -> str:
    # DDL takes no parameters: the name goes into the text, which a slug can do safely.
    if not is_valid_segment_name(name):  # pragma: no cover - names are checked at the API
        raise ValueError(f"not a list name: {name!r}")
    return f"'{name}'"


async def new_leaf(connection: AsyncConnection, name: str) -> str:
    """Create an empty, unattached, unindexed table for list ``name``'s members; return its name.

    ``COPY`` into it needs only ``user_id``: ``list_name`` defaults to the list's name.
    """
    leaf = f"{list_table(name)}_{uuid.uuid4().hex[:8]}"
    await connection.execute(
        text(
            f"CREATE TABLE {leaf} (list_name varchar(63) NOT NULL DEFAULT {_literal(name)} "
            f'CHECK (list_name = {_literal(name)}), user_id varchar(256) COLLATE "C" NOT NULL)'
        )
    )
    return leaf


async def index_leaf(connection: AsyncConnection, leaf: str) -> None:
    """Build the leaf's unique index (raises ``IntegrityError`` if an id is there twice)."""
    await connection.execute(text(f"SET LOCAL maintenance_work_mem = '{LOAD_MAINTENANCE_WORK_MEM}'"))
    await connection.execute(text(f"CREATE UNIQUE INDEX {leaf}_key ON {leaf} (user_id)"))
    await connection.execute(text("SET LOCAL maintenance_work_mem TO DEFAULT"))


async def create_list_tables(connection: AsyncConnection, name: str) -> None:
    """Give a new list its (empty) tables, or empty the ones a list of that name left behind.

    Tables are left behind when a list's row is deleted in SQL (or the tables truncated): their
    rows belong to no list, and the new list starts empty.
    """
    table = list_table(name)
    if await _exists(connection, table):
        await swap_leaf(connection, name, await _indexed_empty_leaf(connection, name))
        return
    await connection.execute(
        text(
            f"CREATE TABLE {table} (list_name varchar(63) NOT NULL, "
            f'user_id varchar(256) COLLATE "C" NOT NULL) PARTITION BY LIST (list_name)'
        )
    )
    leaf = await _indexed_empty_leaf(connection, name)
    await connection.execute(
        text(f"ALTER TABLE {table} ATTACH PARTITION {leaf} FOR VALUES IN ({_literal(name)})")
    )
    # SHARE UPDATE EXCLUSIVE on the root: readers and writers of other lists go on.
    await connection.execute(
        text(f"ALTER TABLE {ROOT} ATTACH PARTITION {table} FOR VALUES IN ({_literal(name)})")
    )


async def ensure_list_tables(connection: AsyncConnection, name: str) -> None:
    """Create list ``name``'s tables if it has none (a list created in SQL)."""
    if not await _exists(connection, list_table(name)):
        await create_list_tables(connection, name)


async def swap_leaf(connection: AsyncConnection, name: str, leaf: str) -> None:
    """Make the indexed ``leaf`` list ``name``'s members, dropping the previous ones, atomically.

    Raises:
        UserListBusy: the list's table stayed locked by readers for ``LOCK_BUDGET_S``.
    """
    table = list_table(name)

    async def swap() -> None:
        for (old,) in await connection.execute(text(_LEAVES), {"table": table}):
            await connection.execute(text(f"DROP TABLE {old}"))
        await connection.execute(
            text(f"ALTER TABLE {table} ATTACH PARTITION {leaf} FOR VALUES IN ({_literal(name)})")
        )

    await with_short_locks(connection, name, swap)


async def drop_list_tables(connection: AsyncConnection, name: str) -> None:
    """Drop list ``name``'s tables (their detachment locks the root for a moment).

    Raises:
        UserListBusy: the root stayed locked by readers for ``LOCK_BUDGET_S``.
    """
    table = list_table(name)

    async def drop() -> None:
        await connection.execute(text(f"DROP TABLE IF EXISTS {table}"))

    await with_short_locks(connection, name, drop)


async def with_short_locks(
    connection: AsyncConnection, name: str, statements: Callable[[], Awaitable[None]]
) -> None:
    """Run ``statements`` in a savepoint whose lock waits give up soon, again until they succeed.

    A waiting ACCESS EXCLUSIVE request queues every later reader of the table behind it; giving
    up after ``LOCK_TIMEOUT_MS`` bounds that queueing, and retrying after a pause lets the
    readers through.
    """
    deadline = time.monotonic() + LOCK_BUDGET_S
    pause = _FIRST_RETRY_S
    while True:
        try:
            async with connection.begin_nested():
                await connection.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
                await statements()
                await connection.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
            return
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            if time.monotonic() + pause > deadline:
                raise UserListBusy(
                    f"user list {name!r} is being read by long statements; try again later"
                ) from error
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LAST_RETRY_S)


async def notify_members_changed(connection: AsyncConnection, changed: Collection[str] | None) -> None:
    """Tell listening replicas, as the root's triggers would, that these users' memberships moved.

    ``None`` (or more than ``NAMED_USERS_PER_STATEMENT`` users) means anyone's may have.
    """
    if changed is None or len(changed) > NAMED_USERS_PER_STATEMENT:
        changed = [EVERY_PROFILE]
    for user_id in changed:
        await connection.execute(
            text("SELECT pg_notify(:channel, :user_id)"), {"channel": PROFILES_CHANNEL, "user_id": user_id}
        )


async def _indexed_empty_leaf(connection: AsyncConnection, name: str) -> str:
    leaf = await new_leaf(connection, name)
    await connection.execute(text(f"CREATE UNIQUE INDEX {leaf}_key ON {leaf} (user_id)"))
    return leaf


async def _exists(connection: AsyncConnection, table: str) -> bool:
    found = await connection.execute(text("SELECT to_regclass(:table) IS NOT NULL"), {"table": table})
    return bool(found.scalar_one())


# The leaves under a list's table (one, unless a swap is under way in this transaction).
_LEAVES: Final = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = CAST(:table AS regclass)"
