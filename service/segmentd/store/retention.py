"""Event retention: which event days the store keeps, and pruning the older ones.

    EventRetention(days, future_seconds)
        oldest_day(now)       the first UTC day kept: today - days (None: keep every day)
        check_time(t, field)  RecordEvents refuses a time before oldest_day or beyond now + future
    prune_events(...)         delete the days before oldest_day, a batch per transaction

Pruning deletes in small batches, each its own short transaction, so on PostgreSQL it never
holds many row locks for long and serving goes on; the statement-level triggers of migration
0003 tell every replica which users' counts changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnClause, delete, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument
from segmentd.store.database import is_postgresql, rowcount, store_operation, write_session
from segmentd.store.models import EventCountRow

#: Rows one pruning transaction deletes at most.
PRUNE_BATCH: Final = 5_000


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
    batch's row locks (PostgreSQL) or one batch's write lock (SQLite).

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    deleted = 0
    while True:
        async with write_session(sessions) as session:
            # ctid (PostgreSQL) and rowid (SQLite) address rows without the composite key.
            row_id: ColumnClause[Any] = literal_column("ctid" if is_postgresql(session) else "rowid")
            batch = select(row_id).where(EventCountRow.day < before).limit(batch_size)
            if is_postgresql(session):
                batch = batch.with_for_update(skip_locked=True)
            result = await session.execute(delete(EventCountRow).where(row_id.in_(batch.scalar_subquery())))
            count = rowcount(result)
        deleted += count
        if count < batch_size:
            return deleted
