"""ProfileRepository: upsert semantics, validation, get and delete, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument, UserNotFound
from segmentd.store.profiles import ProfileRepository, merge_traits
from segmentd.store.records import Event

STORED = {"plan": "free", "mrr": 10, "company": {"size": 50, "country": "FR"}, "tags": ["a", "b"]}

MERGE_CASES = [
    pytest.param({"plan": "pro"}, {**STORED, "plan": "pro"}, id="top-level-key-overwritten"),
    pytest.param({"nps": 9}, {**STORED, "nps": 9}, id="new-key-added"),
    pytest.param({"mrr": None}, {k: v for k, v in STORED.items() if k != "mrr"}, id="null-deletes-key"),
    pytest.param({"ghost": None}, STORED, id="null-on-absent-key-is-a-no-op"),
    pytest.param(
        {"company": {"size": 60}}, {**STORED, "company": {"size": 60}}, id="nested-object-replaced-whole"
    ),
    pytest.param(
        {"company": {"size": None, "x": 1}},
        {**STORED, "company": {"size": None, "x": 1}},
        id="nested-null-kept",
    ),
    pytest.param({"tags": ["c"]}, {**STORED, "tags": ["c"]}, id="list-replaced"),
    pytest.param({}, STORED, id="empty-merge-keeps-everything"),
]


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    return ProfileRepository(sessions)


async def test_upsert__new_user__created(profiles: ProfileRepository) -> None:
    # When
    created = await profiles.upsert("u1", {"plan": "free", "gone": None})
    # Then
    assert created.traits == {"plan": "free"}
    assert created.create_time == created.update_time
    assert created.create_time.tzinfo is not None
    assert await profiles.get("u1") == created


@pytest.mark.parametrize(("sent", "expected"), MERGE_CASES)
async def test_upsert__merge__top_level_semantics(
    profiles: ProfileRepository, sent: dict[str, Any], expected: dict[str, Any]
) -> None:
    # Given
    before = await profiles.upsert("u1", STORED)
    # When
    after = await profiles.upsert("u1", sent)
    # Then
    assert after.traits == expected == merge_traits(STORED, sent, replace=False)
    assert (await profiles.get("u1")).traits == expected
    assert after.create_time == before.create_time
    assert after.update_time >= before.update_time


async def test_upsert__replace__exactly_the_sent_traits_minus_nulls(profiles: ProfileRepository) -> None:
    before = await profiles.upsert("u1", STORED)
    # When
    after = await profiles.upsert("u1", {"plan": "pro", "mrr": None, "company": {"a": None}}, replace=True)
    # Then
    assert after.traits == {"plan": "pro", "company": {"a": None}}
    assert (await profiles.get("u1")).traits == after.traits
    assert after.create_time == before.create_time


async def test_upsert__replace_new_user__created(profiles: ProfileRepository) -> None:
    created = await profiles.upsert("u1", {"plan": "pro", "x": None}, replace=True)
    assert (await profiles.get("u1")).traits == created.traits == {"plan": "pro"}


async def test_upsert__json_types_round_trip(profiles: ProfileRepository) -> None:
    traits = {
        "int": 2**62,
        "float": 0.1,
        "neg": -3.5e-7,
        "bool": True,
        "str": 'quote " backslash \\ tab \t é 😀',
        "list": [1, "a", None, {"k": [True]}],
        "obj": {"é": {"deeper": 1}},
        "empty": {},
    }
    await profiles.upsert("u1", traits)
    assert (await profiles.get("u1")).traits == traits


async def test_upsert__concurrent_merges__no_key_lost(profiles: ProfileRepository) -> None:
    await profiles.upsert("u1", {"base": 0})
    # When
    await asyncio.gather(*(profiles.upsert("u1", {f"k{i}": i}) for i in range(20)))
    # Then
    assert (await profiles.get("u1")).traits == {"base": 0} | {f"k{i}": i for i in range(20)}


async def test_upsert__concurrent_first_writes__no_key_lost(profiles: ProfileRepository) -> None:
    await asyncio.gather(*(profiles.upsert("fresh", {f"k{i}": i}) for i in range(10)))
    assert (await profiles.get("fresh")).traits == {f"k{i}": i for i in range(10)}


@pytest.mark.parametrize("user_id", ["", "x" * 257, "a\nb", "nul\x00", "tab\t", "\ud800"])
async def test_upsert__bad_user_id__invalid_argument(profiles: ProfileRepository, user_id: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await profiles.upsert(user_id, {})
    assert raised.value.field == "profile.user_id"


@pytest.mark.parametrize("user_id", ["x" * 256, "ümlaut", "user@example.com", "with space", "😀"])
async def test_upsert__unusual_but_valid_user_id__stored(profiles: ProfileRepository, user_id: str) -> None:
    await profiles.upsert(user_id, {"a": 1})
    assert (await profiles.get(user_id)).user_id == user_id


def _nested(depth: int) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    for _ in range(depth - 1):
        traits = {"n": traits}
    return traits


@pytest.mark.parametrize(
    ("traits", "field"),
    [
        pytest.param([1, 2], "profile.traits", id="not-an-object"),
        pytest.param({"x": float("nan")}, "profile.traits.x", id="nan"),
        pytest.param({"x": [float("inf")]}, "profile.traits.x[0]", id="infinity-in-list"),
        pytest.param({"x": 2**64}, "profile.traits.x", id="int-over-64-bits"),
        pytest.param({"x": "a\x00b"}, "profile.traits.x", id="nul-in-string"),
        pytest.param({'a"b': 1}, "profile.traits", id="quote-in-key"),
        pytest.param({"a\\b": 1}, "profile.traits", id="backslash-in-key"),
        pytest.param({"x": {"a\nb": 1}}, "profile.traits.x", id="control-in-nested-key"),
        pytest.param({1: "x"}, "profile.traits", id="non-string-key"),
        pytest.param({"x": datetime.now(UTC)}, "profile.traits.x", id="not-json"),
        pytest.param(_nested(17), "profile.traits" + ".n" * 16, id="too-deep"),
        pytest.param({"x": "y" * (64 * 1024)}, "profile.traits", id="too-big"),
    ],
)
async def test_upsert__bad_traits__invalid_argument_naming_the_field(
    profiles: ProfileRepository, traits: Any, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await profiles.upsert("u1", traits)
    assert raised.value.field == field
    with pytest.raises(UserNotFound):
        await profiles.get("u1")


async def test_upsert__depth_16__accepted(profiles: ProfileRepository) -> None:
    await profiles.upsert("u1", _nested(16))
    assert (await profiles.get("u1")).traits == _nested(16)


async def test_upsert__merges_growing_past_64_kib__refused_and_rolled_back(
    profiles: ProfileRepository,
) -> None:
    chunk = "y" * (30 * 1024)
    await profiles.upsert("u1", {"a": chunk})
    before = await profiles.upsert("u1", {"b": chunk})
    # When
    with pytest.raises(InvalidArgument) as raised:
        await profiles.upsert("u1", {"c": chunk})
    # Then
    assert raised.value.field == "profile.traits"
    assert await profiles.get("u1") == before


async def test_get__unknown_user__user_not_found(profiles: ProfileRepository) -> None:
    with pytest.raises(UserNotFound):
        await profiles.get("nobody")


async def test_delete__erases_profile_and_events(profiles: ProfileRepository) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    await profiles.upsert("u1", {"plan": "free"})
    await profiles.upsert("u2", {"plan": "free"})
    await profiles.record_events([Event("u1", "login", now, 3), Event("u2", "login", now, 1)])
    # When
    await profiles.delete("u1")
    # Then
    with pytest.raises(UserNotFound):
        await profiles.get("u1")
    await profiles.upsert("u1", {})  # a new profile with the same id starts without events
    snapshot = await profiles.get_with_event_counts("u1", [("login", 0)], now)
    assert snapshot.event_counts == {("login", 0): 0}
    snapshot = await profiles.get_with_event_counts("u2", [("login", 0)], now)
    assert snapshot.event_counts == {("login", 0): 1}


async def test_delete__unknown_user__user_not_found(profiles: ProfileRepository) -> None:
    with pytest.raises(UserNotFound):
        await profiles.delete("nobody")
