"""Tell listening replicas when an API key changes, so a revocation reaches them at once (PostgreSQL only).

A statement-level trigger on ``api_keys`` sends ``NOTIFY segmentd_keys`` after any UPDATE,
DELETE or TRUNCATE (a revocation, a scope changed by hand, a key removed), whether it came
from ``segmentd keys revoke`` or straight from SQL. Listeners drop every cached key verdict:
revocations are rare, and a verdict is one indexed read to recompute. INSERT sends nothing:
a new key is random, so no verdict on it can be cached before it exists.

SQLite is an embedded store served by one process, so it needs no notifications.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = ("UPDATE", "DELETE", "TRUNCATE")


def upgrade() -> None:
    """Create the notifying function and its triggers."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION segmentd_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('segmentd_keys', ''); RETURN NULL; END $$"
    )
    for kind in _KINDS:
        op.execute(
            f"CREATE TRIGGER api_keys_{kind.lower()}_notify AFTER {kind} ON api_keys "
            "FOR EACH STATEMENT EXECUTE FUNCTION segmentd_keys_changed()"
        )


def downgrade() -> None:
    """Drop the triggers and their function."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for kind in _KINDS:
        op.execute(f"DROP TRIGGER api_keys_{kind.lower()}_notify ON api_keys")
    op.execute("DROP FUNCTION segmentd_keys_changed()")
