"""Tell listening replicas which users' profiles or events changed (PostgreSQL only).

Statement-level triggers on ``profiles`` and ``events`` send ``NOTIFY segmentd_profiles`` with
the changed user id, one notification per user. A statement touching more than
``_PER_USER_LIMIT`` users (a bulk import, a mass update) sends the single payload ``*``
instead, which tells listeners to drop every cached profile: that keeps the notification
queue small, and the listener's work bounded, whatever the statement's size. The triggers
fire for writes made by segmentd and for writes made directly in the database alike.

SQLite is an embedded store served by one process, so it needs no notifications.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PER_USER_LIMIT = 100

_FUNCTION = f"""
CREATE FUNCTION segmentd_profiles_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT user_id) INTO changed FROM old_rows;
    ELSE
        SELECT array_agg(DISTINCT user_id) INTO changed FROM new_rows;
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

# A trigger with transition tables serves one kind of statement, hence three per table.
_TRIGGERS = [
    (table, kind, "NEW TABLE AS new_rows" if kind != "DELETE" else "OLD TABLE AS old_rows")
    for table in ("profiles", "events")
    for kind in ("INSERT", "UPDATE", "DELETE")
]


def upgrade() -> None:
    """Create the notifying function and its triggers."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    for table, kind, transition in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {table}_{kind.lower()}_notify AFTER {kind} ON {table} "
            f"REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION segmentd_profiles_changed()"
        )
    # TRUNCATE has no transition table: it empties everything.
    op.execute(
        "CREATE FUNCTION segmentd_profiles_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('segmentd_profiles', '*'); RETURN NULL; END $$"
    )
    for table in ("profiles", "events"):
        op.execute(
            f"CREATE TRIGGER {table}_truncate_notify AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION segmentd_profiles_truncated()"
        )


def downgrade() -> None:
    """Drop the triggers and their functions."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, kind, _ in _TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_{kind.lower()}_notify ON {table}")
    for table in ("profiles", "events"):
        op.execute(f"DROP TRIGGER {table}_truncate_notify ON {table}")
    op.execute("DROP FUNCTION segmentd_profiles_truncated()")
    op.execute("DROP FUNCTION segmentd_profiles_changed()")
