"""Percentile and percentage-split rules over gRPC: verdicts and membership agree."""

from __future__ import annotations

import pytest

from segmentd.engine.percentiles import threshold_from_values
from segmentd.engine.split import bucket, bucket_bounds
from segmentd_client.v1 import evaluation_pb2
from tests.api.conftest import create_segment, upsert

MARGINS = [5, 40, 12, 7, 90, 33, 1, 61, 18, 25, 50, 3]


@pytest.fixture
async def population(segments, profiles) -> list[str]:
    await create_segment(
        segments,
        {
            "name": "low-margin",
            "rule": {"condition": {"attribute": "margin", "operator": "PERCENTILE_AT_MOST", "value": 25}},
        },
    )
    await create_segment(
        segments,
        {
            "name": "test-group",
            "rule": {"split": {"salt": "onboarding", "from_percent": 0, "to_percent": 50}},
        },
    )
    users = []
    for i, margin in enumerate(MARGINS):
        await upsert(profiles, f"user-{i:02}", {"margin": margin})
        users.append(f"user-{i:02}")
    await upsert(profiles, "no-margin", {"margin": "n/a"})
    return [*users, "no-margin"]


async def _members(evaluation, name: str) -> list[str]:
    request = evaluation_pb2.ListSegmentMembersRequest(segment_name=name)
    return [u async for m in evaluation.ListSegmentMembers(request) for u in m.user_ids]


async def test_percentile_at_most__bottom_quarter_by_nearest_rank(population, evaluation):
    # Given: the 25th percentile of the 12 numeric margins (the string one does not count)
    threshold = threshold_from_values([float(m) for m in MARGINS], 25)
    assert threshold is not None
    expected = sorted(f"user-{i:02}" for i, m in enumerate(MARGINS) if m <= threshold)

    # When
    verdicts = {
        user_id: "low-margin"
        in (await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))).segments
        for user_id in population
    }

    # Then
    assert threshold == 5
    assert sorted(u for u, member in verdicts.items() if member) == expected
    assert await _members(evaluation, "low-margin") == expected


async def test_split__evaluator_and_database_bucket_users_alike(population, evaluation):
    low, high = bucket_bounds(0, 50)
    expected = sorted(u for u in population if low <= bucket("onboarding", u) < high)

    listed = await _members(evaluation, "test-group")
    inline = await evaluation.EvaluateProfile(evaluation_pb2.EvaluateProfileRequest(user_id=expected[0]))
    anonymous = await evaluation.EvaluateProfile(evaluation_pb2.EvaluateProfileRequest())

    assert listed == expected and 0 < len(expected) < len(population)
    assert "test-group" in inline.segments
    assert "test-group" not in anonymous.segments
