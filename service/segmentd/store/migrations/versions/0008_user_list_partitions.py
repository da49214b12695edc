"""PostgreSQL: each user list's members in a partition of their own, so a bulk load can swap one in.

    user_list_members               PARTITION BY LIST (list_name); the notifying triggers of 0004
    └── user_list_members_<h>       one per list, PARTITION BY LIST (list_name) FOR VALUES IN (name)
        └── user_list_members_<h>_<g>   the rows; UNIQUE (user_id), CHECK (list_name = name)

``<h>``: the first 24 hex digits of md5(name). Why the two levels, and how a load builds and
swaps the leaf: ``segmentd.store.user_list_tables``. The primary key (list_name, user_id)
becomes one unique index on ``user_id`` per leaf: ``list_name`` is constant there, and an index
led by a constant costs a load twice the sort. Each list's rows are copied into its new
partition in key order; member rows of no list (possible before, with no foreign key) are not
carried over. The root keeps the notifying triggers, so writes through it (small changes, SQL)
notify as before.

The downgrade copies every member back into one table with the primary key of 0004.
SQLite keeps one table: nothing to do.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROOT = "user_list_members"
_OLD = "user_list_members_0007"
_COLUMNS = 'list_name varchar(63) NOT NULL, user_id varchar(256) COLLATE "C" NOT NULL'
_TRIGGERS = [
    (kind, f"REFERENCING {'OLD TABLE AS old_rows' if kind == 'DELETE' else 'NEW TABLE AS new_rows'} ")
    for kind in ("INSERT", "UPDATE", "DELETE")
]


def _create_triggers() -> None:
    for kind, transition in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER user_list_members_{kind.lower()}_notify AFTER {kind} ON {_ROOT} "
            f"{transition}FOR EACH STATEMENT EXECUTE FUNCTION segmentd_list_members_changed()"
        )
    op.execute(
        f"CREATE TRIGGER user_list_members_truncate_notify AFTER TRUNCATE ON {_ROOT} "
        "FOR EACH STATEMENT EXECUTE FUNCTION segmentd_profiles_truncated()"
    )


def _partition(name: str) -> None:
    # The rule of segmentd.store.user_list_tables.list_table, frozen here as of this revision.
    table = f"{_ROOT}_{hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:24]}"
    leaf = f"{table}_00000000"
    literal = "'" + name.replace("'", "''") + "'"
    op.execute(
        f"CREATE TABLE {table} (list_name varchar(63) NOT NULL, "
        f'user_id varchar(256) COLLATE "C" NOT NULL) PARTITION BY LIST (list_name)'
    )
    op.execute(
        f"CREATE TABLE {leaf} (list_name varchar(63) NOT NULL DEFAULT {literal} CHECK (list_name = {literal}), "
        f'user_id varchar(256) COLLATE "C" NOT NULL)'
    )
    op.execute(
        sa.text(
            f"INSERT INTO {leaf} (user_id) SELECT user_id FROM {_OLD} WHERE list_name = :name ORDER BY user_id"
        ).bindparams(name=name)
    )
    op.execute(f"CREATE UNIQUE INDEX {leaf}_key ON {leaf} (user_id)")
    op.execute(f"ALTER TABLE {table} ATTACH PARTITION {leaf} FOR VALUES IN ({literal})")
    op.execute(f"ALTER TABLE {_ROOT} ATTACH PARTITION {table} FOR VALUES IN ({literal})")


def upgrade() -> None:
    """Move every list's members into a partition of their own (PostgreSQL)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {_ROOT} RENAME TO {_OLD}")
    op.execute(f"CREATE TABLE {_ROOT} ({_COLUMNS}) PARTITION BY LIST (list_name)")
    for (name,) in bind.execute(sa.text("SELECT name FROM user_lists ORDER BY name")).all():
        _partition(name)
    op.execute(f"DROP TABLE {_OLD}")  # and its triggers
    _create_triggers()


def downgrade() -> None:
    """Copy every member back into one table with the primary key (list_name, user_id)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"CREATE TABLE {_OLD} ({_COLUMNS}, CONSTRAINT pk_user_list_members PRIMARY KEY (list_name, user_id))"
    )
    op.execute(f"INSERT INTO {_OLD} SELECT list_name, user_id FROM {_ROOT} ORDER BY list_name, user_id")
    op.execute(f"DROP TABLE {_ROOT}")  # with every partition, and the triggers
    op.execute(f"ALTER TABLE {_OLD} RENAME TO {_ROOT}")
    _create_triggers()
