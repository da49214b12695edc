"""Random hostile calls to every RPC of a real server, on SQLite and on PostgreSQL.

Each example sends a few calls built from hostile values (any Unicode text, NUL, huge
strings, NaN and infinities, out-of-range times and versions, forged tokens, random rule
trees valid or not) and checks that

* no call answers INTERNAL or UNKNOWN, and no message names internals or exceeds the bound;
* a write that failed changed nothing (segments, the pool's profiles, event counts, user
  lists and their member counts);
* afterwards, the members the database lists for each segment are exactly the users whose
  per-user verdict (``EvaluateUser``, STRONG) names that segment.

The raw-bytes half (messages protobuf cannot decode) is ``test_undecodable_requests.py``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format, timestamp_pb2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segmentd.api.errors import MAX_DETAILS_LENGTH
from segmentd.engine.codec import rule_to_json
from segmentd_client.v1 import (
    evaluation_pb2,
    profiles_pb2,
    rules_pb2,
    segments_pb2,
    user_lists_pb2,
    user_lists_pb2_grpc,
)
from tests.strategies import json_values, rules, traits, valid_rules

MAX_EXAMPLES = int(os.environ.get("SEGMENTD_FUZZ_EXAMPLES", "30"))
POOL = ("u1", "u2", "user-42")
NAMES = ("fz-a", "fz-b", "fz-c")
#: User lists the calls name; ``fl-a`` exists from the start (and a segment tests it).
LISTS = ("fl-a", "fl-b")
#: Text a client must never see in a status message.
INTERNALS = ("Traceback", "SELECT", "INSERT", "sqlalchemy", "asyncpg", "sqlite3", "127.0.0.1", "BEGIN")

_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ("", "\x00", "a\x00b", "x" * 300, "y" * 20_000, "é", "Bad Name")
)
_ids = st.sampled_from(POOL) | _texts
_names = st.sampled_from(NAMES) | _texts
_list_names = st.sampled_from(LISTS) | _texts
_int32 = st.integers(-(2**31), 2**31 - 1)
_int64 = st.integers(-(2**63), 2**63 - 1)
_tokens = _texts | st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="))


def _struct(data: dict[str, Any], into: Any) -> Any:
    try:
        into.update(data)
    except (ValueError, TypeError, OverflowError):
        assume(False)  # the client library itself refuses it: nothing to send
    return into


@st.composite
def _traits(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return draw(traits())
    return draw(st.dictionaries(_texts, json_values(), max_size=3))


@st.composite
def _rule(draw: st.DrawFn) -> rules_pb2.Rule:
    # Any rule, or a valid one that may test the user lists (so their members matter below).
    rule = draw(rules(max_leaves=4) | valid_rules(max_leaves=3, list_names=LISTS))
    try:
        return json_format.ParseDict(rule_to_json(rule), rules_pb2.Rule())
    except (json_format.ParseError, ValueError, TypeError, OverflowError):
        assume(False)
        raise  # unreachable: assume(False) raises


@st.composite
def _segment(draw: st.DrawFn) -> segments_pb2.Segment:
    return segments_pb2.Segment(
        name=draw(_names),
        description=draw(_texts),
        labels=draw(st.dictionaries(_texts, _texts, max_size=2)),
        rule=draw(_rule()),
        etag=draw(_texts),
    )


@st.composite
def _profile(draw: st.DrawFn) -> profiles_pb2.Profile:
    profile = profiles_pb2.Profile(user_id=draw(_ids))
    _struct(draw(_traits()), profile.traits)
    return profile


@st.composite
def _event(draw: st.DrawFn) -> profiles_pb2.Event:
    event = profiles_pb2.Event(
        user_id=draw(_ids), name=draw(st.sampled_from(("login", "invite_sent")) | _texts), count=draw(_int32)
    )
    if draw(st.booleans()):
        event.time.CopyFrom(timestamp_pb2.Timestamp(seconds=draw(_int64), nanos=draw(_int32)))
    return event


def _evaluate_profile(traits_: dict[str, Any], names: list[str], user_id: str) -> Any:
    request = evaluation_pb2.EvaluateProfileRequest(segment_names=names, user_id=user_id)
    _struct(traits_, request.traits)
    return request


_lists = st.lists(_names, max_size=3)
_numeric_traits = st.lists(st.sampled_from(("mrr", "company.size", "plan")) | _texts, max_size=2)
_consistency = st.sampled_from((0, 1, 2)) | _int32
_mask = st.lists(st.sampled_from(("description", "rule", "labels")) | _texts, max_size=2)

_update_requests = st.builds(
    segments_pb2.UpdateSegmentRequest,
    segment=_segment(),
    update_mask=st.builds(field_mask_pb2.FieldMask, paths=_mask),
    allow_missing=st.booleans(),
    validate_only=st.booleans(),
)

#: (service, method, kind, request strategy); kind: unary, server_stream or client_stream.
CALLS: list[tuple[str, str, str, st.SearchStrategy[Any]]] = [
    (
        "segments",
        "CreateSegment",
        "unary",
        st.builds(segments_pb2.CreateSegmentRequest, segment=_segment(), validate_only=st.booleans()),
    ),
    (
        "segments",
        "GetSegment",
        "unary",
        st.builds(segments_pb2.GetSegmentRequest, name=_names, version=_int64),
    ),
    (
        "segments",
        "ListSegments",
        "unary",
        st.builds(
            segments_pb2.ListSegmentsRequest,
            page_size=_int32,
            page_token=_tokens,
            labels=st.dictionaries(_texts, _texts, max_size=2),
        ),
    ),
    (
        "segments",
        "UpdateSegment",
        "unary",
        _update_requests,
    ),
    (
        "segments",
        "BatchUpdateSegments",
        "unary",
        st.builds(
            segments_pb2.BatchUpdateSegmentsRequest,
            requests=st.lists(_update_requests, max_size=3),
            validate_only=st.booleans(),
        ),
    ),
    (
        "segments",
        "DeleteSegment",
        "unary",
        st.builds(segments_pb2.DeleteSegmentRequest, name=_names, etag=_texts),
    ),
    (
        "profiles",
        "UpsertProfile",
        "unary",
        st.builds(profiles_pb2.UpsertProfileRequest, profile=_profile(), replace=st.booleans()),
    ),
    ("profiles", "GetProfile", "unary", st.builds(profiles_pb2.GetProfileRequest, user_id=_ids)),
    ("profiles", "DeleteProfile", "unary", st.builds(profiles_pb2.DeleteProfileRequest, user_id=_ids)),
    (
        "profiles",
        "RecordEvents",
        "unary",
        st.builds(profiles_pb2.RecordEventsRequest, events=st.lists(_event(), max_size=3)),
    ),
    (
        "profiles",
        "ImportProfiles",
        "client_stream",
        st.lists(
            st.builds(
                profiles_pb2.ImportProfilesRequest,
                profiles=st.lists(_profile(), max_size=3),
                replace=st.booleans(),
                skip_invalid=st.booleans(),
            ),
            min_size=1,
            max_size=2,
        ),
    ),
    (
        "evaluation",
        "EvaluateUser",
        "unary",
        st.builds(
            evaluation_pb2.EvaluateUserRequest, user_id=_ids, segment_names=_lists, consistency=_consistency
        ),
    ),
    ("evaluation", "EvaluateProfile", "unary", st.builds(_evaluate_profile, _traits(), _lists, _ids)),
    (
        "evaluation",
        "BatchEvaluateUsers",
        "server_stream",
        st.builds(
            evaluation_pb2.BatchEvaluateUsersRequest,
            user_ids=st.lists(_ids, max_size=3),
            segment_names=_lists,
            consistency=_consistency,
        ),
    ),
    (
        "evaluation",
        "ExplainEvaluation",
        "unary",
        st.builds(
            evaluation_pb2.ExplainEvaluationRequest,
            user_id=_ids,
            segment_name=_names,
            consistency=_consistency,
        ),
    ),
    (
        "evaluation",
        "ListSegmentMembers",
        "server_stream",
        st.builds(
            evaluation_pb2.ListSegmentMembersRequest,
            segment_name=_names,
            page_size=_int32,
            page_token=_tokens,
        ),
    ),
    (
        "evaluation",
        "CountSegmentMembers",
        "unary",
        st.builds(evaluation_pb2.CountSegmentMembersRequest, segment_name=_names),
    ),
    (
        "evaluation",
        "GetSegmentStats",
        "unary",
        st.builds(
            evaluation_pb2.GetSegmentStatsRequest,
            segment_name=_names,
            numeric_traits=_numeric_traits,
            group_by=st.sampled_from(("", "plan", "company.country")) | _texts,
        ),
    ),
    (
        "evaluation",
        "CompareSegments",
        "unary",
        st.builds(
            evaluation_pb2.CompareSegmentsRequest,
            segment_names=st.lists(_names, max_size=3),
            numeric_traits=_numeric_traits,
        ),
    ),
    (
        "lists",
        "CreateUserList",
        "unary",
        st.builds(
            user_lists_pb2.CreateUserListRequest,
            user_list=st.builds(user_lists_pb2.UserList, name=_list_names, description=_texts),
        ),
    ),
    ("lists", "GetUserList", "unary", st.builds(user_lists_pb2.GetUserListRequest, name=_list_names)),
    (
        "lists",
        "ListUserLists",
        "unary",
        st.builds(user_lists_pb2.ListUserListsRequest, page_size=_int32, page_token=_tokens),
    ),
    ("lists", "DeleteUserList", "unary", st.builds(user_lists_pb2.DeleteUserListRequest, name=_list_names)),
    *(
        (
            "lists",
            method,
            "client_stream",
            st.lists(st.builds(message, name=_list_names, user_ids=st.lists(_ids, max_size=3)), max_size=2),
        )
        for method, message in (
            ("AddUserListMembers", user_lists_pb2.AddUserListMembersRequest),
            ("RemoveUserListMembers", user_lists_pb2.RemoveUserListMembersRequest),
            ("ReplaceUserListMembers", user_lists_pb2.ReplaceUserListMembersRequest),
        )
    ),
]
WRITES = frozenset(
    {
        "CreateSegment",
        "UpdateSegment",
        "BatchUpdateSegments",
        "DeleteSegment",
        "UpsertProfile",
        "DeleteProfile",
        "RecordEvents",
        "ImportProfiles",
        "CreateUserList",
        "DeleteUserList",
        "AddUserListMembers",
        "RemoveUserListMembers",
        "ReplaceUserListMembers",
    }
)


def _tagged(service: str, method: str, kind: str) -> Callable[[Any], tuple[str, str, str, Any]]:
    return lambda request: (service, method, kind, request)


_calls = st.one_of([request.map(_tagged(service, method, kind)) for service, method, kind, request in CALLS])


class Api:
    """The four stubs, and what the checks need of them."""

    def __init__(self, segments: Any, profiles: Any, evaluation: Any, lists: Any) -> None:
        self.stubs = {"segments": segments, "profiles": profiles, "evaluation": evaluation, "lists": lists}

    async def send(self, service: str, method: str, kind: str, request: Any) -> tuple[grpc.StatusCode, str]:
        call: Callable[..., Any] = getattr(self.stubs[service], method)
        try:
            if kind == "client_stream":
                await call(iter(request))
            elif kind == "server_stream":
                async for _ in call(request):
                    pass
            else:
                await call(request)
        except grpc.aio.AioRpcError as error:
            return error.code(), str(error.details())
        return grpc.StatusCode.OK, ""

    async def state(self) -> tuple[Any, ...]:
        """Everything a write may change: segments, the pool's profiles, event counts, user lists."""
        listed = await self.stubs["segments"].ListSegments(segments_pb2.ListSegmentsRequest(page_size=1000))
        segments = sorted((s.name, s.etag) for s in listed.segments)
        profiles = []
        for user_id in POOL:
            code, _ = await self.send(
                "profiles", "GetProfile", "unary", profiles_pb2.GetProfileRequest(user_id=user_id)
            )
            if code == grpc.StatusCode.OK:
                profile = await self.stubs["profiles"].GetProfile(
                    profiles_pb2.GetProfileRequest(user_id=user_id)
                )
                profiles.append((user_id, json_format.MessageToJson(profile.traits, sort_keys=True)))
        explained = []
        for user_id, _ in profiles:
            request = evaluation_pb2.ExplainEvaluationRequest(
                user_id=user_id, segment_name="fz-events", consistency=evaluation_pb2.STRONG
            )
            answer = await self.stubs["evaluation"].ExplainEvaluation(request)
            explained.append(answer.explanation.detail)
        listed_lists = await self.stubs["lists"].ListUserLists(
            user_lists_pb2.ListUserListsRequest(page_size=1000)
        )
        lists = sorted((user_list.name, user_list.member_count) for user_list in listed_lists.user_lists)
        return tuple(segments), tuple(profiles), tuple(explained), tuple(lists)

    async def members(self, name: str) -> set[str]:
        request = evaluation_pb2.ListSegmentMembersRequest(segment_name=name)
        return {
            u
            async for message in self.stubs["evaluation"].ListSegmentMembers(request)
            for u in message.user_ids
        }

    async def in_segment(self, user_id: str, name: str) -> bool:
        request = evaluation_pb2.EvaluateUserRequest(
            user_id=user_id, segment_names=[name], consistency=evaluation_pb2.STRONG
        )
        return name in (await self.stubs["evaluation"].EvaluateUser(request)).segments


def _assert_honest(method: str, code: grpc.StatusCode, details: str) -> None:
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (method, code, details)
    assert len(details) <= MAX_DETAILS_LENGTH, (method, len(details))
    for internal in INTERNALS:
        assert internal not in details, (method, details)


async def _check_members_match_verdicts(api: Api) -> None:
    listed = await api.stubs["segments"].ListSegments(segments_pb2.ListSegmentsRequest(page_size=1000))
    members = {segment.name: await api.members(segment.name) for segment in listed.segments}
    everyone = set().union(*members.values()) | set(POOL)
    for user_id in everyone:
        code, _ = await api.send(
            "profiles", "GetProfile", "unary", profiles_pb2.GetProfileRequest(user_id=user_id)
        )
        if code != grpc.StatusCode.OK:
            assert not any(user_id in ids for ids in members.values())
            continue
        for name, ids in members.items():
            assert (user_id in ids) == await api.in_segment(user_id, name), (user_id, name)


EVENTS_SEGMENT = {
    "name": "fz-events",
    "rule": {"event": {"name": "login", "operator": "GREATER_THAN", "count": 0}},
}
LISTED_SEGMENT = {"name": "fz-listed", "rule": {"in_list": {"name": "fl-a"}}}


@pytest.fixture
def lists(channel: grpc.aio.Channel) -> user_lists_pb2_grpc.UserListServiceAsyncStub:
    return user_lists_pb2_grpc.UserListServiceStub(channel)


async def _seed(segments: Any, lists: Any) -> None:
    """The segments and the list every example starts with (once per server)."""
    if (await segments.ListSegments(segments_pb2.ListSegmentsRequest())).segments:
        return
    await lists.CreateUserList(
        user_lists_pb2.CreateUserListRequest(user_list=user_lists_pb2.UserList(name="fl-a"))
    )
    for definition in (EVENTS_SEGMENT, LISTED_SEGMENT):
        await segments.CreateSegment(
            segments_pb2.CreateSegmentRequest(
                segment=json_format.ParseDict(definition, segments_pb2.Segment())
            )
        )


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(calls=st.lists(_calls, min_size=1, max_size=4))
async def test_fuzz__every_rpc__honest_status_no_partial_write_members_match_verdicts(
    segments, profiles, evaluation, lists, calls
):
    api = Api(segments, profiles, evaluation, lists)
    await _seed(segments, lists)
    for service, method, kind, request in calls:
        before = await api.state() if method in WRITES else None
        code, details = await api.send(service, method, kind, request)
        _assert_honest(method, code, details)
        if before is not None and code != grpc.StatusCode.OK:
            assert await api.state() == before, (method, code, details)
    await _check_members_match_verdicts(api)


def test_fuzz_calls__cover_every_rpc_of_every_service():
    served = {
        method.name
        for module in (segments_pb2, profiles_pb2, evaluation_pb2, user_lists_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert {method for _, method, _, _ in CALLS} == served
