"""Database schema, as SQLAlchemy 2 declarative models.

    profiles(user_id PK, traits JSON/JSONB, create_time, update_time)
    events(user_id, name, day, count)            PK (user_id, name, day); per-day counts
    segments(name PK, version, description, rule, labels, etag, create_time, update_time)
    segment_versions(name, version, ...)         PK (name, version); every version ever written
    segment_references(name, referenced_name)    edges of the reference graph (current versions)
    segment_catalogue(id = 1, version)           one row; +1 on every change to ``segments`` (trigger)
    api_keys(key_id PK, key_hash, scopes, ...)   API keys, stored hashed (segmentd.security)
    user_lists(name PK, description, member_count, create_time, update_time)
    user_list_members(list_name, user_id)        PK (list_name, user_id); one row per member
    segment_list_references(name, list_name)     the lists each current segment's rule tests

JSON columns are JSONB on PostgreSQL (GIN-indexable, ``jsonb_typeof``) and JSON (text checked by
JSON1) on SQLite. Schema changes go through Alembic (``service/segmentd/store/migrations``); the
triggers that maintain ``segment_catalogue`` exist only in the migrations (see docs/store.md).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: JSONB on PostgreSQL, JSON elsewhere.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")

# Stable constraint names make Alembic migrations reproducible on both databases.
_NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Base(DeclarativeBase):
    """Declarative base holding the schema's metadata."""

    metadata = MetaData(naming_convention=_NAMING_CONVENTION)


class ProfileRow(Base):
    """A user's profile: traits as one JSON object."""

    __tablename__ = "profiles"

    user_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    # Lets containment (``traits @> '{"plan": "free"}'``) use an index; jsonb_path_ops is smaller
    # and faster than the default opclass for ``@>``, the only operator we need it for. SQLite
    # has no such index: an index on the JSON text would only slow writes down.
    __table_args__ = (
        Index(
            "ix_profiles_traits",
            "traits",
            postgresql_using="gin",
            postgresql_ops={"traits": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class EventCountRow(Base):
    """How many events ``name`` the user had on one UTC day."""

    __tablename__ = "events"

    user_id: Mapped[str] = mapped_column(
        String(256), ForeignKey("profiles.user_id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)


class _SegmentDefinition:
    """The columns of one segment version, shared by the current and the history tables."""

    # sort_order keeps (name, version) the leading columns, as the primary key reads them.
    name: Mapped[str] = mapped_column(String(63), primary_key=True, sort_order=-2)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    rule: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False)
    labels: Mapped[dict[str, str]] = mapped_column(JsonDocument, nullable=False)
    etag: Mapped[str] = mapped_column(String(64), nullable=False)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SegmentRow(_SegmentDefinition, Base):
    """The current version of a segment."""

    __tablename__ = "segments"

    version: Mapped[int] = mapped_column(Integer, nullable=False, sort_order=-1)


class SegmentVersionRow(_SegmentDefinition, Base):
    """One version of a segment as it was written; kept after updates and deletion."""

    __tablename__ = "segment_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-1)


class SegmentReferenceRow(Base):
    """``name``'s current rule references ``referenced_name``."""

    __tablename__ = "segment_references"

    name: Mapped[str] = mapped_column(
        String(63), ForeignKey("segments.name", ondelete="CASCADE"), primary_key=True
    )
    referenced_name: Mapped[str] = mapped_column(String(63), ForeignKey("segments.name"), primary_key=True)

    __table_args__ = (Index(None, "referenced_name"),)


class SegmentCatalogueRow(Base):
    """The catalogue version: a counter bumped by a trigger whenever ``segments`` changes.

    Caches compare it with the version they compiled to notice changes made by other
    replicas or written directly in the database.
    """

    __tablename__ = "segment_catalogue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class ApiKeyRow(Base):
    """An API key: its public id, the SHA-256 of the whole key, never the key itself."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    #: Space-separated scope names, as ``segmentd keys create --scope`` gave them.
    scopes: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: Set once by ``segmentd keys revoke``; the row stays, so listings show what was revoked when.
    revoke_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UserListRow(Base):
    """A user list: an explicit set of user ids, tested by ``in_list`` conditions.

    ``member_count`` is kept by every write in the same transaction as the member rows (the
    list's row is locked first), so reading it costs no count over millions of rows.
    """

    __tablename__ = "user_lists"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    member_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UserListMemberRow(Base):
    """``user_id`` is a member of list ``list_name``.

    The primary key (list_name, user_id) serves both the hot path's probe (is this user in
    that list?) and the semi-join of membership queries. Members need no profile: a list may
    be loaded before the profiles it names. No foreign key to ``user_lists``: its check is a
    row-level trigger, a lookup per inserted member that made bulk loads ~10 times slower;
    the repository writes members only under the list's row lock and deletes them with it.
    """

    __tablename__ = "user_list_members"

    list_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(256), primary_key=True)


class SegmentListReferenceRow(Base):
    """``name``'s current rule tests user list ``list_name`` (a list in use cannot be deleted)."""

    __tablename__ = "segment_list_references"

    name: Mapped[str] = mapped_column(
        String(63), ForeignKey("segments.name", ondelete="CASCADE"), primary_key=True
    )
    list_name: Mapped[str] = mapped_column(String(63), ForeignKey("user_lists.name"), primary_key=True)

    __table_args__ = (Index(None, "list_name"),)


profiles_table = ProfileRow.__table__
events_table = EventCountRow.__table__
