"""SQLite point operations run inline on the event loop: one short transaction, no thread hop.

    SqliteInline.for_engine(engine)    the engine's point operations (None on PostgreSQL)
    await inline.write(work)           ``work(connection)`` in a BEGIN IMMEDIATE transaction
    await inline.write(work, on_commit=f)   and ``f(result)`` in the same step as an inline commit
    await inline.read(work)            ``work(connection)`` in a read transaction
    one_writer(engine)                 this process's SQLite writers, one at a time

aiosqlite runs every DBAPI call (cursor, execute, fetch, close, commit) as its own round trip
to its thread, and each round trip waits for the event loop: an upsert was about twelve of
them, ~2 ms of CPU, and while the single write lock was held each one queued behind the
reads the loop was serving (p99 above a second with 10% writes). A thread per transaction
instead of per call still cost a hand-over each way and the threads' contention for the GIL
under load. The point operations of the hot path — a profile's upsert, events, erasure and
the cache miss's one statement — touch one user's rows, so they run here as synchronous Core
statements on a connection of the loop's own: the tens of microseconds SQLite works are less
than any hand-over would cost. Scans, listings, imports and segment writes stay on the async
engine.

Never blocking the loop on a lock: the inline connection's busy timeout is 0, so when another
process holds SQLite's write lock (a CLI command on the same file, a second server), the
operation fails at once with SQLITE_BUSY and is run again in a thread whose connection waits
for the lock with the configured busy timeout. Work callers know to be large (many events in
one call) goes to that thread directly. Checkpoints of the write-ahead log, which SQLite would
otherwise run inside an inline commit, run in the thread too, after every
``CHECKPOINT_EVERY_WRITES`` inline writes.

Ordered with the commits: ``on_commit`` runs right after an inline commit, in the same
synchronous step of the event loop, before any other task can run. So the effects of
``on_commit`` (the profile cache's write-through, ``segmentd.profiles``) are ordered exactly as
this process's commits. It is never called for work that ran in the thread (its commit and the
loop's next step are not one step), which the caller must handle another way (invalidate).

Cancellation: a call cancelled while its work waits in the thread cannot stop it; the writer
lock stays held until the work ends, and the call's outcome is unknown to its caller, as with
any cancelled call (re-sending an upsert, an erasure or an import is safe).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Execution option asking the SQLite ``begin`` hook for ``BEGIN IMMEDIATE``.
WRITE_LOCK_OPTION: Final = "segmentd_write_lock"

#: Inline writes between two write-ahead-log checkpoints (run in the thread). SQLite's own
#: automatic checkpoint comes after ~1,000 pages; a point write changes a few.
CHECKPOINT_EVERY_WRITES: Final = 256

# SQLite's primary result codes for "another connection holds the lock".
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

_INLINE_BY_ENGINE: weakref.WeakKeyDictionary[Engine, SqliteInline] = weakref.WeakKeyDictionary()

# One asyncio lock per SQLite engine, created on first use; PostgreSQL needs none.
_WRITERS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def one_writer(engine: AsyncEngine) -> AsyncIterator[None]:
    """On SQLite, let this process's writers take the database write lock one at a time.

    SQLite admits one writer; the others wait in its busy handler, which sleeps and polls
    (adding up to tens of milliseconds each) and gives up after the busy timeout. Queueing
    them here instead hands the lock over as soon as it is free. PostgreSQL: no-op.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _WRITERS.setdefault(engine.sync_engine, asyncio.Lock())
    async with lock:
        yield


class SqliteInline:
    """Synchronous engines on the same SQLite file: one used inline, one by a thread.

    Args:
        engine: the async engine whose database this serves; its writer lock is shared.
        sync_url: the same database, with the synchronous ``pysqlite`` driver.
        configure: ``configure(engine, busy_timeout_ms)`` gives a synchronous engine the
            connection and BEGIN hooks the async engine has (pragmas, SQL functions).
        busy_timeout_ms: how long the thread's connections wait for another writer.
        json_serializer: the async engine's JSON serializer.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        sync_url: URL,
        configure: Callable[[Engine, int], None],
        busy_timeout_ms: int,
        json_serializer: Callable[[object], str],
    ) -> None:
        self._async_engine = weakref.ref(engine)
        # One connection: inline work runs one at a time, on the loop's thread.
        self._inline = create_engine(sync_url, pool_size=1, max_overflow=0, json_serializer=json_serializer)
        configure(self._inline, 0)
        # Its commits never checkpoint the log inline: _checkpoint_log does, in the thread.
        event.listen(self._inline, "connect", _no_automatic_checkpoint)
        self._waiting = create_engine(
            sync_url,
            connect_args={"check_same_thread": False},  # the thread is replaced after dispose()
            pool_size=1,
            max_overflow=0,
            json_serializer=json_serializer,
        )
        configure(self._waiting, busy_timeout_ms)
        self._thread: ThreadPoolExecutor | None = None
        self._writes_since_checkpoint = 0
        self._checkpoint: asyncio.Future[None] | None = None
        _INLINE_BY_ENGINE[engine.sync_engine] = self
        event.listen(engine.sync_engine, "engine_disposed", self._close)

    @property
    def engines(self) -> tuple[Engine, Engine]:
        """The synchronous engines (inline, thread): their events see every statement."""
        return self._inline, self._waiting

    @staticmethod
    def for_engine(engine: AsyncEngine | Engine) -> SqliteInline | None:
        """Return the point operations of ``engine`` (a SQLite engine), None for others."""
        return _INLINE_BY_ENGINE.get(engine.sync_engine if isinstance(engine, AsyncEngine) else engine)

    async def write(
        self,
        work: Callable[[Connection], _T],
        *,
        large: bool = False,
        on_commit: Callable[[_T], object] | None = None,
    ) -> _T:
        """Run ``work`` in a write transaction (the database's write lock held throughout).

        Committed when ``work`` returns, rolled back when it raises. ``large`` work (more
        than a few rows) runs in the thread, so the loop never waits on it. ``on_commit``
        gets the result of work committed inline, in the same step of the loop as the
        commit; it is not called for work that ran in the thread.
        """
        engine = self._async_engine()
        if engine is None:  # pragma: no cover - the async engine outlives its repositories
            raise RuntimeError("the SQLite engine was garbage-collected")
        async with one_writer(engine):
            result = await self._run(work, write=True, large=large, on_commit=on_commit)
        self._writes_since_checkpoint += 1
        if self._writes_since_checkpoint >= CHECKPOINT_EVERY_WRITES and self._checkpoint is None:
            self._writes_since_checkpoint = 0
            self._checkpoint = asyncio.ensure_future(self._checkpoint_log())
        return result

    async def checkpointed(self) -> None:
        """Wait until the log checkpoint running in the thread, if one is, has finished."""
        if self._checkpoint is not None:
            await asyncio.shield(self._checkpoint)

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a read transaction: its statements see one snapshot."""
        return await self._run(work, write=False, large=False)

    async def _run(
        self,
        work: Callable[[Connection], _T],
        *,
        write: bool,
        large: bool,
        on_commit: Callable[[_T], object] | None = None,
    ) -> _T:
        if not large:
            try:
                result = _transaction(self._inline, work, write=write)
            except sa_exc.OperationalError as error:
                if not _is_busy(error):
                    raise
            else:
                # No await between the commit and this call: nothing else ran in between.
                if on_commit is not None:
                    on_commit(result)
                return result
        # Busy (another process holds the lock) or large: in the thread, which may wait.
        return await _finished(self._executor().submit(_transaction, self._waiting, work, write=write))

    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="segmentd-sqlite")
        return self._thread

    async def _checkpoint_log(self) -> None:
        try:
            await _finished(self._executor().submit(_checkpoint, self._waiting))
        except Exception as error:  # a checkpoint is an optimisation: log it, never fail a call
            log.warning("SQLite checkpoint failed: %s", type(error).__name__, exc_info=error)
        finally:
            self._checkpoint = None

    def _close(self, *_args: Any) -> None:
        # After dispose() the async engine may be used again: the thread starts anew on demand.
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        self._inline.dispose()
        self._waiting.dispose()


def _transaction(engine: Engine, work: Callable[[Connection], _T], *, write: bool) -> _T:
    with engine.connect() as connection:
        if write:
            connection.execution_options(**{WRITE_LOCK_OPTION: True})
        with connection.begin():
            return work(connection)


def _no_automatic_checkpoint(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _checkpoint(engine: Engine) -> None:
    with engine.connect() as connection:
        # PASSIVE: copies what it can without waiting for, or blocking, readers and writers.
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _is_busy(error: sa_exc.OperationalError) -> bool:
    code = getattr(error.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _BUSY_CODES


async def _finished(future: Future[_T]) -> _T:
    """Await ``future``; when cancelled, wait for the thread to end before re-raising.

    The caller's locks (the writer lock) must stay held while the thread still writes.
    """
    waiting = asyncio.wrap_future(future)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        await asyncio.wait([waiting])
        raise
