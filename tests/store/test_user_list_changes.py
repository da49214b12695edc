"""UserListRepository.change_members on both stores: the bulk paths and the batch id check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument
from segmentd.store.checks import check_user_id, check_user_ids
from segmentd.store.user_lists import UserListRepository
from tests.store.list_members import batches as _batches
from tests.store.list_members import members as _members


@pytest.fixture
async def repository(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> UserListRepository:
    repository = UserListRepository(engine, sessions)
    await repository.create("beta", "")
    return repository


@pytest.mark.parametrize("kind", ["add", "replace"])
async def test_change_members__empty_list_repeated_ids__each_id_once(repository, engine, kind):
    # Given an empty list
    # When ids repeated inside and across messages are loaded
    change = await repository.change_members("beta", kind, _batches(["b", "a", "b"], ["c", "a"], []))

    # Then each is a member once, and counted once
    assert change.member_count == 3
    assert await _members(engine, "beta") == ["a", "b", "c"]
    assert change.changed == {"a", "b", "c"}


async def test_change_members__rows_deleted_in_sql__counted_from_the_rows(repository, engine):
    # Given a list whose member rows were deleted straight in SQL (its stored count is stale)
    await repository.change_members("beta", "add", _batches(["a", "b"]))
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM user_list_members WHERE list_name = 'beta'"))

    # When members are added
    change = await repository.change_members("beta", "add", _batches(["c", "d", "e"]))

    # Then the count is that of the rows
    assert change.member_count == 3
    assert (await repository.get("beta")).member_count == 3


async def test_change_members__replace_overlapping__only_the_difference_moves(repository, engine):
    # Given a list of many members
    await repository.change_members("beta", "add", _batches([f"u{n:04d}" for n in range(2000)]))

    # When it is replaced by one that keeps most of them
    kept = [f"u{n:04d}" for n in range(10, 2000)]
    change = await repository.change_members("beta", "replace", _batches(kept[:500], kept[500:], ["new"]))

    # Then exactly the new set remains, and the changed users are those that moved
    assert change.member_count == len(kept) + 1
    assert await _members(engine, "beta") == sorted([*kept, "new"])
    assert {f"u{n:04d}" for n in range(10)} | {"new"} <= change.changed


async def test_change_members__remove_from_an_empty_list__nothing_removed(repository):
    change = await repository.change_members("beta", "remove", _batches(["a"]))

    assert change.member_count == 0


@pytest.mark.parametrize(
    ("user_ids", "bad"),
    [
        (["a", ""], 1),
        (["a", "b", "c\x85"], 2),  # C1 control character
        (["\x7f", "a"], 0),
        (["a", "x" * 257], 1),
        (["a", "\ud800"], 1),  # a lone surrogate: not UTF-8
        (["a", None], 1),
    ],
)
def test_check_user_ids__bad_id__named_by_its_position_in_the_stream(user_ids, bad):
    with pytest.raises(InvalidArgument, match=rf"^user_ids\[{40 + bad}\]"):
        check_user_ids(user_ids, "user_ids", 40)


@given(st.lists(st.text(max_size=300), max_size=5))
def test_check_user_ids__any_batch__agrees_with_checking_each_id(user_ids):
    def one_by_one() -> str | None:
        for index, user_id in enumerate(user_ids):
            try:
                check_user_id(user_id, f"user_ids[{index}]")
            except InvalidArgument as error:
                return str(error)
        return None

    try:
        check_user_ids(user_ids, "user_ids")
        batched = None
    except InvalidArgument as error:
        batched = str(error)
    assert batched == one_by_one()
