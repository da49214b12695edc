"""PostgreSQL: a list's members in partitions of their own, loaded into a new table and swapped in.

The properties: a large load keeps the set semantics (duplicates), readers see the old members
or the new ones, never a mix, other replicas are told, a swap waits for the list's own readers
(without queueing everyone behind it) and never for another list's, and the tables follow the
list's life.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.engine.rules import ListReference, Rule
from segmentd.errors import InvalidArgument, UserListBusy
from segmentd.sqlgen.compiler import compile_rule_sql
from segmentd.store import user_list_tables
from segmentd.store.models import EventCountRow, ProfileRow, UserListMemberRow
from segmentd.store.notifications import EVERY_PROFILE, PROFILES_CHANNEL
from segmentd.store.profiles import _read_snapshot
from segmentd.store.user_list_members import REBUILD_IDS
from segmentd.store.user_list_tables import list_table
from segmentd.store.user_lists import UserListRepository
from tests.store.list_members import batches as _batches
from tests.store.list_members import members as _members

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]

LARGE = [f"u{n:06d}" for n in range(REBUILD_IDS + 500)]  # enough to take the new-table path


async def _leaves(engine: AsyncEngine, name: str) -> list[str]:
    query = text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(:table)")
    async with engine.connect() as connection:
        return list(await connection.scalars(query, {"table": list_table(name)}))


def _raw_url(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def repository(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> UserListRepository:
    repository = UserListRepository(engine, sessions)
    await repository.create("beta", "")
    await repository.create("other", "")
    return repository


async def test_replace__large_stream_with_repeated_ids__each_id_once(repository, engine):
    # Given ids repeated inside and across messages, more than a small change holds
    half = len(LARGE) // 2

    # When they replace the list
    change = await repository.change_members("beta", "replace", _batches(LARGE[:half], LARGE, LARGE[:10]))

    # Then each is a member once, counted once, in one leaf
    assert change.member_count == len(LARGE)
    assert await _members(engine, "beta") == LARGE
    assert (await repository.get("beta")).member_count == len(LARGE)
    assert len(await _leaves(engine, "beta")) == 1


async def test_add__large_stream_into_empty_list__loaded_then_small_adds_go_on(repository, engine):
    await repository.change_members("beta", "add", _batches(LARGE))

    change = await repository.change_members("beta", "add", _batches([LARGE[0], "zz"]))

    assert change.member_count == len(LARGE) + 1
    assert change.changed == {LARGE[0], "zz"}
    assert await _members(engine, "beta") == [*LARGE, "zz"]


async def test_replace__large_list_by_a_few__only_those_remain(repository, engine, monkeypatch):
    # Given a list larger than a difference is worth computing for
    monkeypatch.setattr("segmentd.store.user_list_members.REBUILD_MEMBERS", 100)
    await repository.change_members("beta", "replace", _batches(LARGE))

    # When it is replaced by three ids
    change = await repository.change_members("beta", "replace", _batches(["a", "b", "a"]))

    # Then they are the list, and every cached user is to be forgotten
    assert (change.member_count, change.changed) == (2, None)
    assert await _members(engine, "beta") == ["a", "b"]


async def test_replace__reader_during_the_load__sees_the_old_members_until_commit(repository, engine):
    # Given a list, and a replace whose stream stops halfway until released
    await repository.change_members("beta", "add", _batches(["old-1", "old-2"]))
    halfway, release = asyncio.Event(), asyncio.Event()

    async def stream() -> AsyncIterator[Sequence[str]]:
        yield LARGE[: REBUILD_IDS + 1]
        halfway.set()
        await release.wait()
        yield LARGE[REBUILD_IDS + 1 :]

    replacing = asyncio.create_task(repository.change_members("beta", "replace", stream()))
    await halfway.wait()

    # When readers look while the new table is being loaded
    during = await _members(engine, "beta")
    release.set()
    await replacing

    # Then they saw the old members, and the new ones after
    assert during == ["old-1", "old-2"]
    assert await _members(engine, "beta") == LARGE


async def test_replace__large__other_replicas_told_every_profile(repository, engine):
    # Given a replica listening on the profiles channel
    listener = await asyncpg.connect(_raw_url(engine))
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(PROFILES_CHANNEL, lambda *args: received.put_nowait(args[3]))
    try:
        # When a list is loaded through a new table (which the root's triggers never see)
        await repository.change_members("beta", "replace", _batches(LARGE))

        # Then the listener hears that any profile may have changed
        assert await asyncio.wait_for(received.get(), 30) == EVERY_PROFILE
    finally:
        await listener.close()


async def test_replace__reader_of_another_list_in_a_long_transaction__does_not_delay_it(repository, engine):
    # Given a transaction that read another list and stays open (its locks held)
    await repository.change_members("other", "add", _batches(["x"]))
    reader = await asyncpg.connect(_raw_url(engine))
    try:
        transaction = reader.transaction()
        await transaction.start()
        assert await reader.fetchval("SELECT count(*) FROM user_list_members WHERE list_name = 'other'") == 1

        # When this list is replaced through a new table
        change = await repository.change_members("beta", "replace", _batches(LARGE))

        # Then the swap did not wait for the reader
        assert change.member_count == len(LARGE)
        await transaction.rollback()
    finally:
        await reader.close()


async def test_replace__reader_of_the_list_in_a_long_transaction__swap_waits_without_blocking_readers(
    repository, engine
):
    # Given a transaction that read the list and stays open
    await repository.change_members("beta", "add", _batches(["old"]))
    holder = await asyncpg.connect(_raw_url(engine))
    other_reader = await asyncpg.connect(_raw_url(engine))
    try:
        transaction = holder.transaction()
        await transaction.start()
        assert await holder.fetchval("SELECT count(*) FROM user_list_members WHERE list_name = 'beta'") == 1

        # When the list is replaced meanwhile
        replacing = asyncio.create_task(repository.change_members("beta", "replace", _batches(LARGE)))
        await _wait_for_lock_attempts(other_reader)

        # Then other readers of the list still get the old members while the swap retries,
        read = "SELECT array_agg(user_id) FROM user_list_members WHERE list_name = 'beta'"
        assert await other_reader.fetchval(read) == ["old"]
        assert not replacing.done()

        # and the swap is made once the long transaction ends
        await transaction.rollback()
        assert (await replacing).member_count == len(LARGE)
        assert await other_reader.fetchval(
            "SELECT count(*) FROM user_list_members WHERE list_name = 'beta'"
        ) == len(LARGE)
    finally:
        await holder.close()
        await other_reader.close()


async def test_replace__list_locked_longer_than_the_budget__aborted_and_unchanged(
    repository, engine, monkeypatch
):
    # Given a transaction that keeps the list's table locked, and a short budget
    monkeypatch.setattr(user_list_tables, "LOCK_BUDGET_S", 0.3)
    await repository.change_members("beta", "add", _batches(["old"]))
    holder = await asyncpg.connect(_raw_url(engine))
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.fetchval("SELECT count(*) FROM user_list_members WHERE list_name = 'beta'")

        # When the list is replaced
        with pytest.raises(UserListBusy):
            await repository.change_members("beta", "replace", _batches(LARGE))
        await transaction.rollback()
    finally:
        await holder.close()

    # Then nothing changed
    assert await _members(engine, "beta") == ["old"]
    assert (await repository.get("beta")).member_count == 1


async def test_delete__list_tables_dropped_and_a_new_list_of_that_name_starts_empty(repository, engine):
    await repository.change_members("beta", "replace", _batches(LARGE))

    await repository.delete("beta")
    async with engine.connect() as connection:
        gone = await connection.scalar(text("SELECT to_regclass(:t) IS NULL"), {"t": list_table("beta")})
    await repository.create("beta", "")

    assert gone
    assert await _members(engine, "beta") == []


async def test_create__tables_left_by_a_list_deleted_in_sql__emptied(repository, engine):
    # Given a list whose row was deleted straight in SQL, leaving its members' tables
    await repository.change_members("beta", "add", _batches(["stale"]))
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM user_lists WHERE name = 'beta'"))

    # When a list of that name is created
    await repository.create("beta", "")

    # Then it has no members
    assert await _members(engine, "beta") == []
    assert len(await _leaves(engine, "beta")) == 1


async def test_members_written_in_sql__list_without_tables__refused(engine):
    # A list created in SQL has no tables until the store first changes it: rows for it are refused
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO user_lists (name, description, member_count, create_time, update_time) "
                "VALUES ('by-hand', '', 0, now(), now())"
            )
        )
    with pytest.raises(Exception, match="no partition"):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO user_list_members VALUES ('by-hand', 'u1')"))


async def _wait_for_lock_attempts(connection: asyncpg.Connection) -> None:
    """Return once a swap has waited for a lock on a list's table (and timed out) at least once."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'DROP TABLE user_list_members_%'"
    )
    while not await connection.fetchval(query):
        await asyncio.sleep(0.005)


async def test_replace__stream_fails_during_the_copy__error_raised_and_nothing_changed(repository, engine):
    # Given a list, and a large stream that fails after its first batches reached COPY
    await repository.change_members("beta", "add", _batches(["old"]))

    async def failing() -> AsyncIterator[Sequence[str]]:
        yield LARGE
        yield LARGE[:5]
        raise InvalidArgument("user_ids[12345]", "bad")

    # When it replaces the list
    with pytest.raises(InvalidArgument, match=r"user_ids\[12345\]"):
        await repository.change_members("beta", "replace", failing())

    # Then the error is the stream's, the list is as it was, and the store goes on working
    assert await _members(engine, "beta") == ["old"]
    assert (await repository.change_members("beta", "add", _batches(["new"]))).member_count == 2


# Past PostgreSQL's five custom plans, a prepared statement may run a generic plan; a generic plan
# that bound the list's name would lock every list's tables for its transaction (PostgreSQL 15
# locks before pruning at run time). Both statements that test membership name the list instead.


async def test_replace__cache_misses_of_another_list_in_a_long_transaction__do_not_delay_it(
    repository, engine, monkeypatch
):
    # Given a transaction that ran the cache miss's statement on another list, prepared and
    # repeated past the custom plans, and stays open
    monkeypatch.setattr(user_list_tables, "LOCK_BUDGET_S", 0.3)
    await repository.change_members("other", "add", _batches(["x"]))
    shape: tuple[frozenset[tuple[str, int]], frozenset[str]] = (frozenset(), frozenset({"other"}))
    async with engine.connect() as reader, reader.begin():
        for _ in range(10):
            snapshot = await reader.run_sync(functools.partial(_read_snapshot, "x", shape, datetime.now(UTC)))
        assert snapshot is None  # no profile; the list was probed all the same

        # When this list is replaced through a new table
        change = await repository.change_members("beta", "replace", _batches(LARGE))

    # Then the swap did not wait for the reader
    assert change.member_count == len(LARGE)


def _no_segments(name: str) -> Rule:
    raise KeyError(name)


async def test_replace__in_list_queries_of_another_list_in_a_long_transaction__do_not_delay_it(
    repository, engine, monkeypatch
):
    # Given a transaction that counted an in_list rule's members on another list, prepared and
    # repeated past the custom plans (as statistics and comparisons run it), and stays open
    monkeypatch.setattr(user_list_tables, "LOCK_BUDGET_S", 0.3)
    await repository.change_members("other", "add", _batches(["x"]))
    profiles, members = ProfileRow.__table__, UserListMemberRow.__table__
    condition = compile_rule_sql(
        ListReference("other"),
        dialect="postgresql",
        profiles=profiles,
        events=EventCountRow.__table__,
        now=datetime.now(UTC),
        percentile_thresholds={},
        resolve_rule=_no_segments,
        list_members=members,
    )
    count = select(func.count()).select_from(profiles).where(condition)
    async with engine.connect() as reader, reader.begin():
        for _ in range(10):
            assert await reader.scalar(count) == 0

        # When this list is replaced through a new table
        change = await repository.change_members("beta", "replace", _batches(LARGE))

    # Then the swap did not wait for the reader
    assert change.member_count == len(LARGE)
