"""Engines, sessions and the one place where database failures become ``StoreUnavailable``.

    create_engine(url, settings)  ->  AsyncEngine           built at startup, never at import
    ping(engine)                  ->  bool                  does the database answer?
    create_sessionmaker(engine)   ->  async_sessionmaker    injected into the repositories
    @store_operation                                        wraps every repository method
    store_work()                                            the same, as ``async with``
    write_session(sessions)                                 a write transaction (locks on SQLite)
    read_session(sessions) / snapshot_session(sessions)     reads: autocommit / one snapshot

SQLite connections get ``foreign_keys=ON``, WAL, a busy timeout and the SQL functions of
``segmentd.sqlgen``; their transactions are begun by us (pysqlite's own handling would run
reads outside any transaction and cannot take the write lock up front). PostgreSQL
connections get a pool, ``pool_pre_ping``, a server-side ``statement_timeout`` and
``idle_in_transaction_session_timeout``, and taking one is bounded by the acquire timeout
(pool wait plus connect), so a hung server costs a call seconds, not its whole deadline.

Errors: a pool that stays exhausted raises ``ResourceExhausted`` (the database is fine,
the service is at capacity); anything meaning "the database cannot answer" raises
``StoreUnavailable``; a call's deadline passing raises ``DeadlineExceeded``
(``segmentd.store.deadlines``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, ParamSpec, TypeVar

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from segmentd.errors import ResourceExhausted, StoreUnavailable
from segmentd.sqlgen.functions import register_sqlite_functions
from segmentd.store.acquire import AcquireLimits, bound_acquisition, bounded, connect
from segmentd.store.deadlines import within_call_deadline
from segmentd.store.json_numbers import load_json
from segmentd.store.sqlite_inline import WRITE_LOCK_OPTION, SqliteInline, one_writer

log = logging.getLogger(__name__)

#: How the pool's connections name themselves to PostgreSQL (``pg_stat_activity``).
APPLICATION_NAME = "segmentd"

_P = ParamSpec("_P")
_T = TypeVar("_T")

_ASYNC_DRIVER_BY_DIALECT = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}

# SQLSTATE classes meaning "the database cannot answer now": 08 connection exception,
# 53 insufficient resources (too many connections, disk full), 57 operator intervention
# (statement timeout / query canceled, admin shutdown, cannot connect now), 58 system error,
# 28 invalid authorization (a rotated password) and 3D invalid catalog name (the database
# was dropped): whatever the cause, the store cannot serve until an operator acts.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "28", "3D", "53", "57", "58"})

# Single SQLSTATEs of the same meaning: 42P01 undefined_table, a table of the service's
# schema gone (dropped, renamed, a database never migrated). SQLite reports a missing table
# as an OperationalError, which already reads as unavailable: the two stores agree.
_UNAVAILABLE_SQLSTATES = frozenset({"42P01"})

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError and TimeoutError
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # pool exhausted for pool_timeout seconds
)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Connection settings; the defaults suit one service replica.

    Attributes:
        statement_timeout_ms: PostgreSQL ``statement_timeout`` of every connection (0 = none).
        connect_timeout_s: how long to wait for a new connection.
        pool_size: connections kept open per process (PostgreSQL).
        max_overflow: extra connections opened under load (PostgreSQL).
        pool_timeout_s: how long a caller waits for a free connection.
        pool_recycle_s: connections older than this are replaced (PostgreSQL).
        sqlite_busy_timeout_ms: how long SQLite waits for another writer's lock.
        idle_in_transaction_timeout_ms: PostgreSQL ends a session left idle inside a
            transaction for this long (0 = never): the net under a leaked transaction.
    """

    statement_timeout_ms: int = 5_000
    connect_timeout_s: float = 2.0
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout_s: float = 5.0
    pool_recycle_s: int = 1_800
    sqlite_busy_timeout_ms: int = 5_000
    idle_in_transaction_timeout_ms: int = 60_000


def normalize_url(url: str | URL) -> URL:
    """Return ``url`` with its async driver: ``postgresql://`` -> ``postgresql+asyncpg://``.

    Raises:
        ValueError: not a PostgreSQL or SQLite URL, or one naming a synchronous driver.
    """
    parsed = make_url(url)
    backend = "postgresql" if parsed.get_backend_name() == "postgres" else parsed.get_backend_name()
    driver = _ASYNC_DRIVER_BY_DIALECT.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite:///")
    if parsed.drivername not in (backend, driver, "postgres"):
        raise ValueError(f"unsupported driver {parsed.drivername!r}: use {driver}")
    return parsed.set(drivername=driver)


def create_engine(
    url: str | URL, settings: DatabaseSettings | None = None, *, statement_timeout_ms: int | None = None
) -> AsyncEngine:
    """Create the engine for ``url`` (PostgreSQL or SQLite); connects lazily.

    Args:
        url: ``postgresql://``, ``sqlite:///`` or their async forms.
        settings: pool and timeout settings (defaults: ``DatabaseSettings()``).
        statement_timeout_ms: overrides ``settings.statement_timeout_ms`` when given.

    Raises:
        ValueError: the URL names an unsupported database or driver.
    """
    settings = settings or DatabaseSettings()
    if statement_timeout_ms is not None:
        settings = replace(settings, statement_timeout_ms=statement_timeout_ms)
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed, settings)
    return _create_postgresql_engine(parsed, settings)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory the repositories take.

    ``expire_on_commit=False`` because records are read after the transaction ends.
    """
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgresql(session: AsyncSession) -> bool:
    """Whether ``session`` talks to PostgreSQL (otherwise SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def as_utc(time: datetime) -> datetime:
    """Return ``time`` in UTC; a naive time (SQLite drops offsets) is taken as UTC."""
    return time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)


def dump_json(value: object) -> str:
    r"""Serialize a JSON column value: compact, and non-ASCII characters kept as they are.

    On SQLite this matters: its JSON paths (3.40) compare an object key with its stored
    text, so a key written as ``"\u00e9"`` would never match the path ``$."é"``.
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _create_postgresql_engine(url: URL, settings: DatabaseSettings) -> AsyncEngine:
    # client_connection_check_interval: a backend notices within a second that its client
    # has gone and ends the statement. Cancelling a statement (a deadline, a cancelled call)
    # sends a cancel request, but the pool may close the connection first and with it the
    # request in flight; without the check, a statement waiting on a lock would go on until
    # statement_timeout with nobody to answer.
    server_settings = {"application_name": APPLICATION_NAME, "client_connection_check_interval": "1000"}
    if settings.statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    if settings.idle_in_transaction_timeout_ms:
        server_settings["idle_in_transaction_session_timeout"] = str(settings.idle_in_transaction_timeout_ms)
    engine = create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_recycle=settings.pool_recycle_s,
        # A connection killed by a failover or a restart is replaced instead of failing a call.
        pool_pre_ping=True,
        connect_args={"timeout": settings.connect_timeout_s, "server_settings": server_settings},
        json_serializer=dump_json,
        json_deserializer=load_json,
    )
    bound_acquisition(
        engine,
        AcquireLimits(
            settings.connect_timeout_s, settings.pool_timeout_s, settings.pool_size + settings.max_overflow
        ),
    )
    return engine


def _create_sqlite_engine(url: URL, settings: DatabaseSettings) -> AsyncEngine:
    if url.database in (None, "", ":memory:") or (url.query.get("mode") == "memory"):
        # Each connection of an in-memory database is a database of its own, and the
        # service's connections (its pool, its inline point operations) must share one.
        raise ValueError("an in-memory SQLite database cannot be shared: give sqlite:///PATH")
    engine = create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        connect_args={"timeout": settings.connect_timeout_s},
        json_serializer=dump_json,
    )
    busy_timeout_ms = int(settings.sqlite_busy_timeout_ms)
    _configure_sqlite(engine.sync_engine, busy_timeout_ms)
    SqliteInline(engine, url.set(drivername="sqlite+pysqlite"), _configure_sqlite, busy_timeout_ms, dump_json)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Give every connection of ``engine`` the service's pragmas, functions and BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # None stops pysqlite from opening transactions itself; _on_begin does it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # NORMAL is durable against application crashes in WAL mode and much faster than FULL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A write transaction takes the write lock first: a deferred one that reads, then
        # writes, fails with SQLITE_BUSY_SNAPSHOT when another writer committed in between,
        # and busy_timeout does not help there.
        immediate = connection.get_execution_options().get(WRITE_LOCK_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@asynccontextmanager
async def write_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session in a write transaction, committed when the block ends without error.

    On SQLite the transaction holds the database's write lock from its start, so what it
    reads cannot change before it writes. PostgreSQL callers take the locks they need.
    """
    bind = sessions.kw.get("bind")
    async with one_writer(bind) if isinstance(bind, AsyncEngine) else contextlib.nullcontext():
        async with sessions() as session, session.begin():
            await bounded(session.get_bind(), session.connection(execution_options={WRITE_LOCK_OPTION: True}))
            yield session


async def run_write(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[Connection], _T],
    *,
    large: bool = False,
    on_inline_commit: Callable[[_T], object] | None = None,
) -> _T:
    """Run ``work(connection)``, synchronous Core code, in a write transaction.

    On SQLite inline on the event loop (``sqlite_inline``: the transaction of one user's rows
    costs less than any hand-over to a thread), or in a thread when ``large`` or when another
    process holds the lock. On PostgreSQL on a pooled connection through ``run_sync``, which
    costs no round trip of its own; no ORM session, whose bookkeeping Core statements do not
    need (it cost a point read ~0.2 ms of CPU).

    ``on_inline_commit(result)`` is called only when the work committed inline on SQLite, in
    the same step of the event loop as the commit (``SqliteInline.write``); never on
    PostgreSQL, nor for work that ran in the thread.
    """
    engine = _engine_of(sessions)
    inline = _sqlite_inline(engine)
    if inline is not None:
        return await inline.write(work, large=large, on_commit=on_inline_commit)
    async with connect(engine) as connection, connection.begin():
        return await connection.run_sync(work)


async def run_read(sessions: async_sessionmaker[AsyncSession], work: Callable[[Connection], _T]) -> _T:
    """Run ``work(connection)`` as reads that each stand alone, as ``read_session`` does.

    See ``run_write``; on PostgreSQL the connection is in autocommit mode (no BEGIN, COMMIT).
    """
    engine = _engine_of(sessions)
    inline = _sqlite_inline(engine)
    if inline is not None:
        return await inline.read(work)
    async with connect(engine) as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return await autocommit.run_sync(work)


async def asyncpg_connection(connection: AsyncConnection) -> Any:
    """The asyncpg connection under ``connection``, for COPY and array fetches SQLAlchemy lacks."""
    raw = (await connection.get_raw_connection()).driver_connection
    if raw is None:  # pragma: no cover - a checked-out connection always has one
        raise RuntimeError("no asyncpg connection")
    return raw


#: Query parameters of a database URL whose values are secrets (``password``, ``sslpassword``…).
_SECRET_QUERY_KEY: Final = re.compile("pass|secret|token", re.IGNORECASE)


def shown_url(database_url: str) -> str:
    """``database_url`` as printed or logged: its password, if any, masked.

    Also a password given in the query (``?password=…``, which drivers accept too).
    """
    try:
        url = make_url(database_url)
    except (ValueError, sa_exc.ArgumentError):  # not a URL: show no part of it that could be secret
        return "the database"
    secret = {key: "***" for key in url.query if _SECRET_QUERY_KEY.search(key)}
    shown = url.update_query_dict(secret).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")  # the query's marker, as the password's reads


async def dispose_when_returned(engine: AsyncEngine, wait_seconds: float = 5.0) -> None:
    """Dispose of ``engine`` once the connections that cancelled calls still hold are back.

    A call cancelled by a server stop releases its connection a few loop turns after
    ``server.stop`` returns. Disposing first would let that connection go back to the pool
    being thrown away, where it is never closed: an open socket, left to the garbage collector.
    """
    checked_out = getattr(engine.pool, "checkedout", None)
    deadline = time.monotonic() + wait_seconds
    while checked_out is not None and checked_out() > 0:
        if time.monotonic() >= deadline:
            log.warning("disposing of the store with %d connection(s) still in use", checked_out())
            break
        await asyncio.sleep(0.01)
    inline = SqliteInline.for_engine(engine)
    if inline is not None:
        # A checkpoint scheduled by the last writes would otherwise start after the dispose
        # and open the file again.
        await inline.checkpointed()
    await engine.dispose()


def commits_inline(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether ``run_write`` may call ``on_inline_commit``: SQLite's inline point operations."""
    return SqliteInline.for_engine(_engine_of(sessions)) is not None


def _engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the repositories' sessions must be bound to an engine (create_sessionmaker)")
    return bind


def _sqlite_inline(engine: AsyncEngine) -> SqliteInline | None:
    inline = SqliteInline.for_engine(engine)
    if inline is None and engine.dialect.name == "sqlite":
        # Its writes would run without the write lock and the process's writer queue.
        raise TypeError("a SQLite engine must come from create_engine, which sets up its point operations")
    return inline


@asynccontextmanager
async def read_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session for reads that each stand alone (one statement, one consistent answer).

    On PostgreSQL the connection is in autocommit mode: no BEGIN and COMMIT round trips
    around the statement, which matters on the evaluation hot path.
    """
    async with sessions() as session, session.begin():
        if is_postgresql(session):
            await bounded(
                session.get_bind(), session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            )
        yield session


@asynccontextmanager
async def snapshot_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session whose statements all read one snapshot of the database.

    PostgreSQL: a REPEATABLE READ transaction. SQLite (WAL): any read transaction is one.
    """
    async with sessions() as session, session.begin():
        if is_postgresql(session):
            await bounded(
                session.get_bind(),
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"}),
            )
        yield session


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot answer (as opposed to a bug or bad data)."""
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    # asyncpg's errors, raw or wrapped by SQLAlchemy (in ``orig``), carry the SQLSTATE;
    # asyncpg's own client-side InterfaceError ("connection is closed") has none.
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
    return any(
        kind.__module__.startswith("asyncpg") and kind.__name__ == "InterfaceError"
        for kind in type(cause).__mro__
    )


@contextmanager
def unavailable_as_store_error() -> Iterator[None]:
    """Turn a database failure raised in the block into ``StoreUnavailable``.

    Raises:
        StoreUnavailable: the database could not be reached or did not answer in time.
    """
    try:
        yield
    except StoreUnavailable:
        raise
    except sa_exc.TimeoutError as error:
        raise ResourceExhausted(
            "no database connection became free in time: the connection pool is exhausted"
        ) from error
    except Exception as error:
        if is_unavailable(error):
            # The driver's text holds SQL, bound parameters (user ids) and the database's
            # address: it goes to the log, the client learns only what failed.
            # Its text, not its traceback: a command-line run prints the log on the terminal.
            log.warning("database unavailable: %s: %s", type(error).__name__, error)
            raise StoreUnavailable("database unavailable") from error
        raise


@asynccontextmanager
async def store_work() -> AsyncIterator[None]:
    """Bound the block by the call's deadline, and turn database failures into ``StoreUnavailable``.

    What :func:`store_operation` does for a method, for code outside the repositories.

    Raises:
        DeadlineExceeded: the call's deadline passed (its statement is cancelled).
        StoreUnavailable: the database could not be reached or did not answer.
    """
    async with within_call_deadline():
        with unavailable_as_store_error():
            yield


def rowcount(result: Result[Any]) -> int:
    """Return how many rows an INSERT, UPDATE or DELETE changed."""
    if not isinstance(result, CursorResult):  # pragma: no cover - DML always gives one
        raise TypeError(f"not the result of a DML statement: {result!r}")
    return result.rowcount


async def ping(engine: AsyncEngine) -> bool:
    """Tell whether the database answers a trivial query (for health checks)."""
    try:
        async with connect(engine) as connection:
            await connection.execute(text("SELECT 1"))
    except StoreUnavailable:
        return False
    except Exception as error:
        if is_unavailable(error):
            return False
        raise
    return True


def store_operation(
    method: Callable[_P, Awaitable[_T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Decorate a repository method so that database failures raise ``StoreUnavailable``.

    Every repository method goes through this, so a call that cannot reach the database
    is answered UNAVAILABLE, never with a wrong "not found" or "not a member", and the
    method's statements are bounded by the call's deadline (``DeadlineExceeded``).
    """

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        async with within_call_deadline():
            with unavailable_as_store_error():
                return await method(*args, **kwargs)

    return wrapper
