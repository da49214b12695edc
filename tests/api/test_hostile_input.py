"""Hostile but decodable input: INVALID_ARGUMENT or NOT_FOUND naming the field, never INTERNAL.

Both stores refuse the same inputs: what PostgreSQL cannot hold (the NUL character) is
refused on SQLite too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from segmentd.config import Settings
from segmentd_client.v1 import evaluation_pb2, profiles_pb2, segments_pb2
from tests.api.conftest import create_segment, profile_message, segment_message, upsert

FREE = {"name": "free", "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}}


async def _status(call: Any) -> tuple[grpc.StatusCode, str]:
    try:
        result = await call if not hasattr(call, "__aiter__") else [m async for m in call]
    except grpc.aio.AioRpcError as error:
        return error.code(), str(error.details())
    del result
    return grpc.StatusCode.OK, ""


def _condition(value: Any, operator: str = "EQUALS") -> dict[str, Any]:
    return {"name": "bad", "rule": {"condition": {"attribute": "x", "operator": operator, "value": value}}}


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
async def test_upsert_profile__non_finite_trait__invalid_argument_and_nothing_stored(profiles, number):
    request = profiles_pb2.UpsertProfileRequest(profile=profile_message("u1", {"a": {"x": [1, number]}}))
    code, details = await _status(profiles.UpsertProfile(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("profile.traits")
    code, _ = await _status(profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="u1")))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_evaluate_profile__non_finite_trait__invalid_argument(evaluation):
    request = evaluation_pb2.EvaluateProfileRequest()
    request.traits.update({"x": math.nan})
    code, details = await _status(evaluation.EvaluateProfile(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("traits")


@pytest.mark.parametrize(
    "definition",
    [_condition(math.nan), _condition(math.inf, "LESS_THAN"), _condition([1, -math.inf], "IN")],
    ids=["nan", "inf", "in-list"],
)
async def test_create_segment__non_finite_rule_value__invalid_argument_and_nothing_created(
    segments, definition
):
    segment = segments_pb2.Segment(name="bad")
    condition = segment.rule.condition
    condition.attribute = "x"
    condition.operator = definition["rule"]["condition"]["operator"]
    value = definition["rule"]["condition"]["value"]
    if isinstance(value, list):
        condition.value.list_value.extend(value)
    else:
        condition.value.number_value = value
    code, details = await _status(segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("segment.rule")
    code, _ = await _status(segments.GetSegment(segments_pb2.GetSegmentRequest(name="bad")))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (0, -1), (0, 1_000_000_000), (2**62, 0)],
    ids=["after-9999", "before-year-1", "negative-nanos", "nanos-overflow", "huge"],
)
async def test_record_events__time_outside_timestamp_range__invalid_argument(profiles, seconds, nanos):
    await upsert(profiles, "u1", {})
    event = profiles_pb2.Event(
        user_id="u1", name="login", time=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    )
    code, details = await _status(profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=[event])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("events[0].time")


async def test_get_segment__version_beyond_any_stored__not_found(segments):
    await create_segment(segments, FREE)
    for version in (2**31, 2**63 - 1):
        request = segments_pb2.GetSegmentRequest(name="free", version=version)
        code, _ = await _status(segments.GetSegment(request))
        assert code == grpc.StatusCode.NOT_FOUND


def _nul_calls(segments, profiles, evaluation) -> dict[str, Any]:
    labelled = segment_message({**FREE, "labels": {"team": "a\x00b"}})
    return {
        "profile.user_id": lambda: profiles.UpsertProfile(
            profiles_pb2.UpsertProfileRequest(profile=profile_message("u\x001", {}))
        ),
        "profile.traits": lambda: profiles.UpsertProfile(
            profiles_pb2.UpsertProfileRequest(profile=profile_message("u1", {"k\x00": 1, "s": "a\x00"}))
        ),
        "segment.description": lambda: segments.CreateSegment(
            segments_pb2.CreateSegmentRequest(segment=segment_message({**FREE, "description": "\x00"}))
        ),
        "segment.labels": lambda: segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=labelled)),
        "segment.rule.condition.attribute": lambda: segments.CreateSegment(
            segments_pb2.CreateSegmentRequest(
                segment=segment_message(
                    _condition("a")
                    | {"rule": {"condition": {"attribute": "x\x00", "operator": "EQUALS", "value": "a"}}}
                )
            )
        ),
        "segment.rule.condition.value": lambda: segments.CreateSegment(
            segments_pb2.CreateSegmentRequest(segment=segment_message(_condition("a\x00b")))
        ),
        "segment.rule.split.salt": lambda: segments.CreateSegment(
            segments_pb2.CreateSegmentRequest(
                segment=segment_message(
                    {"name": "s", "rule": {"split": {"salt": "\x00", "from_percent": 0, "to_percent": 50}}}
                )
            )
        ),
        "events[0].name": lambda: profiles.RecordEvents(
            profiles_pb2.RecordEventsRequest(events=[profiles_pb2.Event(user_id="u1", name="log\x00in")])
        ),
        "user_id": lambda: evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u\x00")),
        "segment_name": lambda: evaluation.CountSegmentMembers(
            evaluation_pb2.CountSegmentMembersRequest(segment_name="f\x00")
        ),
    }


@pytest.mark.parametrize(
    "field",
    [
        "profile.user_id",
        "profile.traits",
        "segment.description",
        "segment.labels",
        "segment.rule.condition.attribute",
        "segment.rule.condition.value",
        "segment.rule.split.salt",
        "events[0].name",
        "user_id",
        "segment_name",
    ],
)
async def test_rpc__nul_character_in_a_string__invalid_argument_on_both_stores(
    segments, profiles, evaluation, field
):
    await upsert(profiles, "u1", {})
    code, details = await _status(_nul_calls(segments, profiles, evaluation)[field]())
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details.startswith(field), details
    listed = await segments.ListSegments(segments_pb2.ListSegmentsRequest())
    assert list(listed.segments) == []


def _segments_token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 1, "after": "\ud800", "labels": {}},
        {"v": 1, "after": "a\x00", "labels": {}},
        {"v": 1, "after": 5, "labels": {}},
        {"v": 1, "after": "free", "labels": []},
        [1, 2],
    ],
    ids=["lone-surrogate", "nul", "number", "labels-list", "list"],
)
async def test_list_segments__forged_token__invalid_argument(segments, payload):
    await create_segment(segments, FREE)
    request = segments_pb2.ListSegmentsRequest(page_token=_segments_token(payload))
    code, details = await _status(segments.ListSegments(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("page_token")


_DEEPLY_NESTED = b"[" * 5000 + b"]" * 5000  # deeper than Python's JSON parser recurses


async def test_list_segments__token_of_deeply_nested_json__invalid_argument(segments):
    token = base64.urlsafe_b64encode(_DEEPLY_NESTED).decode().rstrip("=")
    code, details = await _status(segments.ListSegments(segments_pb2.ListSegmentsRequest(page_token=token)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "page_token: is not a token issued by ListSegments"


def _signed(payload: bytes, secret: str = Settings().page_token_secret) -> str:
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b'["free",1]',
        b'["free",1,"u1","extra"]',
        b'["free",1,{}]',
        b'["free","1","u1"]',
        b'["free",true,"u1"]',
        b'["free",1,""]',
        b'["free",1,"\\ud800"]',
        b'["free",1,"u\\u0000"]',
        b'{"segment":"free"}',
        _DEEPLY_NESTED,
    ],
)
async def test_list_segment_members__signed_but_malformed_token__invalid_argument(
    segments, evaluation, payload
):
    await create_segment(segments, FREE)
    request = evaluation_pb2.ListSegmentMembersRequest(segment_name="free", page_token=_signed(payload))
    code, details = await _status(evaluation.ListSegmentMembers(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details == "page_token: is not a page token issued by this service"


def _import_stream(skip_invalid: bool, nul_in: str) -> list[profiles_pb2.ImportProfilesRequest]:
    """Two messages of profiles u1..u5, the fifth with a NUL in its ``nul_in`` field."""
    fifth = profile_message("u5\x00", {}) if nul_in == "user_id" else profile_message("u5", {"s": "a\x00"})
    return [
        profiles_pb2.ImportProfilesRequest(
            profiles=[profile_message(f"u{i}", {"i": i}) for i in (1, 2, 3)], skip_invalid=skip_invalid
        ),
        profiles_pb2.ImportProfilesRequest(profiles=[profile_message("u4", {}), fifth]),
    ]


@pytest.mark.parametrize("field", ["user_id", "traits"])
async def test_import_profiles__nul__names_its_place_in_the_stream_and_imports_nothing(profiles, field):
    code, details = await _status(profiles.ImportProfiles(iter(_import_stream(False, field))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"profiles[5].{field}: "), details
    code, _ = await _status(profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="u1")))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("field", ["user_id", "traits"])
async def test_import_profiles__nul_with_skip_invalid__that_profile_skipped(profiles, field):
    report = await profiles.ImportProfiles(iter(_import_stream(True, field)))
    assert (report.imported, report.skipped) == (4, 1)
    assert [(error.index, error.field) for error in report.errors] == [(5, field)]


@pytest.mark.parametrize(
    ("rpc", "field"),
    [
        ("EvaluateUser", "segment_names[1]"),
        ("EvaluateProfile", "segment_names[1]"),
        ("BatchEvaluateUsers", "segment_names[1]"),
        ("ExplainEvaluation", "segment_name"),
        ("ListSegmentMembers", "segment_name"),
        ("CountSegmentMembers", "segment_name"),
    ],
)
async def test_evaluation__empty_segment_name__invalid_argument_naming_it(
    segments, profiles, evaluation, rpc, field
):
    await create_segment(segments, FREE)
    await upsert(profiles, "u1", {"plan": "free"})
    names = ["free", ""]
    requests = {
        "EvaluateUser": evaluation_pb2.EvaluateUserRequest(user_id="u1", segment_names=names),
        "EvaluateProfile": evaluation_pb2.EvaluateProfileRequest(segment_names=names),
        "BatchEvaluateUsers": evaluation_pb2.BatchEvaluateUsersRequest(user_ids=["u1"], segment_names=names),
        "ExplainEvaluation": evaluation_pb2.ExplainEvaluationRequest(user_id="u1", segment_name=""),
        "ListSegmentMembers": evaluation_pb2.ListSegmentMembersRequest(segment_name=""),
        "CountSegmentMembers": evaluation_pb2.CountSegmentMembersRequest(segment_name=""),
    }
    code, details = await _status(getattr(evaluation, rpc)(requests[rpc]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, f"{field}: a segment name is required")


@pytest.mark.parametrize("rpc", ["GetSegment", "DeleteSegment"])
async def test_segments__empty_name__invalid_argument_naming_it(segments, rpc):
    await create_segment(segments, FREE)
    requests = {
        "GetSegment": segments_pb2.GetSegmentRequest(name=""),
        "DeleteSegment": segments_pb2.DeleteSegmentRequest(name=""),
    }
    code, details = await _status(getattr(segments, rpc)(requests[rpc]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "name: a segment name is required")
    assert (await segments.GetSegment(segments_pb2.GetSegmentRequest(name="free"))).name == "free"
