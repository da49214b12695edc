"""Event retention: which event days the store keeps, and pruning the older ones.

    EventRetention(days, future_seconds)
        oldest_day(now)       the first UTC day kept: today - days (None: keep every day)
        check_time(t, field)  RecordEvents refuses a time before oldest_day or beyond now + future
    prune_events(...)         delete the days before oldest_day, a batch per transaction

Pruning deletes in small batches, each its own short transaction, so on PostgreSQL it never
holds many row locks for long and serving goes on; the statement-level triggers of migration
0003 tell every replica which users' counts changed. On PostgreSQL a batch walks the primary
key and holds the rows of at most ``NAMED_USERS_PER_STATEMENT`` users, the most the triggers
name: replicas then drop those users' cached profiles only, not their whole caches once per
batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeAlias

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    delete,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument
from segmentd.store.database import is_postgresql, read_session, rowcount, store_operation, write_session
from segmentd.store.models import EventCountRow
from segmentd.store.notifications import NAMED_USERS_PER_STATEMENT

#: Rows one pruning transaction deletes at most.
PRUNE_BATCH: Final = 5_000
# Row addresses travel as text: the driver has no type for them.
_CTID_TEXT: Final[ColumnClause[str]] = literal_column("ctid::text")
_DELETE_BY_CTID: Final = text(
    f"DELETE FROM {EventCountRow.__tablename__} WHERE ctid = ANY(CAST(CAST(:ctids AS text[]) AS tid[]))"
)


@dataclass(frozen=True, slots=True)
class EventRetention:
    """How far back and how far ahead event times are kept.

    Attributes:
        days: event days older than ``today - days`` (UTC) are pruned and refused; 0 keeps
            every day.
        future_seconds: how far beyond the current time an event time may lie (clock skew).
    """

    days: int = 730
    future_seconds: float = 86_400.0

    def oldest_day(self, now: datetime) -> date | None:
        """Return the first UTC day kept at ``now``; ``None`` when every day is kept."""
        if self.days <= 0:
            return None
        return now.astimezone(UTC).date() - timedelta(days=self.days)

    def check_time(self, time: datetime, field: str, now: datetime) -> None:
        """Refuse an event ``time`` outside what the store keeps at ``now``.

        Raises:
            InvalidArgument: naming ``field``.
        """
        instant = time if time.tzinfo is not None else time.replace(tzinfo=UTC)
        oldest = self.oldest_day(now)
        if oldest is not None and instant.astimezone(UTC).date() < oldest:
            raise InvalidArgument(
                field, f"is before {oldest.isoformat()}: events older than {self.days} days are not kept"
            )
        if instant > now + timedelta(seconds=self.future_seconds):
            raise InvalidArgument(
                field, f"is more than {self.future_seconds:g} seconds in the future; check the clock"
            )


@store_operation
async def prune_events(
    sessions: async_sessionmaker[AsyncSession], before: date, *, batch_size: int = PRUNE_BATCH
) -> int:
    """Delete the per-day event counts of the days before ``before``; return how many rows.

    Each batch is one short transaction: a concurrent RecordEvents waits for at most one
    batch's row locks (PostgreSQL) or one batch's write lock (SQLite). On PostgreSQL a batch
    also holds the rows of at most ``NAMED_USERS_PER_STATEMENT`` users, walking the primary
    key, so that the events table's triggers name the users whose counts changed: past that
    many they would tell every replica that any user's did, and each would drop its whole
    profile cache.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    deleted = 0
    after: _Position = None
    while True:
        async with write_session(sessions) as session:
            if is_postgresql(session):
                count, after, done = await _prune_postgresql_batch(session, before, batch_size, after)
            else:
                count = await _prune_sqlite_batch(session, before, batch_size)
                done = count < batch_size
        deleted += count
        if done:
            return deleted


@store_operation
async def count_prunable(sessions: async_sessionmaker[AsyncSession], before: date) -> int:
    """Count the per-day event counts of the days before ``before``: what a prune would delete.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    async with read_session(sessions) as session:
        count = await session.scalar(select(func.count()).where(EventCountRow.day < before))
    return int(count or 0)


#: Where a PostgreSQL prune goes on: after a row's key, past every row of a user, or from the start.
_Position: TypeAlias = tuple[str, str, date] | str | None


async def _prune_postgresql_batch(
    session: AsyncSession, before: date, batch_size: int, after: _Position
) -> tuple[int, _Position, bool]:
    """Delete the next old rows after ``after`` in key order: ``batch_size`` at most, of named users.

    The users are bounded first, without locks (the next ``NAMED_USERS_PER_STATEMENT`` users
    with old rows), so that the rows locked are the rows deleted. Returns the rows deleted,
    where to go on, and whether no old row is left past ``after`` (rows another transaction
    holds are skipped, and left for the next run).
    """
    old = [EventCountRow.day < before, *_past(after)]
    next_users = (
        select(EventCountRow.user_id)
        .where(*old)
        .distinct()
        .order_by(EventCountRow.user_id)
        .limit(NAMED_USERS_PER_STATEMENT)
        .subquery()
    )
    last_user = await session.scalar(select(func.max(next_users.c.user_id)))
    if last_user is None:
        return 0, after, True
    batch = (
        select(_CTID_TEXT, EventCountRow.user_id, EventCountRow.name, EventCountRow.day)
        .where(*old, EventCountRow.user_id <= last_user)
        .order_by(EventCountRow.user_id, EventCountRow.name, EventCountRow.day)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(batch)).all()
    if rows:
        await session.execute(_DELETE_BY_CTID, {"ctids": [row[0] for row in rows]})
    if len(rows) == batch_size:  # more of these users' rows may follow
        return len(rows), (rows[-1].user_id, rows[-1].name, rows[-1].day), False
    return len(rows), last_user, False


def _past(after: _Position) -> list[ColumnElement[bool]]:
    if after is None:
        return []
    if isinstance(after, str):
        return [EventCountRow.user_id > after]
    key = tuple_(EventCountRow.user_id, EventCountRow.name, EventCountRow.day)
    return [key > tuple_(*map(literal, after))]


async def _prune_sqlite_batch(session: AsyncSession, before: date, batch_size: int) -> int:
    # rowid addresses rows without the composite key; the write lock keeps other writers out.
    row_id: ColumnClause[Any] = literal_column("rowid")
    batch = select(row_id).where(EventCountRow.day < before).limit(batch_size)
    result = await session.execute(delete(EventCountRow).where(row_id.in_(batch.scalar_subquery())))
    return rowcount(result)
