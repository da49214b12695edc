"""Events (per-day counts, windows) and population percentiles, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.engine.percentiles import threshold_from_values
from segmentd.engine.times import event_window_start
from segmentd.engine.traits import lookup
from segmentd.errors import InvalidArgument, UserNotFound
from segmentd.store.models import EventCountRow
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event
from segmentd.store.retention import EventRetention
from tests.statements import recorded_statements

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    # Every day kept: these tests record events at fixed dates (retention: test_retention.py).
    return ProfileRepository(sessions, EventRetention(days=0))


async def _stored_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str, date], int]:
    async with sessions() as session:
        rows = (await session.scalars(select(EventCountRow))).all()
    return {(row.user_id, row.name, row.day): row.count for row in rows}


async def test_record_events__same_day__counts_are_added(
    profiles: ProfileRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await profiles.upsert("u1", {})
    await profiles.upsert("u2", {})
    # When
    recorded = await profiles.record_events(
        [
            Event("u1", "login", NOW, 2),
            Event("u1", "login", NOW.replace(hour=23, minute=59), 0),  # 0 means 1
            Event("u1", "login", NOW - timedelta(days=1), 5),
            Event("u2", "login", NOW, 1),
            Event("u1", "invite_sent", NOW, 7),
        ]
    )
    await profiles.record_events([Event("u1", "login", NOW.replace(hour=0), 10)])
    # Then
    assert recorded == 5
    assert await _stored_counts(sessions) == {
        ("u1", "login", date(2026, 3, 10)): 13,
        ("u1", "login", date(2026, 3, 9)): 5,
        ("u2", "login", date(2026, 3, 10)): 1,
        ("u1", "invite_sent", date(2026, 3, 10)): 7,
    }


async def test_record_events__offset_times__counted_on_their_utc_day(
    profiles: ProfileRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await profiles.upsert("u1", {})
    paris = timezone(timedelta(hours=1))
    await profiles.record_events(
        [
            Event("u1", "a", datetime(2026, 3, 10, 0, 30, tzinfo=paris)),  # 2026-03-09T23:30Z
            Event("u1", "a", datetime(2026, 3, 10, 0, 30)),  # naive: taken as UTC
        ]
    )
    assert await _stored_counts(sessions) == {
        ("u1", "a", date(2026, 3, 9)): 1,
        ("u1", "a", date(2026, 3, 10)): 1,
    }


async def test_record_events__many_rows__all_stored(
    profiles: ProfileRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await profiles.upsert("u1", {})
    events = [Event("u1", f"e{i % 7}", NOW - timedelta(days=i), i + 1) for i in range(1_200)]
    assert await profiles.record_events(events) == 1_200
    stored = await _stored_counts(sessions)
    assert len(stored) == 1_200
    assert sum(stored.values()) == sum(range(1, 1_201))


@pytest.mark.parametrize(
    ("event", "field"),
    [
        pytest.param(Event("u1", "login", NOW, -1), "events[1].count", id="negative-count"),
        pytest.param(Event("u1", "login", NOW, 2**31), "events[1].count", id="count-over-int32"),
        pytest.param(Event("u1", "", NOW), "events[1].name", id="empty-name"),
        pytest.param(Event("u1", "x" * 257, NOW), "events[1].name", id="long-name"),
        pytest.param(Event("u1", "a\x00", NOW), "events[1].name", id="nul-in-name"),
        pytest.param(Event("", "login", NOW), "events[1].user_id", id="empty-user-id"),
        pytest.param(Event("u1", "login", None), "events[1].time", id="no-time"),  # type: ignore[arg-type]
    ],
)
async def test_record_events__invalid_event__nothing_recorded(
    profiles: ProfileRepository, sessions: async_sessionmaker[AsyncSession], event: Event, field: str
) -> None:
    await profiles.upsert("u1", {})
    with pytest.raises(InvalidArgument) as raised:
        await profiles.record_events([Event("u1", "login", NOW), event])
    assert raised.value.field == field
    assert await _stored_counts(sessions) == {}


async def test_record_events__user_without_profile__user_not_found_and_nothing_recorded(
    profiles: ProfileRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await profiles.upsert("u1", {})
    with pytest.raises(UserNotFound) as raised:
        await profiles.record_events([Event("u1", "login", NOW), Event("ghost", "login", NOW)])
    assert "events[1].user_id" in str(raised.value)
    assert "ghost" in str(raised.value)
    assert await _stored_counts(sessions) == {}
    with pytest.raises(UserNotFound):
        await profiles.get("ghost")  # not created implicitly


async def test_record_events__empty_batch__zero(profiles: ProfileRepository) -> None:
    assert await profiles.record_events([]) == 0


@pytest.mark.parametrize(
    ("within_days", "first_day"),
    [(0, None), (1, date(2026, 3, 9)), (7, date(2026, 3, 3)), (30, date(2026, 2, 8))],
)
def test_event_window_start__utc_date_of_now_minus_n_days(within_days: int, first_day: date | None) -> None:
    assert event_window_start(NOW, within_days) == first_day
    late_evening = datetime(2026, 3, 10, 23, 0, tzinfo=timezone(timedelta(hours=-5)))  # 2026-03-11T04:00Z
    if within_days:
        assert event_window_start(late_evening, within_days) == date(2026, 3, 11) - timedelta(
            days=within_days
        )


async def test_get_with_event_counts__windows__sums_per_window(profiles: ProfileRepository) -> None:
    # Given login on the days: today (1), yesterday (2), 6 days ago (4), 7 days ago (8), 40 days ago (16)
    await profiles.upsert("u1", {"plan": "free"})
    await profiles.upsert("u2", {})
    await profiles.record_events(
        [
            Event("u1", "login", NOW - timedelta(days=ago), count)
            for ago, count in [(0, 1), (1, 2), (6, 4), (7, 8), (40, 16)]
        ]
        + [Event("u1", "invite", NOW, 3), Event("u2", "login", NOW, 100)]
    )
    windows = [
        ("login", 0),
        ("login", 1),
        ("login", 6),
        ("login", 7),
        ("login", 30),
        ("invite", 0),
        ("never", 5),
    ]
    # When
    snapshot = await profiles.get_with_event_counts("u1", windows, NOW)
    # Then
    assert snapshot.profile == await profiles.get("u1")
    assert snapshot.event_counts == {
        ("login", 0): 31,
        ("login", 1): 3,
        ("login", 6): 7,
        ("login", 7): 15,
        ("login", 30): 15,
        ("invite", 0): 3,
        ("never", 5): 0,
    }


async def test_get_with_event_counts__one_statement(profiles: ProfileRepository, engine: AsyncEngine) -> None:
    await profiles.upsert("u1", {"a": 1})
    with recorded_statements(engine) as statements:
        await profiles.get_with_event_counts("u1", [("login", 0), ("login", 7), ("invite", 30)], NOW)
    # SQLite's BEGIN is ours (database.py); PostgreSQL reads in autocommit mode, without one.
    assert len(statements) == 1, statements
    assert statements[0].lstrip().upper().startswith("SELECT")


async def test_get_with_event_counts__no_windows__profile_only(profiles: ProfileRepository) -> None:
    await profiles.upsert("u1", {"a": 1})
    snapshot = await profiles.get_with_event_counts("u1", [], NOW)
    assert (snapshot.profile.traits, snapshot.event_counts) == ({"a": 1}, {})


async def test_get_with_event_counts__unknown_user__user_not_found(profiles: ProfileRepository) -> None:
    with pytest.raises(UserNotFound):
        await profiles.get_with_event_counts("ghost", [("login", 0)], NOW)


def _population(rng: random.Random, size: int) -> list[dict[str, Any]]:
    """Profiles whose ``margin`` is a number, or not (strings, booleans, null, lists, missing)."""
    choices: list[Any] = [None, True, False, "12", [1], {"v": 1}]
    population = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.6:
            margin: Any = rng.choice([rng.randint(-50, 50), round(rng.uniform(-50, 50), 3), 0, 7])
        else:
            margin = rng.choice(choices)
        population.append({"margin": margin, "company": {"size": rng.randint(1, 500)}} if roll < 0.95 else {})
    return population


PERCENTS = [0, 0.1, 1, 10, 25, 33.3, 50, 66.7, 90, 99.9, 100]


async def test_population_percentile__matches_python_reference(profiles: ProfileRepository) -> None:
    # Given
    population = _population(random.Random(7), 150)
    for index, traits in enumerate(population):
        await profiles.upsert(f"u{index:03}", traits)
    stored = [(await profiles.get(f"u{index:03}")).traits for index in range(len(population))]
    for path in [("margin",), ("company", "size")]:
        values = [lookup(traits, path) for traits in stored]
        for percent in PERCENTS:
            # When
            threshold = await profiles.population_percentile(path, percent)
            # Then
            assert threshold == threshold_from_values(values, percent), (path, percent)


async def test_population_percentile__no_numbers__none(profiles: ProfileRepository) -> None:
    await profiles.upsert("u1", {"margin": "high", "flag": True, "list": [1, 2], "obj": {"0": 5}})
    assert await profiles.population_percentile(("margin",), 50) is None
    assert await profiles.population_percentile(("flag",), 50) is None
    assert await profiles.population_percentile(("list", "0"), 50) is None  # a step into a list finds nothing
    assert await profiles.population_percentile(("obj", "0"), 50) == 5.0
    assert await profiles.population_percentile(("missing",), 50) is None
    assert await profiles.population_percentile(('we"ird',), 50) is None


async def test_population_percentile__unicode_key__found(profiles: ProfileRepository) -> None:
    await profiles.upsert("u1", {"marge": {"é": 3}})
    await profiles.upsert("u2", {"marge": {"é": 1}})
    assert await profiles.population_percentile(("marge", "é"), 50) == 1.0
    assert await profiles.population_percentile(("marge", "é"), 100) == 3.0


@pytest.mark.parametrize("percent", [-0.1, 100.1, float("nan")])
async def test_population_percentile__bad_percent__invalid_argument(
    profiles: ProfileRepository, percent: float
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await profiles.population_percentile(("margin",), percent)
    assert raised.value.field == "percent"
