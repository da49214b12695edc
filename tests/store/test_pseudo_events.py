"""Pseudo-events counted by the store: ``*`` (any event) and ``$created`` (first stored)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument
from segmentd.store.models import ProfileRow
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event

NOW = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)  # midnight UTC: a window's first day starts here


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    return ProfileRepository(sessions)


async def _created_at(sessions: async_sessionmaker[AsyncSession], user_id: str, when: datetime) -> None:
    async with sessions() as session, session.begin():
        statement = update(ProfileRow).where(ProfileRow.user_id == user_id)
        await session.execute(statement.values(create_time=when))


async def test_any_event__sums_every_name_in_the_window(profiles: ProfileRepository) -> None:
    await profiles.upsert("u1", {})
    await profiles.record_events(
        [
            Event("u1", "login", NOW, 2),
            Event("u1", "purchase", NOW - timedelta(days=1), 3),
            Event("u1", "login", NOW - timedelta(days=14), 4),
            Event("u1", "login", NOW - timedelta(days=15), 5),
        ]
    )
    # When
    snapshot = await profiles.get_with_event_counts("u1", [("*", 0), ("*", 1), ("*", 14), ("login", 14)], NOW)
    # Then
    assert snapshot.event_counts == {("*", 0): 14, ("*", 1): 5, ("*", 14): 9, ("login", 14): 6}


async def test_any_event__user_whose_only_events_are_older__counts_zero(profiles: ProfileRepository) -> None:
    await profiles.upsert("u1", {})
    await profiles.record_events([Event("u1", "login", NOW - timedelta(days=15, microseconds=1), 9)])
    # When
    snapshot = await profiles.get_with_event_counts("u1", [("*", 14), ("*", 0)], NOW)
    # Then
    assert snapshot.event_counts == {("*", 14): 0, ("*", 0): 9}


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        pytest.param(NOW - timedelta(days=14), 1, id="first-midnight-of-the-window"),
        pytest.param(NOW - timedelta(days=14, microseconds=1), 0, id="just-before-it"),
        pytest.param(NOW + timedelta(hours=1), 1, id="today"),
    ],
)
async def test_created__counts_one_when_first_stored_in_the_window(
    profiles: ProfileRepository, sessions: async_sessionmaker[AsyncSession], created: datetime, expected: int
) -> None:
    await profiles.upsert("u1", {"plan": "free"})
    await _created_at(sessions, "u1", created)
    # When
    snapshot = await profiles.get_with_event_counts("u1", [("$created", 14), ("$created", 0)], NOW)
    # Then
    assert snapshot.event_counts == {("$created", 14): expected, ("$created", 0): 1}


@pytest.mark.parametrize("name", ["*", "$created", "$signup"])
async def test_record_events__pseudo_event_name__is_refused_naming_the_field(
    profiles: ProfileRepository, name: str
) -> None:
    await profiles.upsert("u1", {})
    # When
    with pytest.raises(InvalidArgument) as raised:
        await profiles.record_events([Event("u1", "login", NOW), Event("u1", name, NOW)])
    # Then
    assert raised.value.field == "events[1].name"
    assert (await profiles.get_with_event_counts("u1", [("login", 0)], NOW)).event_counts == {("login", 0): 0}
