"""User lists: explicit sets of user ids, one row per member, and the lists segments test.

    user_lists(name PK, description, member_count, create_time, update_time)
    user_list_members(list_name, user_id)      PK (list_name, user_id); no foreign key (see models.py)
    segment_list_references(name FK -> segments ON DELETE CASCADE, list_name FK -> user_lists)

On PostgreSQL, statement-level triggers on ``user_list_members`` tell listening replicas which
users' memberships changed, on the profiles channel (``NOTIFY segmentd_profiles, '<user id>'``,
or ``'*'`` beyond 100 rows, as migration 0003 does for profiles), since a cached profile
carries its list memberships. The trigger reads at most 101 rows of the transition table, so
a bulk load of millions of members costs it nothing more than one that touches 101.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
_PER_USER_LIMIT = 100

_FUNCTION = f"""
CREATE FUNCTION segmentd_list_members_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text[];
BEGIN
    -- One list's members are distinct user ids (the primary key): no DISTINCT needed, and
    -- the LIMIT keeps a bulk statement from aggregating millions of ids.
    IF TG_OP = 'DELETE' THEN
        SELECT array_agg(user_id) INTO changed FROM (SELECT user_id FROM old_rows LIMIT {_PER_USER_LIMIT + 1}) AS s;
    ELSE
        SELECT array_agg(user_id) INTO changed FROM (SELECT user_id FROM new_rows LIMIT {_PER_USER_LIMIT + 1}) AS s;
    END IF;
    IF changed IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(changed) > {_PER_USER_LIMIT} THEN
        PERFORM pg_notify('segmentd_profiles', '*');
    ELSE
        PERFORM pg_notify('segmentd_profiles', user_id) FROM unnest(changed) AS user_id;
    END IF;
    RETURN NULL;
END
$$
"""

_TRIGGERS = [
    (kind, "NEW TABLE AS new_rows" if kind != "DELETE" else "OLD TABLE AS old_rows")
    for kind in ("INSERT", "UPDATE", "DELETE")
]


def upgrade() -> None:
    """Create the user-list tables and, on PostgreSQL, the notifying triggers."""
    op.create_table(
        "user_lists",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=False),
        sa.Column("create_time", _TIMESTAMP, nullable=False),
        sa.Column("update_time", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_user_lists"),
    )
    op.create_table(
        "user_list_members",
        sa.Column("list_name", sa.String(63), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("list_name", "user_id", name="pk_user_list_members"),
    )
    op.create_table(
        "segment_list_references",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("list_name", sa.String(63), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["segments.name"], name="fk_segment_list_references_name_segments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["list_name"], ["user_lists.name"], name="fk_segment_list_references_list_name_user_lists"
        ),
        sa.PrimaryKeyConstraint("name", "list_name", name="pk_segment_list_references"),
    )
    op.create_index("ix_segment_list_references_list_name", "segment_list_references", ["list_name"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    for kind, transition in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER user_list_members_{kind.lower()}_notify AFTER {kind} ON user_list_members "
            f"REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION segmentd_list_members_changed()"
        )
    op.execute(
        "CREATE TRIGGER user_list_members_truncate_notify AFTER TRUNCATE ON user_list_members "
        "FOR EACH STATEMENT EXECUTE FUNCTION segmentd_profiles_truncated()"
    )


def downgrade() -> None:
    """Drop the triggers and the user-list tables."""
    if op.get_bind().dialect.name == "postgresql":
        for kind, _ in _TRIGGERS:
            op.execute(f"DROP TRIGGER user_list_members_{kind.lower()}_notify ON user_list_members")
        op.execute("DROP TRIGGER user_list_members_truncate_notify ON user_list_members")
        op.execute("DROP FUNCTION segmentd_list_members_changed()")
    op.drop_index("ix_segment_list_references_list_name", table_name="segment_list_references")
    for table in ("segment_list_references", "user_list_members", "user_lists"):
        op.drop_table(table)
