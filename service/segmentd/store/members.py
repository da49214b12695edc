"""Membership queries: the database filters profiles with a compiled rule expression.

Listings are read by short queries of at most ``chunk_size * chunks_per_query`` ids, ordered
by ``user_id``, each resumed after the last key the previous one covered (keyset pagination),
and yielded in chunks of ``chunk_size``: the server's memory does not grow with the segment's
size, and no connection or transaction is held while the stream waits for a slow reader.

Each query is bounded on both sides, ``:after < user_id <= :upper``, where ``:upper`` is
about ``span`` profiles further on. Without the upper bound the planner may answer ``...
ORDER BY user_id LIMIT n`` by filtering every remaining row and sorting (a GIN bitmap, or a
sequential scan, when it misjudges how selective a long ``AND`` is), once per query: a
listing then costs queries x table instead of one table. The span adapts to the segment's
density, so that a query finds about as many members as it may read.

On PostgreSQL ``:upper`` is taken from the statistics of the primary key (the histogram of
``user_id`` in ``pg_stats``: equal-sized buckets of keys), which costs nothing per query;
where they cannot serve (no statistics, past their last bound, buckets wider than half a
span, or right after a query that filled up) it is read from the primary key itself, the key
exactly ``span`` profiles on (an index-only walk over them, about a quarter of what
filtering them costs). Stale statistics only make some ranges larger or smaller than meant:
every range is still bounded, and one that fills up is resumed from its last member.

At most ``stream_connections`` listing queries run at once, so listings can never take the
connections unary calls need; a chunk that finds none free within ``acquire_timeout_s`` raises
``ResourceExhausted``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Select, Table, exists, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from segmentd.errors import ResourceExhausted
from segmentd.store.acquire import connect
from segmentd.store.database import asyncpg_connection, store_work
from segmentd.store.models import EventCountRow, ProfileRow, UserListMemberRow

DEFAULT_CHUNK_SIZE = 1_000
DEFAULT_STREAM_CONNECTIONS = 5
# Membership statements are prepared, and segments of one shape share a statement: after five
# executions PostgreSQL may keep a generic plan, estimated without the constants, and a plan
# made for `plan = 'enterprise'` would then serve `plan = 'free'`. Planning costs a fraction
# of a millisecond; these queries run for tens or hundreds of them.
_PLAN_PER_EXECUTION: Final = "SET LOCAL plan_cache_mode = force_custom_plan"
# A listing reads a range of a few thousand keys per statement: parallel workers would cost
# more to start than they save, and a streamed cursor (the baseline) never gets them either.
_LISTING_SETTINGS: Final = f"{_PLAN_PER_EXECUTION}; SET LOCAL max_parallel_workers_per_gather = 0"
#: Chunks read by one query: each query costs a few round trips, which 1,000 ids do not pay for.
DEFAULT_CHUNKS_PER_QUERY = 32
#: The widest range of profiles one query reads, in queries' worth of ids (a sparse segment's).
MAX_SPAN_QUERIES = 1_024
#: How long the primary key's statistics are reused before they are read again.
KEY_STATISTICS_TTL_S = 60.0
# A range taken from the statistics is meant to hold this share of its span, so that the
# buckets' sampling error (a few percent) seldom makes a whole segment's range overflow.
_ESTIMATED_SHARE: Final = 0.95
_KEY_HISTOGRAM: Final = text(
    "SELECT s.histogram_bounds::text::text[], c.reltuples FROM pg_stats s"
    " JOIN pg_class c ON c.relname = s.tablename"
    " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname"
    " WHERE s.schemaname = current_schema() AND s.tablename = :table AND s.attname = :column"
)


@dataclass(frozen=True, slots=True)
class KeyBuckets:
    """Keys that split the profiles into buckets of about ``per_bucket`` profiles each, ascending."""

    bounds: tuple[str, ...]
    per_bucket: float

    def upper(self, after: str, span: int) -> str | None:
        """A key about ``span`` profiles after ``after``; None where the buckets cannot tell.

        At most the last bound: past it (where profiles written since the statistics may
        lie) there is nothing to tell, nor when a bucket is wider than half the span (the
        range could be twice as wide as meant).
        """
        if self.per_bucket <= 0 or self.per_bucket * 2 > span:
            return None
        first = bisect.bisect_right(self.bounds, after)  # the first bound above ``after``
        if first >= len(self.bounds):
            return None
        last = first + int(span * _ESTIMATED_SHARE / self.per_bucket) - 1
        upper = self.bounds[min(last, len(self.bounds) - 1)]
        # Bounds are in the key's order (C collation: code points, as Python's); should they
        # not be, a range end at or before ``after`` would walk back and list ids twice.
        return upper if upper > after else None


@dataclass(frozen=True, slots=True)
class _Resume:
    """Where a listing's next query starts, how many profiles it covers, how many ids it may read."""

    after: str
    span: int
    remaining: int | None
    query_size: int
    #: Whether the range may be bounded from the key statistics (not right after a full one).
    estimated: bool = True

    @property
    def size(self) -> int:
        return self.query_size if self.remaining is None else min(self.query_size, self.remaining)


class MemberQueries:
    """Runs membership queries for conditions over :attr:`profiles`, :attr:`events` and :attr:`list_members`.

    Args:
        engine: the store's engine.
        chunk_size: user ids per streamed chunk.
        chunks_per_query: chunks read by one query (the server holds that many ids at most).
        stream_connections: most listing queries running at once (their connection budget).
        acquire_timeout_s: how long a listing query waits for a turn within that budget.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        chunks_per_query: int = DEFAULT_CHUNKS_PER_QUERY,
        stream_connections: int = DEFAULT_STREAM_CONNECTIONS,
        acquire_timeout_s: float = 2.0,
    ) -> None:
        self._engine = engine
        self._chunk_size = chunk_size
        self._query_size = chunk_size * chunks_per_query
        self._stream_connections = stream_connections
        self._stream_slots = asyncio.Semaphore(stream_connections)
        self._acquire_timeout_s = acquire_timeout_s
        self.dialect: str = engine.dialect.name
        self.profiles: Table = ProfileRow.__table__  # type: ignore[assignment]
        self.events: Table = EventCountRow.__table__  # type: ignore[assignment]
        self.list_members: Table = UserListMemberRow.__table__  # type: ignore[assignment]
        self._buckets: tuple[float, KeyBuckets | None] | None = None  # (read at, buckets)

    async def stream(
        self, condition: ColumnElement[bool], *, after_user_id: str = "", limit: int | None = None
    ) -> AsyncGenerator[list[str], None]:
        """Yield the ids of matching profiles after ``after_user_id``, ascending, in chunks.

        The chunks are read by several statements, so they are not one snapshot: a profile
        written during the listing may or may not appear, but no id appears twice and ids
        stay ascending.

        Raises:
            ResourceExhausted: every listing connection stayed busy for the acquire timeout.
            StoreUnavailable: the database cannot be reached.
        """
        buckets = await self._key_buckets()
        resume: _Resume | None = _Resume(after_user_id, self._query_size, limit, self._query_size)
        reading = self._read_next(condition, resume, buckets)
        try:
            while reading is not None:
                members, upper = await reading
                resume = self._advance(cast("_Resume", resume), members, upper)
                # The next query runs while these ids go out; it holds a connection only while
                # it runs, never while the reader is slow, and its result waits in memory.
                reading = self._read_next(condition, resume, buckets)
                for start in range(0, len(members), self._chunk_size):
                    yield members[start : start + self._chunk_size]
        finally:
            if reading is not None:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

    def _read_next(
        self, condition: ColumnElement[bool], resume: _Resume | None, buckets: KeyBuckets | None
    ) -> asyncio.Task[tuple[list[str], str | None]] | None:
        if resume is None or resume.size <= 0:
            return None
        upper = buckets.upper(resume.after, resume.span) if buckets is not None and resume.estimated else None
        return asyncio.create_task(self._read_range(condition, resume.after, resume.span, resume.size, upper))

    async def _key_buckets(self) -> KeyBuckets | None:
        """The primary key's statistics (PostgreSQL), read at most every ``KEY_STATISTICS_TTL_S``."""
        if self.dialect != "postgresql":
            return None
        now = time.monotonic()
        if self._buckets is not None and now - self._buckets[0] < KEY_STATISTICS_TTL_S:
            return self._buckets[1]
        parameters = {"table": self.profiles.name, "column": self.profiles.c.user_id.name}
        async with store_work():
            async with connect(self._engine) as connection:
                row = (await connection.execute(_KEY_HISTOGRAM, parameters)).first()
        buckets = None
        if row is not None and row[0] and len(row[0]) > 1 and row[1] > 0:
            buckets = KeyBuckets(tuple(row[0]), float(row[1]) / (len(row[0]) - 1))
        self._buckets = (now, buckets)
        return buckets

    def _advance(self, resume: _Resume, members: list[str], upper: str | None) -> _Resume | None:
        """Where the listing resumes after a query found ``members`` in the range up to ``upper``."""
        remaining = None if resume.remaining is None else resume.remaining - len(members)
        if len(members) == resume.size:  # the range may hold more: resume after the last member
            # The statistics misjudged the range, or the segment is dense: the next range end is
            # read from the key itself, exactly.
            span = max(self._query_size, resume.span // 2)
            return _Resume(members[-1], span, remaining, self._query_size, estimated=False)
        if upper is None:  # the range reached the last profile
            return None
        span = resume.span
        if len(members) < resume.size // 2:
            span = min(span * 2, self._query_size * MAX_SPAN_QUERIES)
        return _Resume(upper, span, remaining, self._query_size)

    async def _read_range(
        self, condition: ColumnElement[bool], after: str, span: int, size: int, upper: str | None = None
    ) -> tuple[list[str], str | None]:
        """Return the first ``size`` members among the ``span`` profiles after ``after``.

        Also returns the last of those profiles' ids, None when they reach the end of the
        table. With ``upper``, the range is ``after < user_id <= upper`` instead.
        """
        user_id = self.profiles.c.user_id
        lower = [user_id > after] if after else []
        range_end = select(user_id).where(*lower).order_by(user_id).offset(span - 1).limit(1)
        async with self._stream_slot():
            async with store_work():
                async with connect(self._engine) as connection:
                    if self.dialect == "postgresql":
                        return await _read_range_postgresql(
                            connection, condition, range_end, lower, size, upper
                        )
                    ends = list((await connection.execute(range_end)).scalars())
                    upper_bound = [user_id <= ends[0]] if ends else []
                    query = select(user_id).where(condition, *lower, *upper_bound).order_by(user_id)
                    members = list((await connection.execute(query.limit(size))).scalars())
                    return members, ends[0] if ends else None

    @contextlib.asynccontextmanager
    async def _stream_slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._acquire_timeout_s):
                await self._stream_slots.acquire()
        except TimeoutError:
            raise ResourceExhausted(
                f"all {self._stream_connections} connections for member listings stayed busy for "
                f"{self._acquire_timeout_s:g} s; retry later"
            ) from None
        try:
            yield
        finally:
            self._stream_slots.release()

    async def count(self, condition: ColumnElement[bool]) -> int:
        """Return how many profiles match."""
        query = select(func.count()).select_from(self.profiles).where(condition)
        async with store_work():
            async with connect(self._engine) as connection:
                if self.dialect == "postgresql":
                    await connection.execute(text(_PLAN_PER_EXECUTION))
                return int((await connection.execute(query)).scalar_one())

    async def exists_after(self, condition: ColumnElement[bool], after_user_id: str) -> bool:
        """Whether a matching profile has a user id greater than ``after_user_id``."""
        query = select(exists().where(condition, self.profiles.c.user_id > after_user_id))
        async with store_work():
            async with connect(self._engine) as connection:
                return bool((await connection.execute(query)).scalar_one())


async def _read_range_postgresql(
    connection: AsyncConnection,
    condition: ColumnElement[bool],
    range_end: Select[Any],
    lower: list[ColumnElement[bool]],
    size: int,
    known_upper: str | None,
) -> tuple[list[str], str | None]:
    """``MemberQueries._read_range`` on PostgreSQL, reading the ids through asyncpg itself.

    SQLAlchemy's result layer builds a row object per id, which costs about twice what
    PostgreSQL spends finding the members (see docs/bench.md); the ids need none of it. The
    queries are still compiled by SQLAlchemy, and their parameters go through the dialect's
    own bind processors, so each statement is exactly the one ``connection.execute`` would send.
    The members come back as one array (``array_agg``), not one row each: decoding a row per
    id was most of the server's CPU in a listing, and an array of 32,000 ids costs a quarter.
    """
    user_id = range_end.selected_columns[0]
    driver = await asyncpg_connection(connection)
    # A transaction for the two statements only, committed before the ids are yielded.
    async with driver.transaction():
        await driver.execute(_LISTING_SETTINGS)
        upper = (
            [known_upper]
            if known_upper is not None
            else await _fetch_ids(driver, connection.dialect, range_end)
        )
        upper_bound = [user_id <= upper[0]] if upper else []
        query = select(user_id).where(condition, *lower, *upper_bound).order_by(user_id).limit(size)
        members = query.subquery()
        as_array = select(func.array_agg(aggregate_order_by(members.c.user_id, members.c.user_id)))
        found = await _fetch_ids(driver, connection.dialect, as_array)
        return list(found[0] or ()), upper[0] if upper else None


async def _fetch_ids(driver: Any, dialect: Dialect, query: Select[Any]) -> list[Any]:
    """The first column of each row of ``query``."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return [
        record[0] for record in await driver.fetch(compiled.string, *_driver_parameters(compiled, dialect))
    ]


def _driver_parameters(compiled: SQLCompiler, dialect: Dialect) -> list[Any]:
    """Return the statement's parameters in ``$n`` order, as the dialect would send them."""
    values = compiled.construct_params()  # with the IN lists expanded, as rendered
    parameters = []
    for name in compiled.positiontup or ():
        # An element of an expanded IN list is named "<list>_<n>" and has the list's type.
        bind = compiled.binds.get(name)
        if bind is None:
            bind = compiled.binds[name.rsplit("_", 1)[0]]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        parameters.append(process(values[name]) if process is not None else values[name])
    return parameters
