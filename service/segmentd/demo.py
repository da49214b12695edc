"""``segmentd demo``: seed a store with the demo data and apply the starter library.

    refuse a store holding other data   profiles not named demo-*, or segments not in the library
    replace the demo profiles           delete demo-* (events cascade), insert them again
    apply the library                   create, or update what differs, in dependency order

Deterministic (a seed, and today's date), so running it twice leaves the same store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.demo_data import USER_PREFIX, DemoProfile, demo_profiles
from segmentd.engine.codec import rule_from_json
from segmentd.errors import SegmentNotFound
from segmentd.store.database import write_session
from segmentd.store.models import EventCountRow, ProfileRow, SegmentRow
from segmentd.store.segments import SegmentRepository
from segmentd_client.definitions import in_dependency_order, load_definitions

#: The starter library, beside the package in a source checkout.
STARTER_LIBRARY: Final = Path(__file__).resolve().parents[2] / "examples" / "segments" / "starter"
_CHUNK: Final = 500


class StoreHoldsOtherData(Exception):
    """The store holds profiles or segments the demo did not write."""


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo wrote: profiles, event rows and the segment names, with their outcome."""

    profiles: int
    event_rows: int
    segments: dict[str, str]


async def run_demo(
    sessions: async_sessionmaker[AsyncSession], *, library: Path, count: int, seed: int, force: bool
) -> DemoReport:
    """Seed the demo profiles and apply the library in ``library``.

    Raises:
        StoreHoldsOtherData: unless ``force``, when the store holds data not from the demo.
        DefinitionError: a library file cannot be read.
    """
    definitions = in_dependency_order(load_definitions(library))
    if not force:
        await _refuse_other_data(sessions, {str(definition["name"]) for definition in definitions})
    profiles = demo_profiles(count, seed, datetime.now(UTC).date())
    rows = await _replace_profiles(sessions, profiles)
    segments = await _apply(SegmentRepository(sessions), definitions)
    return DemoReport(len(profiles), rows, segments)


async def _refuse_other_data(sessions: async_sessionmaker[AsyncSession], library: set[str]) -> None:
    async with sessions() as session:
        others = await session.scalar(
            select(func.count()).select_from(ProfileRow).where(~ProfileRow.user_id.startswith(USER_PREFIX))
        )
        names = set((await session.scalars(select(SegmentRow.name))).all())
    if others or names - library:
        extra = ", ".join(sorted(names - library)[:5])
        raise StoreHoldsOtherData(
            f"the store holds {others} profiles not from the demo"
            + (f" and segments not in the library ({extra})" if extra else "")
            + "; use --force to add the demo anyway, or another --database-url"
        )


async def _replace_profiles(
    sessions: async_sessionmaker[AsyncSession], profiles: Sequence[DemoProfile]
) -> int:
    event_rows = [
        {"user_id": profile.user_id, "name": name, "day": day, "count": count}
        for profile in profiles
        for (name, day), count in sorted(profile.events.items())
    ]
    async with write_session(sessions) as session:
        demo_users = ProfileRow.user_id.startswith(USER_PREFIX)
        await session.execute(delete(EventCountRow).where(EventCountRow.user_id.startswith(USER_PREFIX)))
        await session.execute(delete(ProfileRow).where(demo_users))
        profile_rows = [
            {
                "user_id": p.user_id,
                "traits": p.traits,
                "create_time": p.create_time,
                "update_time": p.create_time,
            }
            for p in profiles
        ]
        for start in range(0, len(profile_rows), _CHUNK):
            await session.execute(insert(ProfileRow), profile_rows[start : start + _CHUNK])
        for start in range(0, len(event_rows), _CHUNK * 4):
            await session.execute(insert(EventCountRow), event_rows[start : start + _CHUNK * 4])
    return len(event_rows)


async def _apply(repository: SegmentRepository, definitions: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for definition in definitions:
        name = str(definition["name"])
        rule = rule_from_json(definition["rule"])
        description = str(definition.get("description", ""))
        labels = {str(key): str(value) for key, value in dict(definition.get("labels") or {}).items()}
        try:
            current = await repository.get(name)
        except SegmentNotFound:
            await repository.create(name, description, rule, labels)
            outcomes[name] = "created"
            continue
        if (current.rule, current.description, dict(current.labels)) == (rule, description, labels):
            outcomes[name] = "unchanged"
        else:
            await repository.update(
                name, etag=current.etag, description=description, rule=rule, labels=labels
            )
            outcomes[name] = "configured"
    return outcomes
