"""Segment writes inside one transaction: create, update, create-or-update, and batches of them.

    SegmentRepository.create / update / write_many
        └── one write transaction, segment write lock taken first
              for each SegmentWrite, in order:  create_in  or  update_in
              validate_only: every check runs and the rows are built, then the transaction
                             rolls back (``_Validated``), so nothing is written or notified

The functions here run inside the repository's transactions; none opens a session. A batch's
writes see each other (a segment may reference one created earlier in the batch), and its
errors name the offending request (``requests[2].segment.rule...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from segmentd.engine.codec import rule_from_json
from segmentd.engine.limits import RuleLimits
from segmentd.engine.rules import Rule
from segmentd.engine.validation import is_valid_segment_name
from segmentd.errors import EtagMismatch, InvalidArgument, SegmentAlreadyExists, SegmentNotFound
from segmentd.store.database import rowcount
from segmentd.store.models import SegmentRow, SegmentVersionRow
from segmentd.store.segment_rows import (
    RULE_PATH,
    check_references,
    etag_mismatch,
    new_etag,
    row_values,
    segment_values,
    write_version,
)

#: The column values of written segments, one dict per segment.
Rows = list[dict[str, Any]]

#: The most writes one batch may hold.
MAX_BATCH_WRITES: Final = 1000


@dataclass(frozen=True, slots=True)
class SegmentWrite:
    """One change of a batch, as ``UpdateSegment`` describes it.

    Attributes:
        name: the segment's name.
        etag: the current etag of an existing segment (required to update it); empty to create.
        description, rule, labels: the new values; ``None`` keeps (or, when creating, defaults)
            the field. Creating requires ``rule``.
        allow_missing: create the segment when no segment has this name.
    """

    name: str
    etag: str = ""
    description: str | None = None
    rule: Rule | None = None
    labels: Mapping[str, str] | None = None
    allow_missing: bool = False


class Validated(Exception):
    """Raised inside a validate-only transaction so that it rolls back; carries the rows."""

    def __init__(self, rows: Rows) -> None:
        super().__init__("validate only")
        self.rows = rows


async def create_in(
    session: AsyncSession,
    name: str,
    description: str,
    rule: Rule,
    labels: Mapping[str, str],
    limits: RuleLimits,
) -> dict[str, Any]:
    """Write a new segment at version 1 (or after the last version of a deleted namesake)."""
    if not isinstance(name, str) or not is_valid_segment_name(name):
        raise InvalidArgument("segment.name", "must match [a-z0-9-]{1,63}")
    values = segment_values(description, rule, labels, limits)
    if await session.get(SegmentRow, name) is not None:
        raise SegmentAlreadyExists(f"segment {name!r} already exists")
    await check_references(session, name, rule)
    # History outlives deletion, so a re-created name continues its version numbers.
    last = await session.scalar(
        select(func.max(SegmentVersionRow.version)).where(SegmentVersionRow.name == name)
    )
    now = datetime.now(UTC)
    row = values | {"name": name, "version": (last or 0) + 1, "etag": new_etag()}
    row |= {"create_time": now, "update_time": now}
    try:
        await session.execute(insert(SegmentRow).values(row))
    except IntegrityError as error:  # created concurrently outside the service
        raise SegmentAlreadyExists(f"segment {name!r} already exists") from error
    await write_version(session, row, rule)
    return row


async def update_in(session: AsyncSession, write: SegmentWrite, limits: RuleLimits) -> dict[str, Any]:
    """Write a new version of ``write.name``, or create it when missing and ``allow_missing``."""
    current = await session.get(SegmentRow, write.name)
    if current is None and write.allow_missing:
        if write.etag:  # the caller expected a segment that no longer exists
            raise etag_mismatch(write.name)
        if write.rule is None:
            raise InvalidArgument("segment.rule", "is required to create a segment")
        return await create_in(
            session, write.name, write.description or "", write.rule, write.labels or {}, limits
        )
    if not write.etag:
        if write.allow_missing:  # expected to create it, but someone else did meanwhile
            raise EtagMismatch(
                f"segment {write.name!r} exists (it was created meanwhile?): read it, then retry"
            )
        raise InvalidArgument("segment.etag", "is required to update a segment")
    if current is None:
        raise SegmentNotFound(f"segment {write.name!r} not found")
    if current.etag != write.etag:
        raise etag_mismatch(write.name)
    new_rule = write.rule if write.rule is not None else rule_from_json(current.rule, RULE_PATH)
    values = segment_values(
        current.description if write.description is None else write.description,
        new_rule,
        current.labels if write.labels is None else write.labels,
        limits,
    )
    await check_references(session, write.name, new_rule)
    row = row_values(current) | values | {"version": current.version + 1, "etag": new_etag()}
    row |= {"update_time": datetime.now(UTC)}
    changed = await session.execute(
        update(SegmentRow).where(SegmentRow.name == write.name, SegmentRow.etag == write.etag).values(row)
    )
    if rowcount(changed) != 1:  # changed outside the service since we read it
        raise etag_mismatch(write.name)
    await write_version(session, row, new_rule)
    return row


def check_batch(writes: Sequence[SegmentWrite]) -> None:
    """Refuse an empty or oversized batch, or one naming a segment twice."""
    if not writes:
        raise InvalidArgument("requests", "must hold at least one request")
    if len(writes) > MAX_BATCH_WRITES:
        raise InvalidArgument("requests", f"holds {len(writes)} requests; at most {MAX_BATCH_WRITES}")
    seen: dict[str, int] = {}
    for index, write in enumerate(writes):
        if write.name in seen:
            raise InvalidArgument(
                f"requests[{index}].segment.name",
                f"{write.name!r} is already in requests[{seen[write.name]}]",
            )
        seen[write.name] = index


async def write_all(session: AsyncSession, writes: Sequence[SegmentWrite], limits: RuleLimits) -> Rows:
    """Apply ``writes`` in order; an error names its request by index and segment."""
    rows: Rows = []
    for index, write in enumerate(writes):
        try:
            rows.append(await update_in(session, write, limits))
        except InvalidArgument as error:
            # The same class, so the status code stays; the field gains the request's index.
            raise type(error)(
                f"requests[{index}].{error.field}", f"segment {write.name!r}: {error.message}"
            ) from error
    return rows
