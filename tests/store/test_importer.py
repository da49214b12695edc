"""BulkImporter: staging, one upsert with the semantics of ProfileRepository.upsert, all or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument, UserNotFound
from segmentd.importer import check_profile
from segmentd.store.checks import MAX_TRAITS_BYTES
from segmentd.store.import_sql import (
    POSTGRESQL_DDL,
    POSTGRESQL_STAGING_INDEX,
    STAGING,
    compact_json,
    postgresql_upsert,
)
from segmentd.store.importer import BulkImporter, BulkImportResult, RejectedRow, RowsRejected, StagedProfile
from segmentd.store.models import ProfileRow
from segmentd.store.profiles import ProfileRepository, merge_traits
from tests.store.test_profiles import MERGE_CASES, STORED


@pytest.fixture
def importer(engine: AsyncEngine) -> BulkImporter:
    return BulkImporter(engine)


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    return ProfileRepository(sessions)


async def _batches(*batches: Sequence[StagedProfile]) -> AsyncIterator[Sequence[StagedProfile]]:
    for batch in batches:
        yield batch


def _staged(position: int, user_id: str, traits: dict[str, Any]) -> StagedProfile:
    """A profile as the service stages it: checked, and measured without its null keys."""
    return StagedProfile(position, user_id, *check_profile(user_id, traits))


def _numbered(*profiles: tuple[str, dict[str, Any]], start: int = 1) -> list[StagedProfile]:
    return [_staged(start + offset, user_id, traits) for offset, (user_id, traits) in enumerate(profiles)]


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(ProfileRow))).scalar_one())


@pytest.mark.parametrize(("sent", "expected"), MERGE_CASES)
async def test_import__merge__same_result_as_upsert(
    importer: BulkImporter, profiles: ProfileRepository, sent: dict[str, Any], expected: dict[str, Any]
) -> None:
    # Given
    before = await profiles.upsert("u1", STORED)
    # When
    result = await importer.import_profiles(_batches(_numbered(("u1", sent))), replace=False)
    # Then
    after = await profiles.get("u1")
    assert result.imported == 1
    assert after.traits == expected == merge_traits(STORED, sent, replace=False)
    assert after.create_time == before.create_time
    assert after.update_time >= before.update_time


async def test_import__replace__sent_traits_minus_nulls(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given
    await profiles.upsert("u1", STORED)
    # When
    await importer.import_profiles(
        _batches(_numbered(("u1", {"plan": "pro", "mrr": None, "company": {"size": None}}))), replace=True
    )
    # Then
    assert (await profiles.get("u1")).traits == {"plan": "pro", "company": {"size": None}}


@pytest.mark.parametrize("replace", [False, True])
async def test_import__new_users__created_without_null_keys(
    importer: BulkImporter, profiles: ProfileRepository, replace: bool
) -> None:
    # When
    result = await importer.import_profiles(
        _batches(_numbered(("a", {"plan": "free", "gone": None}), ("b", {}))), replace=replace
    )
    # Then
    assert result.imported == 2
    created = await profiles.get("a")
    assert created.traits == {"plan": "free"}
    assert created.create_time == created.update_time
    assert (await profiles.get("b")).traits == {}


async def test_import__json_types__round_trip(importer: BulkImporter, profiles: ProfileRepository) -> None:
    # Given
    traits = {"s": "école ☃", "i": 7, "f": 2.5, "t": True, "n": {"l": [1, "x", None, {"k": False}]}, "e": ""}
    # When
    await importer.import_profiles(_batches(_numbered(("u1", traits))), replace=False)
    # Then
    assert (await profiles.get("u1")).traits == traits


async def test_import__duplicate_user_ids__last_one_wins_then_merged(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given
    await profiles.upsert("u1", {"kept": 1, "plan": "free"})
    # When: the earlier profiles of u1 are not merged with the last one
    result = await importer.import_profiles(
        _batches(
            _numbered(("u1", {"first": 1}), ("u2", {"a": 1})),
            _numbered(("u1", {"plan": "pro", "kept": None}), ("u1", {"plan": "team"}), start=3),
        ),
        replace=False,
    )
    # Then
    assert result.imported == 2
    assert (await profiles.get("u1")).traits == {"kept": 1, "plan": "team"}
    assert (await profiles.get("u2")).traits == {"a": 1}


async def test_import__stream_fails__nothing_stored_and_next_import_works(
    importer: BulkImporter, profiles: ProfileRepository, engine: AsyncEngine
) -> None:
    # Given
    async def failing() -> AsyncIterator[Sequence[StagedProfile]]:
        yield _numbered(("a", {"x": 1}))
        raise RuntimeError("client went away")

    # When
    with pytest.raises(RuntimeError, match="client went away"):
        await importer.import_profiles(failing(), replace=False)
    # Then
    assert await _count(engine) == 0
    result = await importer.import_profiles(_batches(_numbered(("b", {"y": 2}))), replace=False)
    assert result.imported == 1
    with pytest.raises(UserNotFound):
        await profiles.get("a")


async def test_import__empty_stream__nothing_to_do(importer: BulkImporter, engine: AsyncEngine) -> None:
    # When
    result = await importer.import_profiles(_batches(), replace=False)
    # Then
    assert result.imported == 0
    assert await _count(engine) == 0


async def test_import__merged_traits_over_limit__refused_and_nothing_stored(
    importer: BulkImporter, profiles: ProfileRepository, engine: AsyncEngine
) -> None:
    # Given: each half fits, together they do not
    half = "y" * (MAX_TRAITS_BYTES // 2)
    await profiles.upsert("big", {"a": half})
    # When
    with pytest.raises(RowsRejected) as raised:
        await importer.import_profiles(
            _batches(_numbered(("ok", {"x": 1}), ("big", {"b": half}), ("ok2", {}))), replace=False
        )
    # Then
    assert raised.value.rows == (RejectedRow(2, "traits", raised.value.rows[0].message),)
    assert "bytes as JSON" in raised.value.rows[0].message
    assert await _count(engine) == 1
    assert (await profiles.get("big")).traits == {"a": half}


async def test_import__merged_traits_over_limit_with_skip__others_stored(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given
    half = "y" * (MAX_TRAITS_BYTES // 2)
    await profiles.upsert("big", {"a": half})
    # When
    result = await importer.import_profiles(
        _batches(_numbered(("big", {"c": 1}), ("ok", {"x": 1}), ("big", {"b": half}))),
        replace=False,
        skip_rejected=True,
    )
    # Then: the rejected user's import is left out whole; the stored profile is untouched
    assert result.imported == 1
    assert [row.position for row in result.rejected] == [3]
    assert (await profiles.get("big")).traits == {"a": half}
    assert (await profiles.get("ok")).traits == {"x": 1}


async def test_import__merged_traits_exactly_at_the_limit__stored(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given a stored profile whose merge comes out at the limit as compact JSON, and over it in
    # PostgreSQL's text form (which spaces its separators)
    stored = {"a": "x" * (MAX_TRAITS_BYTES - len(compact_json({"a": "", "b": 1})))}
    merged = {**stored, "b": 1}
    assert len(compact_json(merged).encode()) == MAX_TRAITS_BYTES
    await profiles.upsert("edge", stored)
    # When it is merged among others that fit easily
    result = await importer.import_profiles(
        _batches(_numbered(("ok", {"x": 1}), ("edge", {"b": 1}))), replace=False
    )
    # Then all are stored: the limit is that of the compact JSON
    assert result == BulkImportResult(2)
    assert (await profiles.get("edge")).traits == merged


async def test_import__merges_past_the_guard_with_skip__the_fitting_one_stored_the_other_left_out(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given one stored profile whose merge fits exactly, and one whose merge is over the limit
    edge = {"a": "x" * (MAX_TRAITS_BYTES - len(compact_json({"a": "", "b": 1})))}
    half = {"a": "y" * (MAX_TRAITS_BYTES // 2)}
    await profiles.upsert("edge", edge)
    await profiles.upsert("big", half)
    # When both are merged among new users, one large, with a null key, leaving out what is too large
    large = {"x": "n" * (MAX_TRAITS_BYTES // 2), "gone": None}
    result = await importer.import_profiles(
        _batches(
            _numbered(("edge", {"b": 1}), ("new", {"x": 1}), ("big", {"b": half["a"]}), ("new-large", large))
        ),
        replace=False,
        skip_rejected=True,
    )
    # Then the fitting merge and the new users are stored, once each, the other left out and unchanged
    assert (result.imported, [row.position for row in result.rejected]) == (3, [3])
    assert (await profiles.get("edge")).traits == {**edge, "b": 1}
    assert (await profiles.get("new")).traits == {"x": 1}
    new_large = await profiles.get("new-large")
    assert (new_large.traits, new_large.update_time) == ({"x": large["x"]}, new_large.create_time)
    assert (await profiles.get("big")).traits == half


async def test_import__merge_over_limit_only_as_compact_json__refused(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given a stored profile of large doubles, which Python writes in exponent form (22 bytes
    # each) and PostgreSQL as digits (17): the merge below is over the limit as compact JSON
    # (what UpsertProfile measures) and well within it in PostgreSQL's text form
    large = 1.2345678901234568e16
    stored, sent = {"a": [large] * 2000}, {"b": [large] * 1000}
    await profiles.upsert("doubles", stored)
    with pytest.raises(InvalidArgument):
        await profiles.upsert("doubles", sent)
    # When the same merge is imported
    with pytest.raises(RowsRejected):
        await importer.import_profiles(_batches(_numbered(("doubles", sent))), replace=False)
    # Then it is refused too, and the profile is as it was
    assert (await profiles.get("doubles")).traits == stored


async def test_import__replace_with_large_stored_traits__not_refused(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given
    half = "y" * (MAX_TRAITS_BYTES // 2)
    await profiles.upsert("big", {"a": half})
    # When
    result = await importer.import_profiles(_batches(_numbered(("big", {"b": half}))), replace=True)
    # Then
    assert result.imported == 1
    assert (await profiles.get("big")).traits == {"b": half}


async def test_import__other_writers__not_blocked_while_the_stream_arrives(
    importer: BulkImporter, profiles: ProfileRepository
) -> None:
    # Given
    halfway = asyncio.Event()
    resume = asyncio.Event()

    async def slow() -> AsyncIterator[Sequence[StagedProfile]]:
        yield _numbered(("a", {"x": 1}))
        halfway.set()
        await resume.wait()
        yield _numbered(("b", {"x": 2}), start=2)

    task = asyncio.create_task(importer.import_profiles(slow(), replace=False))
    await halfway.wait()
    # When
    written = await asyncio.wait_for(profiles.upsert("other", {"y": 1}), timeout=3)
    resume.set()
    # Then
    assert written.traits == {"y": 1}
    assert (await task).imported == 2


async def test_import__10k_rows_with_duplicates__one_row_per_user(
    importer: BulkImporter, profiles: ProfileRepository, engine: AsyncEngine
) -> None:
    # Given: 10,000 profiles in batches of 1,000; every user 0..999 appears twice
    rows = [
        _staged(index + 1, f"user-{index % 9_000:05d}", {"n": index, "plan": "free"})
        for index in range(10_000)
    ]
    batches = [rows[start : start + 1_000] for start in range(0, len(rows), 1_000)]
    # When
    result = await importer.import_profiles(_batches(*batches), replace=False)
    # Then
    assert result.imported == 9_000
    assert await _count(engine) == 9_000
    assert (await profiles.get("user-00005")).traits == {"n": 9_005, "plan": "free"}
    assert (await profiles.get("user-08999")).traits == {"n": 8_999, "plan": "free"}


async def test_import__staging_table__gone_afterwards(
    importer: BulkImporter, engine: AsyncEngine, dialect: str
) -> None:
    # When
    await importer.import_profiles(_batches(_numbered(("a", {}))), replace=False)
    # Then
    query = (
        "SELECT count(*) FROM pg_tables WHERE tablename = 'segmentd_import_staging'"
        if dialect == "postgresql"
        else "SELECT count(*) FROM sqlite_temp_master WHERE name = 'segmentd_import_staging'"
    )
    async with engine.connect() as connection:
        assert (await connection.execute(text(query))).scalar_one() == 0


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_merge_upsert__each_updated_users_staged_row__found_through_the_index(
    importer: BulkImporter, engine: AsyncEngine
) -> None:
    # Given stored users, and a merge of each staged and indexed as an import stages it
    users = [(f"u{n:04d}", {"n": n}) for n in range(2000)]
    await importer.import_profiles(_batches(_numbered(*users)), replace=True)
    async with engine.connect() as connection, connection.begin():
        await connection.execute(text(POSTGRESQL_DDL))
        await connection.execute(
            insert(STAGING),
            [
                {"seq": n, "user_id": user, "traits": {"m": n}, "deleted": []}
                for n, (user, _) in enumerate(users)
            ],
        )
        for statement in POSTGRESQL_STAGING_INDEX:
            await connection.execute(text(statement))

        # When PostgreSQL plans the upsert, guarded or not
        plans = []
        for guarded in (False, True):
            upsert = postgresql_upsert(replace=False, guarded=guarded)
            sql = str(upsert.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
            plans.append("\n".join((await connection.exec_driver_sql(f"EXPLAIN {sql}")).scalars()))
        await connection.rollback()

    # Then each updated user's deleted keys are read through the staging index: a scan of the
    # staging table per user made a merge onto stored profiles quadratic (20,000 took 29 s)
    for plan in plans:
        assert "Index Scan Backward using segmentd_import_staging_user_id_seq_idx" in plan, plan
