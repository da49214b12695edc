"""EvaluationService verdicts over gRPC: EvaluateProfile, EvaluateUser, batches, explanations, caching."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from segmentd.server import RunningServer
from segmentd_client.v1 import evaluation_pb2, profiles_pb2
from tests.api.conftest import create_segment, profile_message, upsert
from tests.statements import recorded_statements

SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "free",
        "rule": {
            "condition": {"attribute": "plan", "operator": "EQUALS", "value": "free", "ignore_case": True}
        },
    },
    {
        "name": "big-companies",
        "rule": {"condition": {"attribute": "company.size", "operator": "GREATER_THAN", "value": 500}},
    },
    {
        "name": "detractors",
        "rule": {"condition": {"attribute": "nps", "operator": "LESS_THAN_OR_EQUALS", "value": 6}},
    },
    {
        "name": "no-nps",
        "rule": {"none": {"rules": [{"condition": {"attribute": "nps", "operator": "EXISTS"}}]}},
    },
    {
        "name": "old-app",
        "rule": {"condition": {"attribute": "app_version", "operator": "SEMVER_LESS_THAN", "value": "2.0.0"}},
    },
    {
        "name": "free-detractors",
        "rule": {"all": {"rules": [{"segment": {"name": "free"}}, {"segment": {"name": "detractors"}}]}},
    },
    {
        "name": "recent",
        "rule": {"condition": {"attribute": "last_login", "operator": "WITHIN_LAST_DAYS", "value": 14}},
    },
]


@pytest.fixture
async def catalogue(segments) -> None:
    for definition in SEGMENTS:
        await create_segment(segments, definition)


def _struct_request(
    traits: dict[str, Any], names: list[str] | None = None
) -> evaluation_pb2.EvaluateProfileRequest:
    request = evaluation_pb2.EvaluateProfileRequest(segment_names=names or [])
    request.traits.update(traits)
    return request


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ({}, ["no-nps"]),
        ({"plan": "FREE", "nps": 3}, ["detractors", "free", "free-detractors"]),
        ({"plan": "free", "nps": "3"}, ["free"]),
        ({"plan": "pro", "company": {"size": 900}, "nps": None}, ["big-companies", "no-nps"]),
        ({"company": {"size": "900"}, "nps": 9}, []),
        ({"app_version": "2.0.0-rc.1", "nps": 10}, ["old-app"]),
        ({"app_version": "2.0.0", "nps": 10}, []),
        ({"last_login": (datetime.now(UTC) - timedelta(days=3)).isoformat(), "nps": 7}, ["recent"]),
        ({"last_login": "2001-01-01T00:00:00Z", "nps": 7}, []),
    ],
)
async def test_evaluate_profile__returns_exactly_the_matching_segments(
    catalogue, evaluation, traits, expected
):
    response = await evaluation.EvaluateProfile(_struct_request(traits))
    assert list(response.segments) == expected
    assert response.evaluated_at.seconds > 0


async def test_evaluate_profile__named_segments_only(catalogue, evaluation):
    response = await evaluation.EvaluateProfile(
        _struct_request({"plan": "free", "nps": 1}, ["free", "big-companies"])
    )
    assert list(response.segments) == ["free"]


async def test_evaluate_profile__unknown_segment_name__not_found(catalogue, evaluation):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await evaluation.EvaluateProfile(_struct_request({}, ["nope"]))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_evaluate_user__profile_change__reflected_on_the_next_call(catalogue, profiles, evaluation):
    # Given
    await upsert(profiles, "u1", {"plan": "free", "nps": 9})
    before = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))

    # When
    await upsert(profiles, "u1", {"nps": 2})
    after = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))

    # Then
    assert list(before.segments) == ["free"]
    assert list(after.segments) == ["detractors", "free", "free-detractors"]


async def test_evaluate_user__segment_change__reflected_on_the_next_call(
    catalogue, segments, profiles, evaluation
):
    from segmentd_client.v1 import segments_pb2
    from tests.api.conftest import segment_message

    await upsert(profiles, "u1", {"plan": "pro", "nps": 9})
    assert (
        "free"
        not in (await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))).segments
    )
    current = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="free"))
    changed = segment_message(
        {
            "name": "free",
            "rule": {"condition": {"attribute": "plan", "operator": "IN", "value": ["free", "pro"]}},
        }
    )
    changed.etag = current.etag
    await segments.UpdateSegment(segments_pb2.UpdateSegmentRequest(segment=changed))

    after = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    assert "free" in after.segments


async def test_evaluate_user__events_recorded__count_in_the_window(segments, profiles, evaluation):
    await create_segment(
        segments,
        {
            "name": "inviters",
            "rule": {
                "event": {
                    "name": "invite_sent",
                    "operator": "GREATER_THAN_OR_EQUALS",
                    "count": 3,
                    "within_days": 30,
                }
            },
        },
    )
    await upsert(profiles, "u1", {})
    now = datetime.now(UTC)
    events = []
    for days_ago, count in [(1, 1), (2, 1), (90, 5)]:
        item = profiles_pb2.Event(user_id="u1", name="invite_sent", count=count)
        item.time.FromDatetime(now - timedelta(days=days_ago))
        events.append(item)
    await profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=events))
    assert (
        list((await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))).segments) == []
    )

    await profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=events[:1]))
    assert list(
        (await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))).segments
    ) == ["inviters"]


async def test_evaluate_user__unknown_user__not_found(catalogue, evaluation):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="ghost"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_evaluate_user__deleted_user__not_found_on_the_next_call(catalogue, profiles, evaluation):
    await upsert(profiles, "u1", {"plan": "free"})
    await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    await profiles.DeleteProfile(profiles_pb2.DeleteProfileRequest(user_id="u1"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_evaluate_user__cache_hit__no_database_round_trip(
    catalogue, server: RunningServer, profiles, evaluation
):
    # Given: a warm cache. On PostgreSQL the upsert's own notification may arrive after the
    # first evaluation and drop the entry once more: warm until the entry stays.
    await upsert(profiles, "u1", {"plan": "free"})
    for _ in range(50):
        await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
        await asyncio.sleep(0.1)
        if server.profile_cache.get("u1") is not None:
            break
    with recorded_statements(server.engine, with_begin=True) as statements:
        # When
        for _ in range(5):
            await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
        hits = list(statements)
        server.profile_cache.clear()
        await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))

    # Then
    assert hits == []
    user_reads = [s for s in statements[len(hits) :] if "profiles" in s]
    assert len(user_reads) == 1, statements


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {"profile_cache_size": 8, "max_batch_size": 50}


async def test_profile_cache__many_users__stays_within_its_bound(
    catalogue, server: RunningServer, profiles, evaluation
):
    for i in range(30):
        await upsert(profiles, f"u{i:02}", {"plan": "free" if i % 2 else "pro"})
        response = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=f"u{i:02}"))
        assert ("free" in response.segments) == bool(i % 2)
        assert len(server.profile_cache) <= 8


async def test_batch_evaluate_users__streams_each_user_and_flags_unknown_ones(
    catalogue, profiles, evaluation
):
    await upsert(profiles, "a", {"plan": "free", "nps": 1})
    await upsert(profiles, "b", {"nps": 10})
    request = evaluation_pb2.BatchEvaluateUsersRequest(
        user_ids=["a", "ghost", "b"], segment_names=["free", "no-nps"]
    )
    results = [(r.user_id, r.found, list(r.segments)) async for r in evaluation.BatchEvaluateUsers(request)]
    assert results == [("a", True, ["free"]), ("ghost", False, []), ("b", True, [])]


async def test_batch_evaluate_users__over_the_batch_limit__invalid_argument(catalogue, evaluation):
    request = evaluation_pb2.BatchEvaluateUsersRequest(user_ids=[f"u{i}" for i in range(51)])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in evaluation.BatchEvaluateUsers(request):
            pass
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "user_ids" in str(raised.value.details())


async def test_explain_evaluation__every_node_with_the_values_seen(catalogue, profiles, evaluation):
    await upsert(profiles, "u1", {"plan": "Free", "nps": 8})
    response = await evaluation.ExplainEvaluation(
        evaluation_pb2.ExplainEvaluationRequest(user_id="u1", segment_name="free-detractors")
    )
    free, detractors = response.explanation.children
    assert (response.matched, response.segment_version) == (False, 1)
    assert free.matched and free.children[0].actual_value.string_value == "Free"
    assert not detractors.matched and detractors.children[0].actual_value.number_value == 8


async def test_explain_evaluation__unknown_segment__not_found(catalogue, profiles, evaluation):
    await upsert(profiles, "u1", {})
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await evaluation.ExplainEvaluation(
            evaluation_pb2.ExplainEvaluationRequest(user_id="u1", segment_name="nope")
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_upsert_profile__bad_user_id__invalid_argument(profiles):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await profiles.UpsertProfile(profiles_pb2.UpsertProfileRequest(profile=profile_message("", {"a": 1})))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "profile.user_id" in str(raised.value.details())
