"""ProfileImporter (segmentd.importer): checks, all or nothing, reports, cache; on both databases.

Lives beside the store tests for their database fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument
from segmentd.importer import (
    MAX_REPORTED_ERRORS,
    ImportBatch,
    ImportReport,
    IncomingProfile,
    ProfileImporter,
    RejectedProfile,
)
from segmentd.profiles import ProfileCache
from segmentd.store.checks import MAX_TRAITS_BYTES
from segmentd.store.database import create_engine
from segmentd.store.models import ProfileRow
from segmentd.store.profiles import ProfileRepository


@pytest.fixture
def cache() -> ProfileCache:
    return ProfileCache(100, 60)


@pytest.fixture
def importer(engine: AsyncEngine, cache: ProfileCache) -> ProfileImporter:
    return ProfileImporter(engine, cache)


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    return ProfileRepository(sessions)


async def _stream(*batches: list[IncomingProfile], **options: bool) -> AsyncIterator[ImportBatch]:
    for number, profiles in enumerate(batches):
        yield ImportBatch(profiles, **(options if number == 0 else {}))


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(ProfileRow))).scalar_one())


def _profiles(count: int, traits: dict[str, Any] | None = None) -> list[IncomingProfile]:
    return [(f"user-{index}", traits or {"n": index}) for index in range(count)]


async def test_import_stream__all_valid__stored_and_cache_cleared(
    importer: ProfileImporter, profiles: ProfileRepository, cache: ProfileCache
) -> None:
    # Given
    await profiles.upsert("a", {"plan": "free", "mrr": 5})
    generation = cache.generation
    # When
    report = await importer.import_stream(_stream([("a", {"plan": "pro"}), ("b", {"x": 1})], [("c", {})]))
    # Then
    assert report == ImportReport(imported=3, skipped=0, errors=())
    assert (await profiles.get("a")).traits == {"plan": "pro", "mrr": 5}
    assert cache.generation > generation


async def test_import_stream__replace_from_first_message_only(
    importer: ProfileImporter, profiles: ProfileRepository
) -> None:
    # Given
    await profiles.upsert("a", {"plan": "free", "mrr": 5})
    await profiles.upsert("b", {"plan": "free", "mrr": 5})

    async def stream() -> AsyncIterator[ImportBatch]:
        yield ImportBatch([("a", {"plan": "pro"})], replace=True)
        yield ImportBatch([("b", {"plan": "pro"})], replace=False)

    # When
    await importer.import_stream(stream())
    # Then
    assert (await profiles.get("a")).traits == {"plan": "pro"}
    assert (await profiles.get("b")).traits == {"plan": "pro"}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param(("", {}), "profiles[2].user_id", id="empty-user-id"),
        pytest.param(("u" * 257, {}), "profiles[2].user_id", id="long-user-id"),
        pytest.param(("ok", {"x": "a\x00b"}), "profiles[2].traits.x", id="nul-in-trait"),
        pytest.param(("ok", {"x": "y" * MAX_TRAITS_BYTES}), "profiles[2].traits", id="too-large"),
        pytest.param(
            ("ok", InvalidArgument("traits", "numbers must be finite")), "profiles[2].traits", id="nan"
        ),
    ],
)
async def test_import_stream__invalid_profile__nothing_stored(
    importer: ProfileImporter, engine: AsyncEngine, bad: IncomingProfile, field: str
) -> None:
    # When
    with pytest.raises(InvalidArgument) as raised:
        await importer.import_stream(_stream([("a", {}), bad], _profiles(3)))
    # Then
    assert raised.value.field == field
    assert "(1 of 5 profiles invalid; nothing was imported)" in raised.value.message
    assert await _count(engine) == 0


async def test_import_stream__invalid_after_many_batches__rolled_back_and_all_counted(
    importer: ProfileImporter, engine: AsyncEngine
) -> None:
    # Given: 3,000 valid profiles reach the staging table before the first invalid one
    batches: list[list[IncomingProfile]] = [_profiles(3_000), [("", {})], _profiles(10), [("", {}), ("", {})]]
    # When
    with pytest.raises(InvalidArgument) as raised:
        await importer.import_stream(_stream(*batches))
    # Then
    assert str(raised.value).startswith("profiles[3001].user_id: ")
    assert "(3 of 3013 profiles invalid" in str(raised.value)
    assert await _count(engine) == 0


async def test_import_stream__invalid_first__no_database_touched(cache: ProfileCache) -> None:
    # Given: a store that cannot be reached
    engine = create_engine("postgresql://nobody@127.0.0.1:9/none")
    try:
        # When
        with pytest.raises(InvalidArgument) as raised:
            await ProfileImporter(engine, cache).import_stream(_stream([("", {})], _profiles(2)))
    finally:
        await engine.dispose()
    # Then
    assert raised.value.field == "profiles[1].user_id"


async def test_import_stream__skip_invalid__valid_ones_stored_and_reported(
    importer: ProfileImporter, profiles: ProfileRepository
) -> None:
    # When
    report = await importer.import_stream(
        _stream([("a", {"x": 1}), ("", {})], [("b", {"x": "\x00"}), ("c", {})], skip_invalid=True)
    )
    # Then
    assert report.imported == 2
    assert report.skipped == 2
    assert [(error.index, error.field) for error in report.errors] == [(2, "user_id"), (3, "traits.x")]
    assert (await profiles.get("c")).traits == {}


async def test_import_stream__skip_invalid_many__errors_capped_all_counted(importer: ProfileImporter) -> None:
    # When
    invalid: list[IncomingProfile] = [("", {})] * 1_500
    report = await importer.import_stream(_stream(invalid, _profiles(2), skip_invalid=True))
    # Then
    assert report.imported == 2
    assert report.skipped == 1_500
    assert len(report.errors) == MAX_REPORTED_ERRORS
    assert report.errors[-1].index == MAX_REPORTED_ERRORS


async def test_import_stream__merged_traits_too_large__refused_naming_the_profile(
    importer: ProfileImporter, profiles: ProfileRepository
) -> None:
    # Given
    half = "y" * (MAX_TRAITS_BYTES // 2)
    await profiles.upsert("big", {"a": half})
    # When
    with pytest.raises(InvalidArgument) as raised:
        await importer.import_stream(_stream([("ok", {}), ("big", {"b": half})]))
    # Then
    assert raised.value.field == "profiles[2].traits"
    assert (await profiles.get("big")).traits == {"a": half}


async def test_import_stream__merged_traits_too_large_with_skip__reported_in_stream_order(
    importer: ProfileImporter, profiles: ProfileRepository
) -> None:
    # Given
    half = "y" * (MAX_TRAITS_BYTES // 2)
    await profiles.upsert("big", {"a": half})
    # When
    report = await importer.import_stream(
        _stream([("big", {"b": half}), ("ok", {}), ("", {})], skip_invalid=True)
    )
    # Then
    assert report.imported == 1
    assert report.skipped == 2
    assert [error.index for error in report.errors] == [1, 3]
    assert report.errors[0] == RejectedProfile(1, "traits", report.errors[0].message)


async def test_import_stream__empty__nothing_to_do(importer: ProfileImporter) -> None:
    # When
    report = await importer.import_stream(_stream())
    # Then
    assert report == ImportReport(0, 0, ())


async def test_import_stream__stream_breaks__nothing_stored_and_cache_cleared(
    importer: ProfileImporter, engine: AsyncEngine, cache: ProfileCache
) -> None:
    # Given
    generation = cache.generation

    async def broken() -> AsyncIterator[ImportBatch]:
        yield ImportBatch(_profiles(1_500))
        raise ConnectionResetError("client went away")

    # When
    with pytest.raises(ConnectionResetError):
        await importer.import_stream(broken())
    # Then
    assert await _count(engine) == 0
    assert cache.generation > generation
