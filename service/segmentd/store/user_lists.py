"""User lists: named, explicit sets of user ids, one row per member.

    create / get / list / delete      the list itself (``user_lists``)
    change_members(name, kind, ids)   add, remove or replace members in bulk
                                      (``segmentd.store.user_list_members``)

A list tested by a segment's current rule (``segment_list_references``) cannot be deleted;
deleting takes the segment write lock, so it cannot race a segment write that starts
referencing the list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.engine.validation import is_valid_segment_name
from segmentd.errors import InvalidArgument, UserListAlreadyExists, UserListInUse, UserListNotFound
from segmentd.store.database import (
    as_utc,
    is_postgresql,
    read_session,
    rowcount,
    store_operation,
    write_session,
)
from segmentd.store.models import SegmentListReferenceRow, UserListMemberRow, UserListRow
from segmentd.store.paging import decode_page_token, effective_page_size, encode_page_token
from segmentd.store.segment_rows import lock_segments
from segmentd.store.user_list_members import (
    MAX_NAMED_CHANGES,
    ChangeKind,
    MemberChange,
    change_postgresql,
    change_sqlite,
)
from segmentd.store.user_list_tables import create_list_tables, drop_list_tables, notify_members_changed

#: The longest description a list may carry.
MAX_DESCRIPTION_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class UserList:
    """A user list as stored (``segmentd.v1.UserList``)."""

    name: str
    description: str
    member_count: int
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class UserListPage:
    """One page of ``UserListRepository.list``."""

    user_lists: tuple[UserList, ...]
    next_page_token: str


def check_list_name(name: object, field: str) -> str:
    """Return ``name`` if it is a list name (the segment-name slug, ``[a-z0-9-]{1,63}``).

    Raises:
        InvalidArgument: naming ``field``.
    """
    if not isinstance(name, str) or not is_valid_segment_name(name):
        raise InvalidArgument(field, "must match [a-z0-9-]{1,63}")
    return name


class UserListRepository:
    """Create, read, list and delete user lists; change their members in bulk.

    Args:
        engine: the store's engine (bulk changes use a connection of their own).
        sessions: the session factory of ``segmentd.store.database.create_sessionmaker``.
    """

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._engine = engine
        self._sessions = sessions

    @store_operation
    async def create(self, name: str, description: str) -> UserList:
        """Store a new, empty list.

        Raises:
            InvalidArgument: ``user_list.name`` or ``user_list.description``.
            UserListAlreadyExists: a list has this name.
            StoreUnavailable: the database cannot be reached.
        """
        check_list_name(name, "user_list.name")
        if (
            not isinstance(description, str)
            or "\x00" in description
            or len(description) > MAX_DESCRIPTION_LENGTH
        ):
            raise InvalidArgument(
                "user_list.description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters, without NUL"
            )
        now = datetime.now(UTC)
        row = {
            "name": name,
            "description": description,
            "member_count": 0,
            "create_time": now,
            "update_time": now,
        }
        try:
            async with write_session(self._sessions) as session:
                if await session.get(UserListRow, name) is not None:
                    raise UserListAlreadyExists(f"user list {name!r} already exists")
                await session.execute(insert(UserListRow).values(row))
                if is_postgresql(session):
                    await create_list_tables(await session.connection(), name)
        except IntegrityError as error:  # created concurrently
            raise UserListAlreadyExists(f"user list {name!r} already exists") from error
        return UserList(name, description, 0, now, now)

    @store_operation
    async def get(self, name: str) -> UserList:
        """Return a list with its member count.

        Raises:
            UserListNotFound: no list has this name.
            StoreUnavailable: the database cannot be reached.
        """
        async with read_session(self._sessions) as session:
            row = await session.get(UserListRow, name)
        if row is None:
            raise UserListNotFound(f"user list {name!r} does not exist")
        return _user_list(row)

    @store_operation
    async def list(self, page_size: int = 0, page_token: str = "") -> UserListPage:
        """Return one page of lists, by ascending name (``page_size`` as for segments).

        Raises:
            InvalidArgument: ``page_size`` negative or ``page_token`` not issued by this method.
            StoreUnavailable: the database cannot be reached.
        """
        size = effective_page_size(page_size)
        after = decode_page_token(page_token, {}, "ListUserLists")
        query = select(UserListRow).where(UserListRow.name > after).order_by(UserListRow.name).limit(size + 1)
        async with read_session(self._sessions) as session:
            rows = (await session.scalars(query)).all()
        lists = tuple(_user_list(row) for row in rows[:size])
        token = encode_page_token(lists[-1].name, {}, "ListUserLists") if len(rows) > size else ""
        return UserListPage(lists, token)

    @store_operation
    async def delete(self, name: str) -> MemberChange:
        """Delete a list and its members; return who left it (as ``change_members`` does).

        Raises:
            UserListNotFound: no list has this name.
            UserListInUse: a segment's current rule tests it.
            StoreUnavailable: the database cannot be reached.
        """
        async with write_session(self._sessions) as session:
            await lock_segments(session)
            row = await session.get(UserListRow, name, with_for_update=True)
            if row is None:
                raise UserListNotFound(f"user list {name!r} does not exist")
            referrers = (
                await session.scalars(
                    select(SegmentListReferenceRow.name).where(SegmentListReferenceRow.list_name == name)
                )
            ).all()
            if referrers:
                raise UserListInUse(name, referrers)
            changed: frozenset[str] | None = None
            if row.member_count <= MAX_NAMED_CHANGES:
                members = select(UserListMemberRow.user_id).where(UserListMemberRow.list_name == name)
                changed = frozenset((await session.scalars(members)).all())
            if is_postgresql(session):
                connection = await session.connection()
                await drop_list_tables(connection, name)
                await notify_members_changed(connection, changed)
            else:
                await session.execute(delete(UserListMemberRow).where(UserListMemberRow.list_name == name))
            deleted = await session.execute(delete(UserListRow).where(UserListRow.name == name))
            if rowcount(deleted) != 1:  # pragma: no cover - the row is locked
                raise UserListNotFound(f"user list {name!r} does not exist")
        return MemberChange(0, changed)

    @store_operation
    async def change_members(
        self, name: str, kind: ChangeKind, batches: AsyncIterator[Sequence[str]]
    ) -> MemberChange:
        """Add, remove or replace members with the ids of ``batches``, in one transaction.

        The ids must have passed ``checks.check_user_id``. An exception raised by ``batches``
        rolls everything back and is raised as it is.

        Raises:
            UserListNotFound: no list has this name.
            StoreUnavailable: the database cannot be reached.
        """
        async with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                return await change_postgresql(connection, name, kind, batches)
            return await change_sqlite(connection, name, kind, batches)


def _user_list(row: UserListRow) -> UserList:
    return UserList(
        name=row.name,
        description=row.description,
        member_count=int(row.member_count),
        create_time=as_utc(row.create_time),
        update_time=as_utc(row.update_time),
    )
