"""SQLite point operations inline on the event loop: never blocking it, never losing a write.

The inline connection does not wait for SQLite's lock (busy timeout 0): when another process
holds it, the operation goes to a thread that waits, and the loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.errors import StoreUnavailable
from segmentd.store.database import (
    DatabaseSettings,
    create_engine,
    create_sessionmaker,
    dispose_when_returned,
)
from segmentd.store.profiles import ProfileRepository
from segmentd.store.sqlite_inline import CHECKPOINT_EVERY_WRITES, SqliteInline


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    return ProfileRepository(sessions)


@pytest.fixture
def sqlite_path(store_url: str) -> Path:
    if not store_url.startswith("sqlite"):
        pytest.skip("SQLite's point operations")
    return Path(str(make_url(store_url).database))


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as far as SQLite can tell: a connection of its own."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_upsert__lock_held_elsewhere__waits_off_the_loop_then_commits(
    sqlite_path: Path, profiles: ProfileRepository
) -> None:
    # Given: a stored profile, and SQLite's write lock held by another connection
    await profiles.upsert("u1", {"plan": "free"})
    holder = _hold_write_lock(sqlite_path)
    try:
        # When: an upsert waits for the lock
        upsert = asyncio.ensure_future(profiles.upsert("u1", {"plan": "paid"}))
        await asyncio.sleep(0.2)

        # Then: the loop still serves reads (the inline read sees the committed state)
        assert not upsert.done()
        assert (await profiles.get("u1")).traits == {"plan": "free"}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # and once the lock is free, the upsert commits
    assert (await upsert).traits == {"plan": "paid"}
    assert (await profiles.get("u1")).traits == {"plan": "paid"}


async def test_upsert__lock_held_past_the_busy_timeout__unavailable_and_nothing_written(
    sqlite_path: Path, store_url: str
) -> None:
    engine = create_engine(store_url, DatabaseSettings(sqlite_busy_timeout_ms=200))
    profiles = ProfileRepository(create_sessionmaker(engine))
    try:
        await profiles.upsert("u1", {"plan": "free"})
        holder = _hold_write_lock(sqlite_path)
        try:
            with pytest.raises(StoreUnavailable):
                await profiles.upsert("u1", {"plan": "paid"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert (await profiles.get("u1")).traits == {"plan": "free"}
    finally:
        await engine.dispose()


async def test_inline_writes__write_ahead_log_checkpointed_in_the_background(
    sqlite_path: Path, profiles: ProfileRepository, engine: AsyncEngine
) -> None:
    # Given: SQLite's own automatic checkpoints are off for the inline connection, so the
    # log would grow by every write without the background checkpoints
    wal = Path(f"{sqlite_path}-wal")
    page_size = sqlite3.connect(sqlite_path).execute("PRAGMA page_size").fetchone()[0]
    inline = SqliteInline.for_engine(engine)
    assert inline is not None

    # When: many times more writes than one checkpoint interval
    for number in range(6 * CHECKPOINT_EVERY_WRITES):
        await profiles.upsert(f"u{number % 50}", {"n": number, "padding": "x" * 2_000})
        # However busy the machine, the checkpoint started (if any) finishes before the next
        # write: the log's bound below is then a property of the mechanism, not of timing.
        await inline.checkpointed()

    # Then: the log is reused after each checkpoint instead of growing with every write
    # (each upsert writes at least one page: six intervals would be 6 x 256 pages and more)
    assert wal.stat().st_size < 3 * CHECKPOINT_EVERY_WRITES * page_size


def _inline(engine: AsyncEngine) -> SqliteInline:
    inline = SqliteInline.for_engine(engine)
    assert inline is not None
    return inline


def _profile_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        count: int = connection.execute("SELECT count(*) FROM profiles").fetchone()[0]
        return count


def _insert_profile(connection: Connection) -> str:
    connection.execute(
        text(
            "INSERT INTO profiles (user_id, traits, create_time, update_time) "
            "VALUES ('u1', '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    )
    return "u1"


async def test_write__on_commit__runs_after_the_commit_before_any_other_task(
    sqlite_path: Path, engine: AsyncEngine
) -> None:
    # Given: another task ready to run, which would find the row committed and on_commit not
    # yet called if the loop gave it a turn between the two
    calls: list[str] = []

    def committed() -> bool:
        return _profile_count(sqlite_path) == 1

    async def other_task() -> tuple[bool, bool]:
        return committed(), bool(calls)

    other = asyncio.ensure_future(other_task())

    def on_commit(user_id: str) -> None:
        assert committed()  # called once the commit is durable
        calls.append(user_id)

    # When
    result = await _inline(engine).write(_insert_profile, on_commit=on_commit)

    # Then: on_commit had the result, and nothing ran between the commit and it
    assert (result, calls) == ("u1", ["u1"])
    saw_committed, saw_on_commit = await other
    assert saw_on_commit or not saw_committed


async def test_write__lock_held_elsewhere__committed_in_the_thread_without_on_commit(
    sqlite_path: Path, engine: AsyncEngine
) -> None:
    # Given: SQLite's write lock held by another connection, so the work goes to the thread
    calls: list[str] = []
    holder = _hold_write_lock(sqlite_path)
    try:
        write = asyncio.ensure_future(_inline(engine).write(_insert_profile, on_commit=calls.append))
        await asyncio.sleep(0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # When: it commits there
    assert await write == "u1"
    # Then: on_commit is not called: that commit and the loop's next step are not one step
    assert calls == []


async def test_write__work_raises__rolled_back_without_on_commit(
    sqlite_path: Path, engine: AsyncEngine
) -> None:
    calls: list[str] = []

    def insert_then_fail(connection: Connection) -> str:
        _insert_profile(connection)
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await _inline(engine).write(insert_then_fail, on_commit=calls.append)
    assert calls == []
    assert _profile_count(sqlite_path) == 0


async def test_dispose_when_returned__checkpoint_of_the_last_writes__finished_before_the_store_closes(
    sqlite_path: Path, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given: exactly one checkpoint interval of writes, so the last one schedules a checkpoint
    engine = create_engine(store_url)
    profiles = ProfileRepository(create_sessionmaker(engine))
    for number in range(CHECKPOINT_EVERY_WRITES):
        await profiles.upsert(f"u{number}", {"n": number})
    # When: the store is closed at once, then its file goes (a stopped server's data removed)
    await dispose_when_returned(engine)
    for path in sqlite_path.parent.glob(f"{sqlite_path.name}*"):
        path.unlink()
    await asyncio.sleep(0.2)
    # Then: no checkpoint ran after the close (it would have opened the file again, and failed)
    assert "checkpoint failed" not in caplog.text
    assert not sqlite_path.exists()
