"""SQLite point operations in one thread hop each, instead of one hop per driver call.

    SqliteThreads.for_engine(engine)   the engine's threads (None on PostgreSQL)
    await threads.write(work)          ``work(connection)`` in a BEGIN IMMEDIATE transaction
    await threads.read(work)           ``work(connection)`` in a read transaction

aiosqlite runs every DBAPI call (cursor, execute, fetch, close, commit) as its own round trip
to its thread, and each round trip waits for the event loop: an upsert is about twelve of them,
~2 ms of CPU, and while the single write lock is held each one queues behind the reads the
loop is serving. Here the whole transaction (a few Core statements) runs as one function on a
synchronous SQLAlchemy connection in a thread: one round trip, and sqlite3 releases the GIL
while it works. The profile writes (upsert, events, erasure) and the reads of the hot path
(the cache miss) go this way; scans, listings, imports and segment writes stay on the async
engine, and every writer of either kind takes the process's one writer lock
(``database.one_writer``), so SQLite still sees one writer at a time.

Cancellation: a call cancelled while its transaction runs in the thread cannot stop it. The
writer lock stays held until the transaction ends, and the call's outcome is unknown to its
caller, as with any cancelled call (re-sending an upsert or an erasure is safe).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

_T = TypeVar("_T")

#: Threads serving reads: SQLite in WAL mode lets them read beside the writer.
READER_THREADS: Final = 2

#: Execution option asking the SQLite ``begin`` hook for ``BEGIN IMMEDIATE``.
WRITE_LOCK_OPTION: Final = "segmentd_write_lock"

_THREADS_BY_ENGINE: weakref.WeakKeyDictionary[Engine, SqliteThreads] = weakref.WeakKeyDictionary()

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


class SqliteThreads:
    """A synchronous engine on the same SQLite file, and the threads that use it.

    Args:
        engine: the async engine whose database this serves; its writer lock is shared.
        sync_url: the same database, with the synchronous ``pysqlite`` driver.
        configure: applied to the synchronous engine (the connection and BEGIN hooks the
            async engine has, so both see the same pragmas and SQL functions).
        json_serializer: the async engine's JSON serializer.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        sync_url: URL,
        configure: Callable[[Engine], None],
        json_serializer: Callable[[object], str],
    ) -> None:
        self._async_engine = weakref.ref(engine)
        # check_same_thread=False: a pooled connection may serve another of these threads
        # later, but only ever one thread at a time (the pool hands it out to one).
        self._engine = create_engine(
            sync_url,
            connect_args={"check_same_thread": False},
            pool_size=READER_THREADS + 1,
            max_overflow=0,
            json_serializer=json_serializer,
        )
        configure(self._engine)
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        _THREADS_BY_ENGINE[engine.sync_engine] = self
        event.listen(engine.sync_engine, "engine_disposed", self._close)

    @property
    def engine(self) -> Engine:
        """The synchronous engine the threads use (its events see their statements)."""
        return self._engine

    @staticmethod
    def for_engine(engine: AsyncEngine | Engine | Connection) -> SqliteThreads | None:
        """Return the threads of ``engine`` (a SQLite engine or connection), None for others."""
        if isinstance(engine, AsyncEngine):
            engine = engine.sync_engine
        elif isinstance(engine, Connection):
            engine = engine.engine
        return _THREADS_BY_ENGINE.get(engine)

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a write transaction (the database's write lock held throughout).

        Committed when ``work`` returns, rolled back when it raises.
        """
        engine = self._async_engine()
        if engine is None:  # pragma: no cover - the async engine outlives its repositories
            raise RuntimeError("the SQLite engine was garbage-collected")
        async with one_writer(engine):
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="segmentd-sqlite-writer")
            return await _finished(self._writer.submit(self._transaction, work, write=True))

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a read transaction: its statements see one snapshot."""
        if self._readers is None:
            self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="segmentd-sqlite-reader")
        return await _finished(self._readers.submit(self._transaction, work, write=False))

    def _transaction(self, work: Callable[[Connection], _T], *, write: bool) -> _T:
        with self._engine.connect() as connection:
            if write:
                connection.execution_options(**{WRITE_LOCK_OPTION: True})
            with connection.begin():
                return work(connection)

    def _close(self, *_args: Any) -> None:
        # After dispose() the async engine may be used again: threads start anew on demand.
        for executor in (self._writer, self._readers):
            if executor is not None:
                executor.shutdown(wait=True)
        self._writer = self._readers = None
        self._engine.dispose()


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
