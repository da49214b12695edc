"""SQL builders of the profile repository that differ between PostgreSQL and SQLite.

trait_number(dialect, path)     (is a JSON number?, its value) at a dotted path
event_count_columns(...)        one correlated sum per (event name, window); pseudo-events:
                                ``*`` sums every name, ``$created`` reads the profile's create_time
list_membership_columns(n)      one EXISTS per user list: a probe of the members' primary key
upsert_event_counts(dialect)    per-day upsert adding counts: count = events.count + excluded.count
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Insert,
    Integer,
    Label,
    String,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from segmentd.engine.events import ANY_EVENT, PROFILE_CREATED
from segmentd.engine.times import day_start, event_window_start
from segmentd.store.models import EventCountRow, ProfileRow, UserListMemberRow


def event_count_columns(windows: Iterable[tuple[str, int]]) -> list[Label[Any]]:
    """Return one scalar subquery per window: the user's count of that event in it (0 if none).

    Each one is a range scan of the events primary key (user_id, name, day). The user is the
    bound parameter ``user_id``, and the first day of window ``i`` (when it has one) is
    ``start_i``: see :func:`event_count_parameters`.
    """
    columns: list[Label[Any]] = []
    for index, (name, within_days) in enumerate(windows):
        if name == PROFILE_CREATED:
            columns.append(_created_in_window(index, within_days))
            continue
        conditions = [EventCountRow.user_id == bindparam("user_id")]
        if name != ANY_EVENT:
            conditions.append(EventCountRow.name == name)
        if within_days:
            conditions.append(EventCountRow.day >= bindparam(f"start_{index}", type_=Date()))
        total = select(func.coalesce(func.sum(EventCountRow.count), 0)).where(*conditions)
        columns.append(total.scalar_subquery().label(f"window_{index}"))
    return columns


def list_membership_columns(count: int) -> list[Label[Any]]:
    """Return ``count`` columns: is the user (``user_id``) in the list given as ``list_<i>``?

    The names are rendered into the statement's text (``literal_execute``), not bound: a
    generic plan of a statement that binds them would lock every list's partitions
    (PostgreSQL 15 locks before run-time pruning), and a constant is pruned at planning.
    """
    return [
        exists()
        .where(
            UserListMemberRow.list_name == bindparam(f"list_{index}", type_=String(), literal_execute=True),
            UserListMemberRow.user_id == bindparam("user_id"),
        )
        .label(f"in_list_{index}")
        for index in range(count)
    ]


def _created_in_window(index: int, within_days: int) -> Label[Any]:
    """1 when the profile was first stored on or after the window's first day (``created_i``)."""
    if not within_days:
        return literal(1, Integer()).label(f"window_{index}")
    since = bindparam(f"created_{index}", type_=DateTime(timezone=True))
    return case((ProfileRow.create_time >= since, 1), else_=0).label(f"window_{index}")


def event_count_parameters(
    user_id: str, windows: Iterable[tuple[str, int]], now: datetime
) -> dict[str, str | date]:
    """The parameters of :func:`event_count_columns` for ``user_id`` at ``now``."""
    parameters: dict[str, str | date] = {"user_id": user_id}
    for index, (name, within_days) in enumerate(windows):
        start = event_window_start(now, within_days)
        if start is None:
            continue
        if name == PROFILE_CREATED:
            parameters[f"created_{index}"] = day_start(start)
        else:
            parameters[f"start_{index}"] = start
    return parameters


def trait_number(dialect: str, path: Sequence[str]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """Return (the trait at ``path`` is a JSON number, that trait) for ``profiles.traits``.

    Booleans are not numbers. A step through anything but an object finds nothing: on
    PostgreSQL ``->`` with a text key gives NULL on an array; SQLite's ``$."key"`` too.
    The caller must refuse steps that are not addressable (``checks.is_addressable_key``).
    """
    if dialect == "postgresql":
        value: ColumnElement[Any] = ProfileRow.traits.expression
        for step in path:
            value = value.op("->", return_type=postgresql.JSONB())(literal(step, String))
        # jsonb orders numbers by numeric value; no cast, so no cast can fail on a non-number.
        return func.jsonb_typeof(value) == "number", value
    json_path = "$" + "".join(f'."{step}"' for step in path)
    is_number = func.json_type(ProfileRow.traits, json_path).in_(("integer", "real"))
    return is_number, func.json_extract(ProfileRow.traits, json_path)


def upsert_event_counts(dialect: str) -> Insert:
    """Return an INSERT of a per-day count that adds to the count already stored.

    Built once per dialect and kept; executed with one parameter set per row.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(EventCountRow)
    return statement.on_conflict_do_update(
        index_elements=[EventCountRow.user_id, EventCountRow.name, EventCountRow.day],
        set_={"count": EventCountRow.count + statement.excluded.count},
    )
