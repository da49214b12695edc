"""Every RPC answers bad input with a precise status code and a message naming the field."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from segmentd_client.v1 import evaluation_pb2, profiles_pb2, segments_pb2
from tests.api.conftest import create_segment, profile_message, upsert

FREE = {"name": "free", "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}}


async def _status(call) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), str(error.details())
    return grpc.StatusCode.OK, ""


async def test_get_segment__negative_version__invalid_argument(segments):
    await create_segment(segments, FREE)
    code, details = await _status(
        segments.GetSegment(segments_pb2.GetSegmentRequest(name="free", version=-1))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("version")


async def test_delete_segment__unknown__not_found(segments):
    code, _ = await _status(segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="nope")))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_delete_segment__stale_etag__aborted_and_kept(segments):
    await create_segment(segments, FREE)
    code, _ = await _status(
        segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="free", etag="stale"))
    )
    assert code == grpc.StatusCode.ABORTED
    assert (await segments.GetSegment(segments_pb2.GetSegmentRequest(name="free"))).version == 1


async def test_update_segment__missing_etag__invalid_argument(segments):
    await create_segment(segments, FREE)
    request = segments_pb2.UpdateSegmentRequest(
        segment=segments_pb2.Segment(name="free", description="x"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
    )
    code, details = await _status(segments.UpdateSegment(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "segment.etag" in details


async def test_get_and_delete_profile__unknown_user__not_found(profiles):
    for call in (
        profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="ghost")),
        profiles.DeleteProfile(profiles_pb2.DeleteProfileRequest(user_id="ghost")),
    ):
        code, _ = await _status(call)
        assert code == grpc.StatusCode.NOT_FOUND


async def test_upsert_profile__traits_too_deep__invalid_argument_and_nothing_stored(profiles):
    deep: dict[str, object] = {}
    node = deep
    for _ in range(20):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    request = profiles_pb2.UpsertProfileRequest(profile=profile_message("u1", deep))
    code, details = await _status(profiles.UpsertProfile(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "profile.traits" in details
    code, _ = await _status(profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="u1")))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("event", "code", "field"),
    [
        (
            profiles_pb2.Event(user_id="u1", name="login", count=-2),
            grpc.StatusCode.INVALID_ARGUMENT,
            "events[1].count",
        ),
        (
            profiles_pb2.Event(user_id="u1", name="", count=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "events[1].name",
        ),
        (profiles_pb2.Event(user_id="ghost", name="login"), grpc.StatusCode.NOT_FOUND, "events[1].user_id"),
    ],
)
async def test_record_events__one_bad_event__nothing_recorded(
    segments, profiles, evaluation, event, code, field
):
    # Given
    await create_segment(
        segments,
        {"name": "active", "rule": {"event": {"name": "login", "operator": "GREATER_THAN", "count": 0}}},
    )
    await upsert(profiles, "u1", {})
    good = profiles_pb2.Event(user_id="u1", name="login")

    # When
    status, details = await _status(
        profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=[good, event]))
    )

    # Then
    assert status == code and field in details
    verdict = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    assert list(verdict.segments) == []


async def test_record_events__no_time__counts_as_now(segments, profiles, evaluation):
    await create_segment(
        segments,
        {
            "name": "active",
            "rule": {"event": {"name": "login", "operator": "GREATER_THAN", "count": 0, "within_days": 1}},
        },
    )
    await upsert(profiles, "u1", {})
    await profiles.RecordEvents(
        profiles_pb2.RecordEventsRequest(events=[profiles_pb2.Event(user_id="u1", name="login")])
    )
    verdict = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    assert list(verdict.segments) == ["active"]


async def test_evaluate_user__empty_user_id__invalid_argument(evaluation):
    code, details = await _status(evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in details


async def test_batch_evaluate_users__malformed_id__invalid_argument_naming_its_position(evaluation):
    request = evaluation_pb2.BatchEvaluateUsersRequest(user_ids=["a", "b", ""])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in evaluation.BatchEvaluateUsers(request):
            pass
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "user_ids[2]" in str(raised.value.details())
