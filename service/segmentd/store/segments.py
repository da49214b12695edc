"""Segments: named, versioned rules, with their history and reference graph.

Every write is one transaction that first takes the segment write lock (a transaction-level
advisory lock on PostgreSQL, the database write lock on SQLite), so the reference and cycle
checks see the graph exactly as the write leaves it. Updates are compare-and-set on the etag
(``UPDATE ... WHERE name = :name AND etag = :etag``): of two updates sent with the same etag,
exactly one succeeds and the other gets ``EtagMismatch``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.engine.limits import DEFAULT_LIMITS, RuleLimits
from segmentd.engine.rules import Rule
from segmentd.errors import SegmentInUse, SegmentNotFound
from segmentd.store.checks import check_labels
from segmentd.store.database import read_session, rowcount, snapshot_session, store_operation, write_session
from segmentd.store.models import SegmentCatalogueRow, SegmentReferenceRow, SegmentRow, SegmentVersionRow
from segmentd.store.paging import decode_page_token, effective_page_size, encode_page_token
from segmentd.store.records import Segment, SegmentPage
from segmentd.store.segment_rows import current_row, etag_mismatch, lock_segments, row_values, to_segment
from segmentd.store.segment_writes import (
    Rows,
    SegmentWrite,
    Validated,
    check_batch,
    create_in,
    update_in,
    write_all,
)

#: Versions are stored as 32-bit integers; no segment can have a later one.
_MAX_VERSION = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CatalogueChanges:
    """The segment catalogue as of one snapshot, relative to the segments a caller holds.

    Attributes:
        version: the catalogue version of the snapshot (see ``catalogue_version``).
        changed: the segments that are new or changed, by name.
        removed: the names held by the caller that no longer exist.
    """

    version: int
    changed: Mapping[str, Segment]
    removed: frozenset[str]


async def _rows_named(session: AsyncSession, names: Collection[str]) -> list[SegmentRow]:
    if not names:
        return []
    names = list(names)
    rows: list[SegmentRow] = []
    # Chunked: an IN list stays far below every driver's bound-parameter limit.
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        rows.extend((await session.scalars(select(SegmentRow).where(SegmentRow.name.in_(chunk)))).all())
    return rows


class SegmentRepository:
    """Create, read, list, update and delete segments.

    Args:
        sessions: the session factory of ``segmentd.store.database.create_sessionmaker``.
        limits: the rule limits every written rule is validated against.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], limits: RuleLimits = DEFAULT_LIMITS
    ) -> None:
        self._sessions = sessions
        self._limits = limits

    @store_operation
    async def create(
        self,
        name: str,
        description: str,
        rule: Rule,
        labels: Mapping[str, str],
        *,
        validate_only: bool = False,
    ) -> Segment:
        """Store a new segment at version 1 (or after the last version of a deleted namesake).

        With ``validate_only``, every check runs and the segment that would be stored is
        returned, but nothing is written.

        Raises:
            InvalidArgument: ``segment.name``, ``segment.description`` or ``segment.labels``.
            InvalidRule: the rule is invalid, references a missing segment or makes a cycle.
            SegmentAlreadyExists: a segment has this name.
            StoreUnavailable: the database cannot be reached.
        """

        async def work(session: AsyncSession) -> Rows:
            return [await create_in(session, name, description, rule, labels, self._limits)]

        return to_segment((await self._transaction(work, validate_only=validate_only))[0])

    @store_operation
    async def get(self, name: str, version: int | None = None) -> Segment:
        """Return the current version of a segment, or ``version`` of it when > 0.

        Old versions stay readable after updates and after the segment is deleted.

        Raises:
            SegmentNotFound: no such segment, or it never had that version.
            StoreUnavailable: the database cannot be reached.
        """
        if version is not None and version > _MAX_VERSION:
            # The column is a 32-bit integer: PostgreSQL would refuse the parameter itself.
            raise SegmentNotFound(f"segment {name!r} at version {version} not found")
        async with read_session(self._sessions) as session:
            row: SegmentRow | SegmentVersionRow | None
            if version is None or version <= 0:
                row = await session.get(SegmentRow, name)
            else:
                row = await session.get(SegmentVersionRow, (name, version))
        if row is None:
            suffix = f" at version {version}" if version and version > 0 else ""
            raise SegmentNotFound(f"segment {name!r}{suffix} not found")
        return to_segment(row_values(row))

    @store_operation
    async def list(
        self, page_size: int = 0, page_token: str = "", labels: Mapping[str, str] | None = None
    ) -> SegmentPage:
        """Return one page of the current segments carrying all ``labels``, by ascending name.

        ``page_size`` 0 means 50; more than 1000 is clamped to 1000.

        Raises:
            InvalidArgument: ``page_size`` negative, ``labels`` malformed, or ``page_token``
                not issued by this method for the same ``labels``.
            StoreUnavailable: the database cannot be reached.
        """
        size = effective_page_size(page_size)
        wanted = check_labels(labels or {}, "labels")
        after = decode_page_token(page_token, wanted)
        query = select(SegmentRow).where(SegmentRow.name > after).order_by(SegmentRow.name).limit(size + 1)
        for key, value in wanted.items():
            # The filter is in SQL so that every page is full: filtering a fetched page in
            # Python would return short (even empty) pages before the end.
            query = query.where(SegmentRow.labels[key].as_string() == value)
        async with read_session(self._sessions) as session:
            rows = (await session.scalars(query)).all()
        segments = tuple(to_segment(row_values(row)) for row in rows[:size])
        token = encode_page_token(segments[-1].name, wanted) if len(rows) > size else ""
        return SegmentPage(segments=segments, next_page_token=token)

    async def update(
        self,
        name: str,
        *,
        etag: str,
        description: str | None = None,
        rule: Rule | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Segment:
        """Write a new version of a segment; ``None`` keeps a field as it is (see ``write``)."""
        return await self.write(SegmentWrite(name, etag, description, rule, labels))

    @store_operation
    async def write(self, write: SegmentWrite, *, validate_only: bool = False) -> Segment:
        """Write a new version of ``write.name``, or create it when missing and ``allow_missing``.

        With ``validate_only``, nothing is written (as for ``create``).

        Raises:
            InvalidArgument: ``segment.etag`` empty, or a field is invalid (as for ``create``).
            InvalidRule: the rule is invalid, references a missing segment or makes a cycle.
            SegmentNotFound: no such segment (and not ``allow_missing``).
            EtagMismatch: ``etag`` is not the current one (or given for a missing segment).
            StoreUnavailable: the database cannot be reached.
        """

        async def work(session: AsyncSession) -> Rows:
            return [await update_in(session, write, self._limits)]

        return to_segment((await self._transaction(work, validate_only=validate_only))[0])

    @store_operation
    async def write_many(
        self, writes: Sequence[SegmentWrite], *, validate_only: bool = False
    ) -> tuple[Segment, ...]:
        """Apply ``writes`` in order, in one transaction: all of them or none.

        Raises:
            InvalidArgument: the batch is empty, too large or names a segment twice, or a
                write is invalid (its field prefixed with ``requests[i].``).
            The errors of ``update``, for the first write that fails.
        """
        check_batch(writes)

        async def work(session: AsyncSession) -> Rows:
            return await write_all(session, writes, self._limits)

        return tuple(to_segment(row) for row in await self._transaction(work, validate_only=validate_only))

    async def _transaction(
        self,
        work: Callable[[AsyncSession], Awaitable[Rows]],
        *,
        validate_only: bool,
    ) -> Rows:
        """Run ``work`` in a write transaction holding the segment write lock.

        With ``validate_only`` the transaction rolls back after ``work``: its checks saw the
        graph as the writes would leave it, and no trigger's change or notification survives.
        """
        try:
            async with write_session(self._sessions) as session:
                await lock_segments(session)
                rows = await work(session)
                if validate_only:
                    raise Validated(rows)
        except Validated as validated:
            return validated.rows
        return rows

    @store_operation
    async def delete(self, name: str, etag: str = "") -> None:
        """Delete a segment; its version history is kept.

        Raises:
            SegmentNotFound: no such segment.
            EtagMismatch: ``etag`` is given and is not the current one.
            SegmentInUse: other segments reference it.
            StoreUnavailable: the database cannot be reached.
        """
        async with write_session(self._sessions) as session:
            await lock_segments(session)
            current = await current_row(session, name)
            if etag and current.etag != etag:
                raise etag_mismatch(name)
            referrers = (
                await session.scalars(
                    select(SegmentReferenceRow.name).where(SegmentReferenceRow.referenced_name == name)
                )
            ).all()
            if referrers:
                raise SegmentInUse(name, referrers)
            deleted = await session.execute(
                delete(SegmentRow).where(SegmentRow.name == name, SegmentRow.etag == current.etag)
            )
            if rowcount(deleted) != 1:
                raise etag_mismatch(name)

    @store_operation
    async def catalogue_changes(self, known_etags: Mapping[str, str]) -> CatalogueChanges:
        """Return the catalogue version and what changed since the segments of ``known_etags``.

        One snapshot: the version, every current ``(name, etag)``, and in full only the
        segments that are new or whose etag differs from the known one.

        Args:
            known_etags: the etag of each segment the caller holds, by name.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        async with snapshot_session(self._sessions) as session:
            version = await session.scalar(
                select(SegmentCatalogueRow.version).where(SegmentCatalogueRow.id == 1)
            )
            etags = {
                name: etag for name, etag in await session.execute(select(SegmentRow.name, SegmentRow.etag))
            }
            wanted = [name for name, etag in etags.items() if known_etags.get(name) != etag]
            rows = await _rows_named(session, wanted)
        return CatalogueChanges(
            version=int(version or 0),
            changed={row.name: to_segment(row_values(row)) for row in rows},
            removed=frozenset(known_etags.keys() - etags.keys()),
        )

    @store_operation
    async def catalogue_version(self) -> int:
        """Return the catalogue version: it changes whenever any segment is written or deleted.

        A trigger bumps it, so writes made directly in the database count too; on PostgreSQL
        the trigger also sends ``NOTIFY segmentd_segments`` with the new version.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        async with read_session(self._sessions) as session:
            version = await session.scalar(
                select(SegmentCatalogueRow.version).where(SegmentCatalogueRow.id == 1)
            )
        return int(version or 0)
