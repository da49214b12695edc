"""Finite doubles get the same verdicts everywhere: SQL listings, per-user and inline evaluation.

PostgreSQL keeps a JSON number as an exact decimal and writes it back without an exponent
(``1e+23`` comes back as ``100000000000000000000000``), which Python would read as an integer
that is not the double that was sent.
"""

from __future__ import annotations

import sys

import pytest

from segmentd_client.v1 import evaluation_pb2, profiles_pb2
from tests.api.conftest import create_segment, upsert

VALUES = {
    "big": 1e23,
    "tiny": -1e300,
    "five": 5.0,
    "two-60": 2.0**60,
    "max": sys.float_info.max,
    "subnormal": 5e-324,
    "third": 1 / 3,
}
SEGMENTS = [
    ("lowest", {"attribute": "x", "operator": "PERCENTILE_AT_MOST", "value": 0}),
    ("low-half", {"attribute": "x", "operator": "PERCENTILE_AT_MOST", "value": 50}),
    ("top", {"attribute": "x", "operator": "PERCENTILE_AT_LEAST", "value": 90}),
    ("is-big", {"attribute": "x", "operator": "EQUALS", "value": 1e23}),
    ("in-list", {"attribute": "x", "operator": "IN", "value": [1e23, -1e300, 2.0**60]}),
    ("below", {"attribute": "x", "operator": "LESS_THAN", "value": -1e299}),
    ("between", {"attribute": "x", "operator": "BETWEEN", "value": [5e-324, 1e23]}),
]


async def _members(evaluation, name: str) -> set[str]:
    request = evaluation_pb2.ListSegmentMembersRequest(segment_name=name)
    return {
        user_id async for message in evaluation.ListSegmentMembers(request) for user_id in message.user_ids
    }


async def test_extreme_doubles__listed_members_equal_user_and_profile_verdicts(
    segments, profiles, evaluation
):
    # Given
    for name, condition in SEGMENTS:
        await create_segment(segments, {"name": name, "rule": {"condition": condition}})
    for user_id, value in VALUES.items():
        await upsert(profiles, user_id, {"x": value})

    # When / Then
    for name, _ in SEGMENTS:
        listed = await _members(evaluation, name)
        for user_id, value in VALUES.items():
            by_user = await evaluation.EvaluateUser(
                evaluation_pb2.EvaluateUserRequest(
                    user_id=user_id, segment_names=[name], consistency=evaluation_pb2.STRONG
                )
            )
            inline = evaluation_pb2.EvaluateProfileRequest(segment_names=[name])
            inline.traits.update({"x": value})
            by_profile = await evaluation.EvaluateProfile(inline)
            assert (user_id in listed) == (name in by_user.segments), (name, user_id)
            if not name.startswith(("lowest", "low-half", "top")):  # percentiles need the store
                assert (name in by_profile.segments) == (name in by_user.segments), (name, user_id)


@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
async def test_get_profile__extreme_double__read_back_as_sent(profiles, value):
    await upsert(profiles, "u1", {"x": value, "nested": {"y": [value]}})
    stored = await profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="u1"))
    assert stored.traits["x"] == value
    assert stored.traits["nested"]["y"][0] == value
