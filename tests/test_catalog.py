"""SegmentCatalog: rebuilt only when the store's catalogue version moved, and incrementally."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.engine.rules import Condition, Group
from segmentd.segments import SegmentCatalog
from segmentd.store.segments import SegmentRepository
from tests.statements import statement_sources

FREE = Condition("plan", "EQUALS", "free")
PRO = Condition("plan", "EQUALS", "pro")


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repository(sessions: async_sessionmaker[AsyncSession]) -> SegmentRepository:
    return SegmentRepository(sessions)


def _record_statements(engine: AsyncEngine) -> list[str]:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement not in ("BEGIN", "BEGIN IMMEDIATE"):
            statements.append(statement)

    for source in statement_sources(engine):
        event.listen(source, "before_cursor_execute", record)
    return statements


async def _settle(catalog: SegmentCatalog) -> None:
    """Let a background version check finish."""
    for _ in range(100):
        await asyncio.sleep(0.01)
        if catalog._check is None:
            return


async def test_catalogue__unchanged_store__never_rebuilt_after_the_check_interval(
    repository: SegmentRepository, engine: AsyncEngine
) -> None:
    # Given: a catalogue, and the check interval past
    await repository.create("free", "", FREE, {})
    timer = FakeTimer()
    catalog = SegmentCatalog(repository, check_interval=5, timer=timer)
    first = await catalog.catalogue()
    statements = _record_statements(engine)
    timer.now = 60.0
    # When: calls go on, with a version check in the background
    second = await catalog.catalogue()
    await _settle(catalog)
    third = await catalog.catalogue()
    # Then: the same compiled catalogue, after one read of the version and nothing else
    assert first is second is third
    assert len(statements) == 1 and "segment_catalogue" in statements[0], statements


async def test_catalogue__other_writer_changed_a_segment__seen_after_the_check(
    repository: SegmentRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Given: this catalogue, and a segment changed by another writer (another replica, SQL)
    await repository.create("free", "", FREE, {})
    await repository.create("pro", "", PRO, {})
    timer = FakeTimer()
    catalog = SegmentCatalog(repository, check_interval=5, timer=timer)
    before = await catalog.catalogue()
    other = SegmentRepository(sessions)
    current = await other.get("pro")
    await other.update("pro", etag=current.etag, rule=Group("none", (PRO,)))
    # When: the check interval passes
    timer.now = 10.0
    assert await catalog.catalogue() is before  # the check runs off the caller's path
    await _settle(catalog)
    after = await catalog.catalogue()
    # Then: the changed segment is new; the unchanged one was neither read nor compiled again
    assert after.segments["pro"].rule == Group("none", (PRO,))
    assert after.segments["free"] is before.segments["free"]
    assert after.compiled.regenerated == ("pro",)
    assert after.version > before.version


async def test_invalidate__next_call_reads_what_changed(repository: SegmentRepository) -> None:
    # Given
    catalog = SegmentCatalog(repository, check_interval=3600)
    await catalog.create("free", "", FREE, {})
    assert set((await catalog.catalogue()).segments) == {"free"}
    # When: a write through this catalog (read-your-writes, whatever the interval)
    await catalog.create("pro", "", PRO, {})
    # Then
    assert set((await catalog.catalogue()).segments) == {"free", "pro"}
    await catalog.delete("free")
    assert set((await catalog.catalogue()).segments) == {"pro"}


async def test_observe_version__newer__stale_until_refreshed(
    repository: SegmentRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Given: a catalogue, then a change made elsewhere
    catalog = SegmentCatalog(repository, check_interval=3600)
    before = await catalog.catalogue()
    await SegmentRepository(sessions).create("free", "", FREE, {})
    version = await repository.catalogue_version()
    # When: a notification (or a profile read) tells the new version
    catalog.observe_version(version - 1, datetime.now(UTC))
    assert await catalog.catalogue() is before  # an older version changes nothing
    catalog.observe_version(version, datetime.now(UTC))
    # Then
    after = await catalog.catalogue()
    assert (after.version, set(after.segments)) == (version, {"free"})


async def test_refresh__min_version__reads_until_it_has_it(
    repository: SegmentRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    catalog = SegmentCatalog(repository, check_interval=3600)
    await catalog.catalogue()
    await SegmentRepository(sessions).create("free", "", FREE, {})
    version = await repository.catalogue_version()
    assert "free" in (await catalog.refresh(min_version=version)).segments


async def test_catalogue__concurrent_callers_after_a_write__one_read(
    repository: SegmentRepository, engine: AsyncEngine
) -> None:
    # Given: a stale catalogue
    catalog = SegmentCatalog(repository, check_interval=3600)
    await catalog.catalogue()
    await catalog.create("free", "", FREE, {})
    statements = _record_statements(engine)
    # When: many calls need it at once
    catalogues = await asyncio.gather(*(catalog.catalogue() for _ in range(20)))
    # Then: one refresh served them all (version, etags, the changed row)
    assert all(c is catalogues[0] for c in catalogues)
    assert len([s for s in statements if "segment_catalogue" in s]) == 1, statements


async def test_direct_sql_change__version_moves__on_both_stores(
    repository: SegmentRepository, engine: AsyncEngine
) -> None:
    # Given: a catalogue
    await repository.create("free", "", FREE, {})
    catalog = SegmentCatalog(repository, check_interval=0)
    before = await catalog.catalogue()
    # When: a segment is deleted straight in the database (the trigger bumps the version)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM segment_references"))
        await connection.execute(text("DELETE FROM segments WHERE name = 'free'"))
    await catalog.catalogue()
    await _settle(catalog)
    # Then
    assert (await catalog.catalogue()).segments == {}
    assert before.segments != {}
