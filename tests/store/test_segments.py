"""SegmentRepository on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.engine.rules import Condition, Group, Rule, SegmentReference
from segmentd.errors import (
    EtagMismatch,
    InvalidArgument,
    InvalidRule,
    SegmentAlreadyExists,
    SegmentInUse,
    SegmentNotFound,
)
from segmentd.store import segment_writes
from segmentd.store.segment_rows import check_references
from segmentd.store.segments import SegmentRepository

FREE: Rule = Condition("plan", "EQUALS", "free")
PAYING: Rule = Condition("plan", "IN", ["pro", "team"])


def ref(name: str) -> SegmentReference:
    return SegmentReference(name)


def any_of(*rules: Rule) -> Group:
    return Group("any", tuple(rules))


@pytest.fixture
def segments(sessions: async_sessionmaker[AsyncSession]) -> SegmentRepository:
    return SegmentRepository(sessions)


async def test_create__new_name__is_version_1_and_readable(segments: SegmentRepository) -> None:
    # When
    created = await segments.create("free-users", "on the free plan", FREE, {"team": "growth"})
    # Then
    assert (created.name, created.version, created.rule, created.labels) == (
        "free-users",
        1,
        FREE,
        {"team": "growth"},
    )
    assert re.fullmatch(r"[0-9a-f]{16}", created.etag)
    assert created.create_time == created.update_time
    assert created.create_time.tzinfo is not None
    assert await segments.get("free-users") == created
    assert await segments.get("free-users", 1) == created


@pytest.mark.parametrize("name", ["", "Free", "free_users", "a" * 64, "free users", "é"])
async def test_create__bad_name__invalid_argument(segments: SegmentRepository, name: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await segments.create(name, "", FREE, {})
    assert raised.value.field == "segment.name"


@pytest.mark.parametrize(
    "labels",
    [
        {"Team": "x"},
        {"1team": "x"},
        {"": "x"},
        {"t" * 64: "x"},
        {"team": "x" * 64},
        {"team": "a\nb"},
        {f"k{i}": "v" for i in range(65)},
    ],
)
async def test_create__bad_labels__invalid_argument(
    segments: SegmentRepository, labels: dict[str, str]
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await segments.create("s", "", FREE, labels)
    assert raised.value.field.startswith("segment.labels")


async def test_create__invalid_rule__names_the_rule_field(segments: SegmentRepository) -> None:
    rule = any_of(FREE, Condition("plan", "OPERATOR_UNSPECIFIED"))
    with pytest.raises(InvalidRule) as raised:
        await segments.create("s", "", rule, {})
    assert raised.value.field == "segment.rule.any.rules[1].condition.operator"


async def test_create__taken_name__already_exists(segments: SegmentRepository) -> None:
    await segments.create("s", "", FREE, {})
    with pytest.raises(SegmentAlreadyExists):
        await segments.create("s", "", PAYING, {})


async def test_create__dangling_reference__invalid_rule_naming_the_reference(
    segments: SegmentRepository,
) -> None:
    await segments.create("paying", "", PAYING, {})
    with pytest.raises(InvalidRule) as raised:
        await segments.create("s", "", any_of(ref("paying"), ref("ghost")), {})
    assert raised.value.field == "segment.rule.any.rules[1].segment.name"
    assert "ghost" in str(raised.value)
    with pytest.raises(SegmentNotFound):
        await segments.get("s")


async def test_create__self_reference__invalid_rule(segments: SegmentRepository) -> None:
    with pytest.raises(InvalidRule) as raised:
        await segments.create("s", "", any_of(FREE, ref("s")), {})
    assert raised.value.field == "segment.rule.any.rules[1].segment.name"


async def test_update__closing_a_cycle__invalid_rule_and_nothing_changes(segments: SegmentRepository) -> None:
    # Given a -> b -> c
    c = await segments.create("c", "", FREE, {})
    await segments.create("b", "", ref("c"), {})
    await segments.create("a", "", ref("b"), {})
    # When c -> a
    with pytest.raises(InvalidRule) as raised:
        await segments.update("c", etag=c.etag, rule=any_of(FREE, ref("a")))
    # Then
    assert raised.value.field == "segment.rule.any.rules[1].segment.name"
    assert "c -> a -> b -> c" in str(raised.value)
    assert await segments.get("c") == c


async def test_update__replaces_given_fields_only__new_version_and_etag(segments: SegmentRepository) -> None:
    v1 = await segments.create("s", "first", FREE, {"team": "growth"})
    # When
    v2 = await segments.update("s", etag=v1.etag, rule=PAYING)
    v3 = await segments.update("s", etag=v2.etag, description="third", labels={})
    # Then
    assert (v2.version, v2.description, v2.rule, v2.labels) == (2, "first", PAYING, {"team": "growth"})
    assert (v3.version, v3.description, v3.rule, v3.labels) == (3, "third", PAYING, {})
    assert len({v1.etag, v2.etag, v3.etag}) == 3
    assert v3.create_time == v1.create_time
    assert v3.update_time >= v2.update_time >= v1.update_time


async def test_get__versions__history_is_kept(segments: SegmentRepository) -> None:
    v1 = await segments.create("s", "first", FREE, {})
    v2 = await segments.update("s", etag=v1.etag, description="second")
    assert await segments.get("s", 1) == v1
    assert await segments.get("s", 2) == v2
    assert await segments.get("s") == v2
    assert await segments.get("s", 0) == v2
    assert await segments.get("s", -1) == v2
    with pytest.raises(SegmentNotFound):
        await segments.get("s", 3)
    with pytest.raises(SegmentNotFound):
        await segments.get("nope")


async def test_update__wrong_or_empty_etag__refused(segments: SegmentRepository) -> None:
    v1 = await segments.create("s", "", FREE, {})
    await segments.update("s", etag=v1.etag, description="x")
    with pytest.raises(EtagMismatch):
        await segments.update("s", etag=v1.etag, description="y")
    with pytest.raises(InvalidArgument) as raised:
        await segments.update("s", etag="", description="y")
    assert raised.value.field == "segment.etag"
    with pytest.raises(SegmentNotFound):
        await segments.update("nope", etag="abc", description="y")


async def test_update__concurrent_same_etag__exactly_one_wins(segments: SegmentRepository) -> None:
    v1 = await segments.create("s", "", FREE, {})
    # When
    results = await asyncio.gather(
        *(segments.update("s", etag=v1.etag, description=f"writer {i}") for i in range(5)),
        return_exceptions=True,
    )
    # Then
    winners = [result for result in results if not isinstance(result, BaseException)]
    losers = [result for result in results if isinstance(result, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(loser, EtagMismatch) for loser in losers), losers
    assert await segments.get("s") == winners[0]
    assert winners[0].version == 2
    with pytest.raises(SegmentNotFound):
        await segments.get("s", 3)


async def test_update__concurrent_opposite_references__no_cycle_is_stored(
    segments: SegmentRepository,
) -> None:
    a = await segments.create("a", "", FREE, {})
    b = await segments.create("b", "", FREE, {})
    # When a -> b and b -> a are written at the same time
    results = await asyncio.gather(
        segments.update("a", etag=a.etag, rule=ref("b")),
        segments.update("b", etag=b.etag, rule=ref("a")),
        return_exceptions=True,
    )
    # Then the second to take the lock sees the first's edge
    assert sorted(type(result).__name__ for result in results) == ["InvalidRule", "Segment"]


async def test_create__concurrent_same_name__one_wins(segments: SegmentRepository) -> None:
    results = await asyncio.gather(
        *(segments.create("s", str(i), FREE, {}) for i in range(4)), return_exceptions=True
    )
    assert sorted(type(result).__name__ for result in results) == ["Segment"] + ["SegmentAlreadyExists"] * 3


async def test_delete__referenced__segment_in_use_naming_referrers(segments: SegmentRepository) -> None:
    await segments.create("base", "", FREE, {})
    await segments.create("x", "", ref("base"), {})
    await segments.create("y", "", any_of(ref("base"), PAYING), {})
    # When
    with pytest.raises(SegmentInUse) as raised:
        await segments.delete("base")
    # Then
    assert raised.value.referrers == ("x", "y")
    assert "'x', 'y'" in str(raised.value)
    await segments.delete("x")
    await segments.delete("y")
    await segments.delete("base")
    with pytest.raises(SegmentNotFound):
        await segments.get("base")


async def test_delete__etag__checked_when_given(segments: SegmentRepository) -> None:
    v1 = await segments.create("s", "", FREE, {})
    v2 = await segments.update("s", etag=v1.etag, description="2")
    with pytest.raises(EtagMismatch):
        await segments.delete("s", etag=v1.etag)
    await segments.delete("s", etag=v2.etag)
    with pytest.raises(SegmentNotFound):
        await segments.delete("s")


async def test_delete__history_stays__recreation_continues_versions(segments: SegmentRepository) -> None:
    v1 = await segments.create("s", "", FREE, {})
    v2 = await segments.update("s", etag=v1.etag, description="2")
    await segments.delete("s")
    # Then
    assert await segments.get("s", 1) == v1
    assert await segments.get("s", 2) == v2
    again = await segments.create("s", "again", PAYING, {})
    assert again.version == 3
    assert await segments.get("s", 1) == v1


async def test_delete__referrer_deleted__its_references_go_too(segments: SegmentRepository) -> None:
    await segments.create("base", "", FREE, {})
    x = await segments.create("x", "", ref("base"), {})
    await segments.update("x", etag=x.etag, rule=PAYING)
    await segments.delete("base")  # x no longer references it


async def test_catalogue_changes__nothing_known__all_current_versions(segments: SegmentRepository) -> None:
    a = await segments.create("a", "", FREE, {})
    a2 = await segments.update("a", etag=a.etag, rule=PAYING)
    b = await segments.create("b", "", ref("a"), {})
    changes = await segments.catalogue_changes({})
    assert (changes.changed, changes.removed) == ({"a": a2, "b": b}, frozenset())
    assert changes.version == await segments.catalogue_version()


async def test_catalogue_changes__known_etags__only_what_changed(segments: SegmentRepository) -> None:
    a = await segments.create("a", "", FREE, {})
    b = await segments.create("b", "", FREE, {})
    b2 = await segments.update("b", etag=b.etag, rule=PAYING)
    changes = await segments.catalogue_changes({"a": a.etag, "b": b.etag, "gone": "0"})
    assert (changes.changed, changes.removed) == ({"b": b2}, frozenset({"gone"}))


async def test_catalogue_version__changes_on_every_write_only(
    segments: SegmentRepository, engine: AsyncEngine
) -> None:
    v0 = await segments.catalogue_version()
    s = await segments.create("s", "", FREE, {})
    v1 = await segments.catalogue_version()
    with pytest.raises(EtagMismatch):
        await segments.update("s", etag="stale", description="x")
    assert await segments.catalogue_version() == v1
    await segments.update("s", etag=s.etag, description="x")
    v2 = await segments.catalogue_version()
    await segments.delete("s")
    v3 = await segments.catalogue_version()
    assert v0 < v1 < v2 < v3
    # A change made behind the service's back counts too (trigger).
    await segments.create("t", "", FREE, {})
    v4 = await segments.catalogue_version()
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE segments SET description = 'by hand'"))
    assert await segments.catalogue_version() > v4


async def test_create__times_are_utc(segments: SegmentRepository) -> None:
    created = await segments.create("s", "", FREE, {})
    assert created.create_time.utcoffset() == UTC.utcoffset(None)
    assert (await segments.get("s")).create_time == created.create_time


async def _create_catalogue(segments: SegmentRepository, count: int) -> None:
    for index in range(count):
        labels = {"team": "growth" if index % 3 == 0 else "billing", "tier": str(index % 2)}
        await segments.create(f"s{index:02}", "", FREE, labels)


async def _all_pages(segments: SegmentRepository, page_size: int, labels: dict[str, str]) -> list[list[str]]:
    pages, token = [], ""
    while True:
        page = await segments.list(page_size, token, labels)
        pages.append([segment.name for segment in page.segments])
        token = page.next_page_token
        if not token:
            return pages


async def test_list__pages__every_segment_once_by_name(segments: SegmentRepository) -> None:
    await _create_catalogue(segments, 7)
    assert await _all_pages(segments, 3, {}) == [["s00", "s01", "s02"], ["s03", "s04", "s05"], ["s06"]]
    assert await _all_pages(segments, 7, {}) == [[f"s{i:02}" for i in range(7)]]
    assert await _all_pages(segments, 0, {}) == [[f"s{i:02}" for i in range(7)]]


async def test_list__label_filter__every_label_must_match_and_pages_stay_full(
    segments: SegmentRepository,
) -> None:
    await _create_catalogue(segments, 12)
    # growth: 0, 3, 6, 9; growth and tier 1: 3, 9
    assert await _all_pages(segments, 2, {"team": "growth"}) == [["s00", "s03"], ["s06", "s09"]]
    assert await _all_pages(segments, 1, {"team": "growth", "tier": "1"}) == [["s03"], ["s09"]]
    assert await _all_pages(segments, 5, {"team": "nobody"}) == [[]]
    assert await _all_pages(segments, 5, {"absent": ""}) == [[]]


async def test_list__current_versions(segments: SegmentRepository) -> None:
    v1 = await segments.create("s", "", FREE, {"team": "a"})
    v2 = await segments.update("s", etag=v1.etag, labels={"team": "b"})
    assert (await segments.list(10, "", {"team": "b"})).segments == (v2,)
    assert (await segments.list(10, "", {"team": "a"})).segments == ()


async def test_list__token_with_another_filter__invalid_argument(segments: SegmentRepository) -> None:
    await _create_catalogue(segments, 4)
    token = (await segments.list(1, "", {"tier": "0"})).next_page_token
    assert token
    with pytest.raises(InvalidArgument) as raised:
        await segments.list(1, token, {"tier": "1"})
    assert raised.value.field == "page_token"
    with pytest.raises(InvalidArgument):
        await segments.list(1, token, {})
    assert (await segments.list(1, token, {"tier": "0"})).segments[0].name == "s02"


@pytest.mark.parametrize(
    "token", ["garbage!", "e30", "bm90IGpzb24", "eyJ2IjoyLCJhZnRlciI6IiIsImxhYmVscyI6e319"]
)
async def test_list__foreign_token__invalid_argument(segments: SegmentRepository, token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await segments.list(1, token, {})
    assert raised.value.field == "page_token"


async def test_list__negative_page_size__invalid_argument(segments: SegmentRepository) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await segments.list(-1, "", {})
    assert raised.value.field == "page_size"


async def test_list__bad_label_filter__invalid_argument(segments: SegmentRepository) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await segments.list(1, "", {"Bad Key": "x"})
    assert raised.value.field == "labels"


async def test_update__row_changed_behind_the_lock__compare_and_set_refuses(
    segments: SegmentRepository, engine: AsyncEngine, dialect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if dialect == "sqlite":
        pytest.skip("SQLite's write lock keeps every other writer out during the update")
    v1 = await segments.create("s", "", FREE, {})
    checks = check_references

    async def check_then_change_behind_our_back(session: AsyncSession, name: str, rule: Rule) -> None:
        await checks(session, name, rule)
        async with engine.begin() as other:  # another connection, not holding the advisory lock
            await other.execute(text("UPDATE segments SET etag = 'sneaky' WHERE name = 's'"))

    monkeypatch.setattr(segment_writes, "check_references", check_then_change_behind_our_back)
    # When
    with pytest.raises(EtagMismatch):
        await segments.update("s", etag=v1.etag, description="lost")
    # Then nothing of the update was written
    monkeypatch.undo()
    current = await segments.get("s")
    assert (current.etag, current.version, current.description) == ("sneaky", 1, "")
    with pytest.raises(SegmentNotFound):
        await segments.get("s", 2)
