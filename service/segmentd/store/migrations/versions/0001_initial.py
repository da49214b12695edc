"""The initial schema: profiles, events, segments and their history and references.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)

# One statement-level trigger bumps the catalogue version and tells listening replicas
# (LISTEN segmentd_segments) about it, whoever changed the segments: the service, a
# script, or a person at a psql prompt.
_PG_CATALOGUE_FUNCTION = """
CREATE FUNCTION segmentd_segments_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_version bigint;
BEGIN
    UPDATE segment_catalogue SET version = version + 1 WHERE id = 1 RETURNING version INTO new_version;
    PERFORM pg_notify('segmentd_segments', new_version::text);
    RETURN NULL;
END
$$
"""
_PG_CATALOGUE_TRIGGER = """
CREATE TRIGGER segments_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON segments
FOR EACH STATEMENT EXECUTE FUNCTION segmentd_segments_changed()
"""
# SQLite has row-level triggers only, one per kind of statement.
_SQLITE_CATALOGUE_TRIGGERS = [
    f"""
CREATE TRIGGER segments_{kind.lower()}d AFTER {kind} ON segments
BEGIN
    UPDATE segment_catalogue SET version = version + 1 WHERE id = 1;
END
"""
    for kind in ("INSERT", "UPDATE", "DELETE")
]


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    """Create the tables, their indexes and the catalogue triggers."""
    _create_profiles_and_events()
    _create_segments()
    _create_catalogue()


def downgrade() -> None:
    """Drop everything ``upgrade`` created."""
    if _is_postgresql():
        op.execute("DROP TRIGGER segments_changed ON segments")
        op.execute("DROP FUNCTION segmentd_segments_changed()")
    for table in ("segment_catalogue", "segment_references", "segment_versions", "segments", "events"):
        op.drop_table(table)
    op.drop_table("profiles")


def _create_profiles_and_events() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("traits", _JSON, nullable=False),
        sa.Column("create_time", _TIMESTAMP, nullable=False),
        sa.Column("update_time", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_profiles"),
    )
    if _is_postgresql():
        op.create_index(
            "ix_profiles_traits",
            "profiles",
            ["traits"],
            postgresql_using="gin",
            postgresql_ops={"traits": "jsonb_path_ops"},
        )
    op.create_table(
        "events",
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["profiles.user_id"], name="fk_events_user_id_profiles", ondelete="CASCADE"
        ),
        # The primary key is also the index of the hot path: one user's counts by name and day.
        sa.PrimaryKeyConstraint("user_id", "name", "day", name="pk_events"),
    )


def _segment_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rule", _JSON, nullable=False),
        sa.Column("labels", _JSON, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("create_time", _TIMESTAMP, nullable=False),
        sa.Column("update_time", _TIMESTAMP, nullable=False),
    ]


def _create_segments() -> None:
    op.create_table("segments", *_segment_columns(), sa.PrimaryKeyConstraint("name", name="pk_segments"))
    op.create_table(
        "segment_versions",
        *_segment_columns(),
        sa.PrimaryKeyConstraint("name", "version", name="pk_segment_versions"),
    )
    op.create_table(
        "segment_references",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("referenced_name", sa.String(63), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["segments.name"], name="fk_segment_references_name_segments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["referenced_name"], ["segments.name"], name="fk_segment_references_referenced_name_segments"
        ),
        sa.PrimaryKeyConstraint("name", "referenced_name", name="pk_segment_references"),
    )
    op.create_index("ix_segment_references_referenced_name", "segment_references", ["referenced_name"])


def _create_catalogue() -> None:
    catalogue = op.create_table(
        "segment_catalogue",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_segment_catalogue_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_segment_catalogue"),
    )
    op.bulk_insert(catalogue, [{"id": 1, "version": 0}])
    if _is_postgresql():
        op.execute(_PG_CATALOGUE_FUNCTION)
        op.execute(_PG_CATALOGUE_TRIGGER)
    else:
        for trigger in _SQLITE_CATALOGUE_TRIGGERS:
            op.execute(trigger)
