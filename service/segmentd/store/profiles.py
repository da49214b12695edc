"""Profiles (a user's traits) and their per-day event counts.

Upsert semantics, the same on both databases (``merge_traits`` is the reference):

    merge    stored = stored minus the keys sent as null, then each other sent key replaces
             the stored value of that key whole (nested objects are not merged)
    replace  stored = the sent traits minus the keys sent as null

PostgreSQL does a merge in one ``INSERT ... ON CONFLICT DO UPDATE SET traits = (profiles.traits
- deleted_keys) || excluded.traits``, atomic under concurrent merges. SQLite computes it in
Python inside a transaction that holds the database write lock, which is as atomic there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from segmentd.engine.percentiles import nearest_rank
from segmentd.errors import InvalidArgument, UserNotFound
from segmentd.store.checks import (
    check_event_count,
    check_event_name,
    check_traits,
    check_traits_size,
    check_user_id,
    is_addressable_key,
    utc_day,
)
from segmentd.store.database import (
    as_utc,
    commits_inline,
    rowcount,
    run_read,
    run_write,
    snapshot_session,
    store_operation,
)
from segmentd.store.models import EventCountRow, ProfileRow, SegmentCatalogueRow
from segmentd.store.queries import (
    event_count_columns,
    event_count_parameters,
    list_membership_columns,
    trait_number,
    upsert_event_counts,
)
from segmentd.store.records import Event, Profile, Reread, SnapshotShape, UserSnapshot
from segmentd.store.retention import EventRetention

_T = TypeVar("_T")

#: Rows per INSERT/IN list: far below the bound-parameter limits of asyncpg and SQLite.
_CHUNK: Final = 500

#: Event rows a SQLite write may add inline on the event loop (more go to a thread).
_INLINE_ROWS: Final = 50


def _utc_now() -> datetime:
    return datetime.now(UTC)


def merge_traits(stored: Mapping[str, Any], sent: Mapping[str, Any], *, replace: bool) -> dict[str, Any]:
    """Return the traits an upsert of ``sent`` leaves in place of ``stored``."""
    kept = {} if replace else {key: value for key, value in stored.items() if key not in sent}
    return kept | {key: value for key, value in sent.items() if value is not None}


class ProfileRepository:
    """Read and write profiles and events.

    Args:
        sessions: the session factory of ``segmentd.store.database.create_sessionmaker``.
        retention: the event times ``record_events`` accepts.
        clock: the current instant: profiles' update times, the retention's "now", the
            windows of a write's rereads (injectable for tests).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        retention: EventRetention | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._sessions = sessions
        self._retention = retention or EventRetention()
        self._clock = clock

    @property
    def rereads_commit_inline(self) -> bool:
        """Whether a write's ``Reread`` can reach its ``on_commit`` (SQLite's inline point operations)."""
        return commits_inline(self._sessions)

    @store_operation
    async def upsert(
        self, user_id: str, traits: Mapping[str, Any], *, replace: bool = False, reread: Reread | None = None
    ) -> Profile:
        """Create a profile, or merge ``traits`` into the stored one (or replace them).

        ``reread``: users to read again in the same transaction, after the upsert.

        Raises:
            InvalidArgument: ``profile.user_id`` or ``profile.traits`` (also when the stored
                traits would exceed 64 KiB).
            StoreUnavailable: the database cannot be reached.
        """
        check_user_id(user_id, "profile.user_id")
        sent = check_traits(traits, "profile.traits")
        now = self._clock()
        return await self._write(functools.partial(_upsert, user_id, sent, replace, now), now, reread)

    @store_operation
    async def get(self, user_id: str) -> Profile:
        """Return a user's profile.

        Raises:
            UserNotFound: no profile has this user id.
            StoreUnavailable: the database cannot be reached.
        """
        query = select(ProfileRow.user_id, ProfileRow.traits, ProfileRow.create_time, ProfileRow.update_time)
        query = query.where(ProfileRow.user_id == user_id)
        row = await run_read(self._sessions, lambda connection: connection.execute(query).one_or_none())
        if row is None:
            raise UserNotFound(f"no profile for user_id {user_id!r}")
        return _profile(row[0], row[1], row[2], row[3])

    @store_operation
    async def get_with_event_counts(
        self,
        user_id: str,
        windows: Collection[tuple[str, int]],
        now: datetime,
        lists: Collection[str] = (),
    ) -> UserSnapshot:
        """Return a profile, its event counts, list memberships and the catalogue version, in one statement.

        The counts are per ``(event name, within_days)`` of ``windows``; the memberships are
        those of the user lists named in ``lists`` (a probe of the members' primary key each).

        A window of ``n`` days counts the days on or after the UTC date of ``now - n days``;
        0 counts every day.

        Raises:
            UserNotFound: no profile has this user id.
            StoreUnavailable: the database cannot be reached.
        """
        shape = (frozenset(windows), frozenset(lists))
        snapshot = await run_read(self._sessions, functools.partial(_read_snapshot, user_id, shape, now))
        if snapshot is None:
            raise UserNotFound(f"no profile for user_id {user_id!r}")
        return snapshot

    @store_operation
    async def delete(self, user_id: str) -> None:
        """Erase a profile and all its events, in one transaction.

        Raises:
            UserNotFound: no profile has this user id.
            StoreUnavailable: the database cannot be reached.
        """
        await run_write(self._sessions, functools.partial(_erase, user_id))

    @store_operation
    async def record_events(self, events: Sequence[Event], *, reread: Reread | None = None) -> int:
        """Add events to the per-user, per-event, per-UTC-day counts; all or nothing.

        ``reread``: users to read again in the same transaction, after the events.

        Returns:
            The number of events recorded: all of them.

        Raises:
            InvalidArgument: ``events[i].user_id``, ``.name``, ``.time`` (also when older
                than the retention or too far in the future) or ``.count``.
            UserNotFound: an event names a user with no profile (profiles are not created
                implicitly, so a late event cannot bring an erased user back).
            StoreUnavailable: the database cannot be reached.
        """
        now = self._clock()
        totals = _daily_totals(events, self._retention, now)
        if not totals:
            return 0
        # Sorted keys make concurrent batches lock rows in the same order (no deadlock).
        rows = [
            {"user_id": user, "name": name, "day": day, "count": count}
            for (user, name, day), count in sorted(totals.items())
        ]
        add = functools.partial(_add_event_counts, events, rows)
        await self._write(add, now, reread, large=len(rows) > _INLINE_ROWS)
        return len(events)

    async def _write(
        self, work: Callable[[Connection], _T], now: datetime, reread: Reread | None, *, large: bool = False
    ) -> _T:
        """Run ``work`` in a write transaction, then the rereads in the same transaction."""
        if reread is None or not reread.shapes or large:
            # Large work commits in a thread, where on_commit is never called: nothing to read.
            return await run_write(self._sessions, work, large=large)
        shapes = reread.shapes

        def work_then_reread(connection: Connection) -> tuple[_T, dict[str, UserSnapshot]]:
            result = work(connection)
            snapshots = {user: _read_snapshot(user, shape, now, connection) for user, shape in shapes.items()}
            return result, {user: snapshot for user, snapshot in snapshots.items() if snapshot is not None}

        result, _ = await run_write(
            self._sessions, work_then_reread, on_inline_commit=lambda done: reread.on_commit(done[1], now)
        )
        return result

    @store_operation
    async def population_percentile(self, attribute_path: Sequence[str], percent: float) -> float | None:
        """Return the nearest-rank ``percent``-th percentile of the trait at ``attribute_path``.

        Over the profiles whose trait there is a JSON number (booleans are not): with N of
        them, the value at rank ``max(1, ceil(percent/100 * N))`` ascending; None when N = 0.
        The database counts and ranks; both statements read one snapshot.

        Raises:
            InvalidArgument: ``percent`` outside 0..100 or an empty path.
            StoreUnavailable: the database cannot be reached.
        """
        if not 0 <= percent <= 100:
            raise InvalidArgument("percent", "must be between 0 and 100")
        if not attribute_path or not all(step and is_addressable_key(step) for step in attribute_path):
            # No stored key can match such a step (checks.check_traits refuses them).
            return None
        # Count and rank in one snapshot, so that the rank is within the rows ranked.
        async with snapshot_session(self._sessions) as session:
            is_number, value = trait_number(session.get_bind().dialect.name, attribute_path)
            count = await session.scalar(select(func.count()).where(is_number))
            if not count:
                return None
            rank = nearest_rank(percent, count)
            threshold = await session.scalar(
                select(value).where(is_number).order_by(value).offset(rank - 1).limit(1)
            )
        return None if threshold is None else float(threshold)


def _upsert(
    user_id: str, sent: Mapping[str, Any], replace: bool, now: datetime, connection: Connection
) -> Profile:
    if connection.dialect.name == "postgresql":
        profile = _upsert_postgresql(connection, user_id, sent, replace, now)
    else:
        profile = _upsert_sqlite(connection, user_id, sent, replace, now)
    # Checked on the result, inside the transaction: many small merges must not grow a
    # profile past the limit either. Raising here rolls the upsert back.
    check_traits_size(profile.traits, "profile.traits")
    return profile


def _postgresql_upsert(*, replace: bool) -> ReturningInsert[Any]:
    """PostgreSQL's upsert, atomic under concurrent merges; built once per mode."""
    statement = postgresql.insert(ProfileRow).values(
        user_id=bindparam("b_user_id"),
        traits=bindparam("b_traits", type_=ProfileRow.traits.type),
        create_time=bindparam("b_now"),
        update_time=bindparam("b_now"),
    )
    merged: ColumnElement[Any] = statement.excluded.traits
    if not replace:
        kept = ProfileRow.traits.op("-", return_type=postgresql.JSONB())(
            bindparam("b_deleted", type_=postgresql.ARRAY(Text()))
        )
        merged = kept.op("||", return_type=postgresql.JSONB())(statement.excluded.traits)
    return statement.on_conflict_do_update(
        index_elements=[ProfileRow.user_id],
        set_={"traits": merged, "update_time": statement.excluded.update_time},
    ).returning(ProfileRow.user_id, ProfileRow.traits, ProfileRow.create_time, ProfileRow.update_time)


_POSTGRESQL_UPSERT_BY_REPLACE: Final = {
    replace: _postgresql_upsert(replace=replace) for replace in (False, True)
}


def _upsert_postgresql(
    connection: Connection, user_id: str, sent: Mapping[str, Any], replace: bool, now: datetime
) -> Profile:
    parameters = {
        "b_user_id": user_id,
        "b_traits": {key: value for key, value in sent.items() if value is not None},
        "b_now": now,
    }
    if not replace:
        parameters["b_deleted"] = [key for key, value in sent.items() if value is None]
    row = connection.execute(_POSTGRESQL_UPSERT_BY_REPLACE[replace], parameters).one()
    return _profile(row[0], row[1], row[2], row[3])


# SQLite's upsert statements, built once: building one costs more than SQLite takes to run it.
_STORED_PROFILE: Final = select(ProfileRow.traits, ProfileRow.create_time).where(
    ProfileRow.user_id == bindparam("user_id")
)
_INSERT_PROFILE: Final = insert(ProfileRow)
_UPDATE_PROFILE: Final = (
    update(ProfileRow)
    .where(ProfileRow.user_id == bindparam("key"))
    .values(traits=bindparam("new_traits", type_=ProfileRow.traits.type), update_time=bindparam("now"))
)


def _upsert_sqlite(
    connection: Connection, user_id: str, sent: Mapping[str, Any], replace: bool, now: datetime
) -> Profile:
    # The write lock is held (BEGIN IMMEDIATE): nothing can change the row between read and write.
    stored = connection.execute(_STORED_PROFILE, {"user_id": user_id}).one_or_none()
    if stored is None:
        traits = merge_traits({}, sent, replace=True)
        row = {"user_id": user_id, "traits": traits, "create_time": now, "update_time": now}
        connection.execute(_INSERT_PROFILE, row)
        return _profile(user_id, traits, now, now)
    traits = merge_traits(stored[0], sent, replace=replace)
    connection.execute(_UPDATE_PROFILE, {"key": user_id, "new_traits": traits, "now": now})
    return _profile(user_id, traits, stored[1], now)


def _erase(user_id: str, connection: Connection) -> None:
    # The profile row first, as RecordEvents locks it (FOR SHARE) before its event rows:
    # one lock order, so the two never deadlock on PostgreSQL. Its events go by ON DELETE
    # CASCADE, after the profile's lock is held.
    deleted = connection.execute(delete(ProfileRow).where(ProfileRow.user_id == user_id))
    if rowcount(deleted) == 0:
        raise UserNotFound(f"no profile for user_id {user_id!r}")
    connection.execute(delete(EventCountRow).where(EventCountRow.user_id == user_id))


_EVENT_COUNT_UPSERT_BY_DIALECT: Final = {
    dialect: upsert_event_counts(dialect) for dialect in ("postgresql", "sqlite")
}


def _add_event_counts(
    events: Sequence[Event], rows: Sequence[Mapping[str, Any]], connection: Connection
) -> None:
    _require_profiles(connection, events)
    # One kept statement, executed per row (asyncpg pipelines the rows in one round trip).
    statement = _EVENT_COUNT_UPSERT_BY_DIALECT[connection.dialect.name]
    for start in range(0, len(rows), _CHUNK):
        connection.execute(statement, list(rows[start : start + _CHUNK]))


def _read_snapshot(
    user_id: str, shape: SnapshotShape, now: datetime, connection: Connection
) -> UserSnapshot | None:
    """Read a cache miss's one statement: what ``get_with_event_counts`` returns (None: no profile)."""
    keys = tuple(sorted(shape[0]))
    names = tuple(sorted(shape[1]))
    parameters = event_count_parameters(user_id, keys, now)
    parameters.update((f"list_{index}", name) for index, name in enumerate(names))
    row = connection.execute(_evaluation_query(keys, len(names)), parameters).one_or_none()
    if row is None:
        return None
    counts_end = 5 + len(keys)
    return UserSnapshot(
        profile=_profile(row[0], row[1], row[2], row[3]),
        event_counts={key: int(count) for key, count in zip(keys, row[5:counts_end], strict=True)},
        catalogue_version=int(row[4] or 0),
        lists=frozenset(name for name, member in zip(names, row[counts_end:], strict=True) if member),
    )


@functools.lru_cache(maxsize=256)
def _evaluation_query(windows: tuple[tuple[str, int], ...], lists: int = 0) -> Select[Any]:
    """The one statement of a cache miss, built once per set of windows and number of lists.

    Building it costs more than running it, so it is kept: the user, the windows' first
    days and the list names (``list_<i>``) are bound parameters.
    """
    version = select(SegmentCatalogueRow.version).where(SegmentCatalogueRow.id == 1)
    catalogue_version = version.scalar_subquery()
    return select(
        ProfileRow.user_id,
        ProfileRow.traits,
        ProfileRow.create_time,
        ProfileRow.update_time,
        catalogue_version,
        *event_count_columns(windows),
        *list_membership_columns(lists),
    ).where(ProfileRow.user_id == bindparam("user_id"))


def _daily_totals(
    events: Sequence[Event], retention: EventRetention, now: datetime
) -> dict[tuple[str, str, date], int]:
    """Validate ``events`` and sum their counts per (user, name, UTC day).

    Summing first also keeps one INSERT from touching a row twice, which PostgreSQL's
    ``ON CONFLICT DO UPDATE`` refuses.
    """
    totals: dict[tuple[str, str, date], int] = {}
    for index, event in enumerate(events):
        field = f"events[{index}]"
        user = check_user_id(event.user_id, f"{field}.user_id")
        name = check_event_name(event.name, f"{field}.name")
        day = utc_day(event.time, f"{field}.time")
        retention.check_time(event.time, f"{field}.time", now)
        key = (user, name, day)
        totals[key] = totals.get(key, 0) + check_event_count(event.count, f"{field}.count")
    return totals


# FOR SHARE (PostgreSQL; SQLite holds the write lock already) makes a concurrent DeleteProfile
# wait, so no event is added to a profile being erased.
_PRESENT_PROFILES: Final = (
    select(ProfileRow.user_id)
    .where(ProfileRow.user_id.in_(bindparam("users", expanding=True)))
    .with_for_update(read=True)
)


def _require_profiles(connection: Connection, events: Sequence[Event]) -> None:
    """Refuse the batch unless every user has a profile, which stays until the commit."""
    users = sorted({event.user_id for event in events})
    found: set[str] = set()
    for start in range(0, len(users), _CHUNK):
        found.update(connection.scalars(_PRESENT_PROFILES, {"users": users[start : start + _CHUNK]}).all())
    for index, event in enumerate(events):
        if event.user_id not in found:
            raise UserNotFound(f"events[{index}].user_id: no profile for user_id {event.user_id!r}")


def _profile(
    user_id: str, traits: Mapping[str, Any], create_time: datetime, update_time: datetime
) -> Profile:
    return Profile(
        user_id=user_id, traits=dict(traits), create_time=as_utc(create_time), update_time=as_utc(update_time)
    )
