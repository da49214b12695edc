"""Row-level helpers of ``SegmentRepository``: the write lock, checks, and row <-> record.

All of them run inside the repository's transactions; none opens a session.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmentd.engine.codec import rule_from_json, rule_to_json
from segmentd.engine.limits import RuleLimits
from segmentd.engine.rules import Rule
from segmentd.engine.validation import validate_rule
from segmentd.errors import EtagMismatch, InvalidArgument, InvalidRule, SegmentNotFound
from segmentd.store.checks import check_labels
from segmentd.store.database import as_utc, is_postgresql
from segmentd.store.models import (
    SegmentListReferenceRow,
    SegmentReferenceRow,
    SegmentRow,
    SegmentVersionRow,
    UserListRow,
)
from segmentd.store.records import Segment
from segmentd.store.references import edges_by_name, find_cycle, list_reference_paths, reference_paths

#: Key of the PostgreSQL advisory lock serializing segment writes ("segments" in ASCII).
SEGMENT_WRITE_LOCK_KEY: Final = 0x7365676D656E7473

#: Where a segment's rule sits in requests; errors name fields below it.
RULE_PATH: Final = "segment.rule"


def segment_values(description: object, rule: Rule, labels: object, limits: RuleLimits) -> dict[str, Any]:
    """Check the writable fields of a segment; return them as column values.

    Raises:
        InvalidArgument: ``segment.description`` or ``segment.labels``.
        InvalidRule: the rule is invalid or over ``limits``.
    """
    if not isinstance(description, str) or "\x00" in description:
        raise InvalidArgument("segment.description", "must be a string without NUL characters")
    checked_labels = check_labels(labels, "segment.labels")
    validate_rule(rule, limits, path=RULE_PATH)
    return {"description": description, "rule": rule_to_json(rule), "labels": checked_labels}


async def lock_segments(session: AsyncSession) -> None:
    """Take the segment write lock until the transaction ends.

    On SQLite the transaction holds the database write lock already (``write_session``).
    """
    if is_postgresql(session):
        await session.execute(select(func.pg_advisory_xact_lock(SEGMENT_WRITE_LOCK_KEY)))


async def current_row(session: AsyncSession, name: str) -> SegmentRow:
    """Return the current row of segment ``name``.

    Raises:
        SegmentNotFound: no such segment.
    """
    row = await session.get(SegmentRow, name)
    if row is None:
        raise SegmentNotFound(f"segment {name!r} not found")
    return row


def etag_mismatch(name: str) -> EtagMismatch:
    """Return the error of a write made with a stale etag."""
    return EtagMismatch(f"segment {name!r} has changed: read it again, then retry")


async def check_references(session: AsyncSession, name: str, rule: Rule) -> None:
    """Refuse references to missing segments or user lists, and references making a cycle.

    Raises:
        InvalidRule: naming the offending reference's field.
    """
    await _check_list_references(session, rule)
    paths = list(reference_paths(rule, RULE_PATH))
    for path, referenced in paths:
        if referenced == name:
            raise InvalidRule(path, f"segment {name!r} cannot reference itself")
    if not paths:
        return
    wanted = {referenced for _path, referenced in paths}
    existing = set((await session.scalars(select(SegmentRow.name).where(SegmentRow.name.in_(wanted)))).all())
    edges = await session.execute(select(SegmentReferenceRow.name, SegmentReferenceRow.referenced_name))
    graph = edges_by_name((edge[0], edge[1]) for edge in edges)
    for path, referenced in paths:
        if referenced not in existing:
            raise InvalidRule(path, f"segment {referenced!r} does not exist")
        cycle = find_cycle(name, referenced, graph)
        if cycle is not None:
            raise InvalidRule(path, f"makes a reference cycle: {' -> '.join(cycle)}")


async def _check_list_references(session: AsyncSession, rule: Rule) -> None:
    paths = list(list_reference_paths(rule, RULE_PATH))
    if not paths:
        return
    wanted = {name for _path, name in paths}
    # FOR SHARE (PostgreSQL): a list cannot be deleted until this write commits its references.
    query = select(UserListRow.name).where(UserListRow.name.in_(wanted)).with_for_update(read=True)
    existing = set((await session.scalars(query)).all())
    for path, name in paths:
        if name not in existing:
            raise InvalidRule(path, f"user list {name!r} does not exist")


async def write_version(session: AsyncSession, row: Mapping[str, Any], rule: Rule) -> None:
    """Record ``row`` in the history and make ``rule``'s references the segment's edges."""
    await session.execute(insert(SegmentVersionRow).values(dict(row)))
    await session.execute(delete(SegmentReferenceRow).where(SegmentReferenceRow.name == row["name"]))
    referenced = sorted({name for _path, name in reference_paths(rule, RULE_PATH)})
    if referenced:
        await session.execute(
            insert(SegmentReferenceRow),
            [{"name": row["name"], "referenced_name": name} for name in referenced],
        )
    await session.execute(delete(SegmentListReferenceRow).where(SegmentListReferenceRow.name == row["name"]))
    lists = sorted({name for _path, name in list_reference_paths(rule, RULE_PATH)})
    if lists:
        await session.execute(
            insert(SegmentListReferenceRow), [{"name": row["name"], "list_name": name} for name in lists]
        )


def row_values(row: SegmentRow | SegmentVersionRow) -> dict[str, Any]:
    """Return the column values of a current or historical segment row."""
    return {
        "name": row.name,
        "version": row.version,
        "description": row.description,
        "rule": row.rule,
        "labels": row.labels,
        "etag": row.etag,
        "create_time": row.create_time,
        "update_time": row.update_time,
    }


def to_segment(row: Mapping[str, Any]) -> Segment:
    """Build the record of a segment from its column values."""
    return Segment(
        name=row["name"],
        description=row["description"],
        rule=rule_from_json(row["rule"], RULE_PATH),
        labels=dict(row["labels"]),
        version=row["version"],
        etag=row["etag"],
        create_time=as_utc(row["create_time"]),
        update_time=as_utc(row["update_time"]),
    )


def new_etag() -> str:
    """Return a fresh etag: 64 random bits, in hex."""
    return secrets.token_hex(8)
