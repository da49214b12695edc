"""The starter library on the demo data: every segment meaningful, EvaluateUser = ListSegmentMembers.

On SQLite and PostgreSQL: the demo seeds its default population, applies every file of
``examples/segments/starter/``; each starter segment then has members and is not everyone,
and the members the database lists are exactly the users EvaluateUser puts in it.
"""

from __future__ import annotations

import pytest

from segmentd.demo import STARTER_LIBRARY, StoreHoldsOtherData, run_demo
from segmentd.demo_data import USER_PREFIX
from segmentd.store.database import create_engine, create_sessionmaker
from segmentd_client.definitions import load_definitions
from segmentd_client.v1 import evaluation_pb2
from tests.api.conftest import upsert

PROFILES = 3_000


async def _demo(store_url: str, *, force: bool = False) -> dict[str, str]:
    engine = create_engine(store_url)
    try:
        report = await run_demo(
            create_sessionmaker(engine), library=STARTER_LIBRARY, count=PROFILES, seed=14, force=force
        )
    finally:
        await engine.dispose()
    return report.segments


async def _members(evaluation, name: str) -> set[str]:
    request = evaluation_pb2.ListSegmentMembersRequest(segment_name=name)
    return {
        user
        for message in [m async for m in evaluation.ListSegmentMembers(request)]
        for user in message.user_ids
    }


def test_starter_library__has_every_segment_the_issue_lists():
    names = {definition["name"] for definition in load_definitions(STARTER_LIBRARY)}
    assert len(names) >= 17
    for definition in load_definitions(STARTER_LIBRARY):
        assert "Expects" in definition["description"], definition["name"]


async def test_demo__every_starter_segment__members_agree_and_are_neither_none_nor_all(
    store_url, server, evaluation
):
    # Given
    outcomes = await _demo(store_url)
    assert set(outcomes.values()) == {"created"}
    users = [f"{USER_PREFIX}{i:05d}" for i in range(1, PROFILES + 1)]
    # When
    listed = {name: await _members(evaluation, name) for name in outcomes}
    verdicts = {}
    for user in users:
        response = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user))
        verdicts[user] = set(response.segments)
    # Then
    for name in outcomes:
        evaluated = {user for user, segments in verdicts.items() if name in segments}
        assert listed[name] == evaluated, name
        assert 0 < len(evaluated) < PROFILES, (name, len(evaluated))


async def test_demo__twice__unchanged_and_refuses_other_data_unless_forced(store_url, server, profiles):
    # Given
    await _demo(store_url)
    # When / Then: the second run changes nothing
    assert set((await _demo(store_url)).values()) == {"unchanged"}
    await upsert(profiles, "someone-else", {"plan": "pro"})
    with pytest.raises(StoreHoldsOtherData):
        await _demo(store_url)
    assert set((await _demo(store_url, force=True)).values()) == {"unchanged"}
