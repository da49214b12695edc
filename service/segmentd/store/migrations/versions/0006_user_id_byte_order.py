"""Order user ids by their bytes on PostgreSQL, whatever the database's default collation.

Member listings are documented as ordered by ``user_id`` in byte order (the order of their
UTF-8 encodings, which is also code point order) and resume with ``user_id > :after``. A
column with the database's default collation follows that collation instead (``en_US``
puts ``a`` before ``B``), so the order, and the meaning of a page token, depended on how
the database was created. Giving ``profiles.user_id``, ``events.user_id`` and ``user_list_members.user_id`` (joined
with them) the ``"C"`` collation fixes both, and keeps the primary key index serving the ordered listing (an
explicit ``COLLATE "C"`` in the query would not use it). The column types are rewritten,
so on a large table this migration takes a lock for as long as the rewrite lasts.

SQLite compares text with ``BINARY``, byte order already: nothing to do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("events", "user_id"), ("profiles", "user_id"), ("user_list_members", "user_id"))


def _set_collation(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(256) COLLATE "{collation}"')


def upgrade() -> None:
    """Give the user id columns the byte-order collation (PostgreSQL)."""
    _set_collation("C")


def downgrade() -> None:
    """Give the user id columns the database's default collation again (PostgreSQL)."""
    _set_collation("default")
