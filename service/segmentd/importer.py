"""Bulk profile import: check a stream of profiles, store it all or nothing.

    ImportBatch, ImportBatch, ...   (options from the first)
      └─> each profile checked by the store's own rules; index = 1-based position in the stream
            └─> valid profiles, re-batched ─> BulkImporter: staging table, one upsert, commit
                  └─> ImportReport(imported, skipped, errors[:1000]); the profile cache cleared

Without ``skip_invalid``, the first invalid profile abandons the database work at once (no
transaction is begun when it comes before any valid batch); the rest of the stream is still
read and checked, so that the error can say how many profiles were invalid.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.engine.rules import JsonValue
from segmentd.errors import InvalidArgument
from segmentd.profiles import ProfileCache
from segmentd.store.checks import check_traits, check_traits_size, check_user_id
from segmentd.store.importer import BulkImporter, BulkImportResult, RejectedRow, RowsRejected, StagedProfile

#: The most errors an import reports one by one; ``skipped`` counts them all.
MAX_REPORTED_ERRORS: Final = 1000
#: Valid profiles handed to the store at a time (one COPY or executemany each).
STAGING_BATCH_SIZE: Final = 1000

#: What the transport decoded for one profile: its user id, and its traits or why they
#: could not be decoded (the error then counts against that profile only).
IncomingProfile = tuple[str, Mapping[str, JsonValue] | InvalidArgument]


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """The profiles of one request message, with the stream's options.

    Attributes:
        profiles: the profiles, in stream order.
        replace: replace stored traits instead of merging (read from the first batch only).
        skip_invalid: store the valid profiles and report the others (first batch only).
    """

    profiles: Sequence[IncomingProfile]
    replace: bool = False
    skip_invalid: bool = False


@dataclass(frozen=True, slots=True)
class RejectedProfile:
    """An invalid profile of the stream: ``index`` is its 1-based position."""

    index: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The outcome of an import.

    Attributes:
        imported: profiles stored (distinct user ids).
        skipped: invalid profiles left out, all of them.
        errors: the first ``MAX_REPORTED_ERRORS`` of those, in stream order.
    """

    imported: int
    skipped: int
    errors: tuple[RejectedProfile, ...]


def check_profile(user_id: object, traits: object) -> tuple[dict[str, Any], str]:
    """Check a profile as ``ProfileRepository.upsert`` does; return its traits.

    The size limit applies to the traits stored, which contain every non-null trait sent:
    those alone over the limit are refused here, the rest after the merge, by the store.

    Returns:
        The traits, and the compact JSON of their non-null keys (measured for the limit).

    Raises:
        InvalidArgument: naming ``user_id`` or ``traits...``.
    """
    if isinstance(traits, InvalidArgument):
        raise traits
    check_user_id(user_id, "user_id")
    sent = check_traits(traits, "traits")
    return sent, check_traits_size({key: value for key, value in sent.items() if value is not None}, "traits")


class ProfileImporter:
    """Imports streams of profiles and keeps the profile cache coherent.

    Args:
        engine: the store's engine.
        cache: the profile cache, dropped whole after an import (many profiles changed).
    """

    def __init__(self, engine: AsyncEngine, cache: ProfileCache) -> None:
        self._store = BulkImporter(engine)
        self._cache = cache

    async def import_stream(self, batches: AsyncIterable[ImportBatch]) -> ImportReport:
        """Store the valid profiles of ``batches`` in one transaction; report the invalid ones.

        Raises:
            InvalidArgument: without ``skip_invalid``, when any profile is invalid, naming the
                first as ``profiles[<index>].<field>``; nothing is stored.
            StoreUnavailable: the database cannot be reached; nothing is stored.
        """
        stream = aiter(batches)
        first = await anext(stream, None)
        if first is None:
            return ImportReport(0, 0, ())
        tally = _Tally(first.skip_invalid)
        try:
            result = await self._store.import_profiles(
                tally.valid_batches(_chain(first, stream)),
                replace=first.replace,
                skip_rejected=first.skip_invalid,
            )
        except _Abandoned:
            async for batch in stream:
                tally.check(batch)
            raise tally.failure() from None
        except RowsRejected as exc:
            tally.add_rejected(exc.rows)
            raise tally.failure() from None
        except BaseException:
            # The outcome may be unknown (say, the commit timed out): assume profiles changed.
            self._cache.clear()
            raise
        self._cache.clear()
        return tally.report(result)


class _Abandoned(Exception):
    """Raised into the store when the import can no longer succeed: it rolls back."""


class _Tally:
    """Positions, checks and errors of one import stream."""

    def __init__(self, skip_invalid: bool) -> None:
        self._skip_invalid = skip_invalid
        self.seen = 0
        self.invalid = 0
        self.errors: list[RejectedProfile] = []

    def check(self, batch: ImportBatch) -> list[StagedProfile]:
        """Number and check the profiles of ``batch``; return the valid ones."""
        valid: list[StagedProfile] = []
        for user_id, traits in batch.profiles:
            self.seen += 1
            try:
                valid.append(StagedProfile(self.seen, user_id, *check_profile(user_id, traits)))
            except InvalidArgument as exc:
                self._reject(RejectedProfile(self.seen, exc.field, exc.message))
        return valid

    async def valid_batches(self, stream: AsyncIterator[ImportBatch]) -> AsyncIterator[list[StagedProfile]]:
        """Yield the valid profiles in batches; raise ``_Abandoned`` at the first invalid one."""
        pending: list[StagedProfile] = []
        async for batch in stream:
            pending.extend(self.check(batch))
            if self.invalid and not self._skip_invalid:
                raise _Abandoned
            while len(pending) >= STAGING_BATCH_SIZE:
                yield pending[:STAGING_BATCH_SIZE]
                del pending[:STAGING_BATCH_SIZE]
        if pending:
            yield pending

    def add_rejected(self, rows: Sequence[RejectedRow]) -> None:
        """Count the profiles the store refused (their merged traits are too large)."""
        for row in rows:
            self._reject(RejectedProfile(row.position, row.field, row.message))
        # The store finds them after every check: keep the first ones in stream order.
        self.errors = sorted(self.errors, key=lambda error: error.index)[:MAX_REPORTED_ERRORS]

    def _reject(self, error: RejectedProfile) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)

    def failure(self) -> InvalidArgument:
        """The error of an import refused because of its invalid profiles."""
        first = self.errors[0]
        return InvalidArgument(
            f"profiles[{first.index}].{first.field}",
            f"{first.message} ({self.invalid} of {self.seen} profiles invalid; nothing was imported)",
        )

    def report(self, result: BulkImportResult) -> ImportReport:
        """The report of a committed import."""
        self.add_rejected(result.rejected)
        return ImportReport(result.imported, self.invalid, tuple(self.errors))


async def _chain(first: ImportBatch, rest: AsyncIterator[ImportBatch]) -> AsyncIterator[ImportBatch]:
    yield first
    async for batch in rest:
        yield batch
