"""UserListService over a real server and store, and in_list on the hot path (both stores)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import grpc
import pytest

from segmentd.server import RunningServer
from segmentd_client.v1 import evaluation_pb2, segments_pb2, user_lists_pb2, user_lists_pb2_grpc
from tests.api.conftest import create_segment, upsert
from tests.statements import recorded_statements

BETA = {"name": "beta", "rule": {"in_list": {"name": "beta-testers"}}}


@pytest.fixture
def lists(channel: grpc.aio.Channel) -> user_lists_pb2_grpc.UserListServiceAsyncStub:
    return user_lists_pb2_grpc.UserListServiceStub(channel)


def _messages(kind, name: str, batches: Iterable[Sequence[str]]):
    request = {
        "add": user_lists_pb2.AddUserListMembersRequest,
        "remove": user_lists_pb2.RemoveUserListMembersRequest,
        "replace": user_lists_pb2.ReplaceUserListMembersRequest,
    }[kind]
    return [
        request(name=name if index == 0 else "", user_ids=list(batch)) for index, batch in enumerate(batches)
    ]


async def _change(lists, kind: str, name: str, *batches: Sequence[str]) -> int:
    method = {
        "add": lists.AddUserListMembers,
        "remove": lists.RemoveUserListMembers,
        "replace": lists.ReplaceUserListMembers,
    }[kind]
    response = await method(iter(_messages(kind, name, batches or ([],))))
    return int(response.member_count)


async def _create(lists, name: str = "beta-testers", description: str = ""):
    return await lists.CreateUserList(
        user_lists_pb2.CreateUserListRequest(
            user_list=user_lists_pb2.UserList(name=name, description=description)
        )
    )


async def _segments_of(evaluation, user_id: str) -> list[str]:
    response = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))
    return list(response.segments)


async def test_user_list__create_get_list_delete(lists):
    # Given
    created = await _create(lists, "beta-testers", "people who asked")
    await _create(lists, "alpha")

    # When
    count = await _change(lists, "add", "beta-testers", ["u1", "u2"], ["u2", "u3"])
    got = await lists.GetUserList(user_lists_pb2.GetUserListRequest(name="beta-testers"))
    first = await lists.ListUserLists(user_lists_pb2.ListUserListsRequest(page_size=1))
    second = await lists.ListUserLists(
        user_lists_pb2.ListUserListsRequest(page_size=1, page_token=first.next_page_token)
    )
    await lists.DeleteUserList(user_lists_pb2.DeleteUserListRequest(name="alpha"))

    # Then
    assert created.member_count == 0 and created.description == "people who asked"
    assert count == 3 and got.member_count == 3
    assert [user_list.name for user_list in first.user_lists] == ["alpha"]
    assert [user_list.name for user_list in second.user_lists] == ["beta-testers"]
    assert second.next_page_token == ""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lists.GetUserList(user_lists_pb2.GetUserListRequest(name="alpha"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_page_tokens__of_another_listing__invalid_argument_naming_the_listing(lists, segments):
    # Given: a next-page token of each listing by name
    for name in ("a", "b"):
        await _create(lists, name)
        rule = {"condition": {"attribute": "plan", "operator": "EQUALS", "value": name}}
        await create_segment(segments, {"name": name, "rule": rule})
    list_token = (await lists.ListUserLists(user_lists_pb2.ListUserListsRequest(page_size=1))).next_page_token
    segment_token = (
        await segments.ListSegments(segments_pb2.ListSegmentsRequest(page_size=1))
    ).next_page_token

    # When: each is given to the other listing
    with pytest.raises(grpc.aio.AioRpcError) as to_lists:
        await lists.ListUserLists(user_lists_pb2.ListUserListsRequest(page_token=segment_token))
    with pytest.raises(grpc.aio.AioRpcError) as to_segments:
        await segments.ListSegments(segments_pb2.ListSegmentsRequest(page_token=list_token))

    # Then: refused, naming the field and the listing that was called
    assert to_lists.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert to_lists.value.details() == "page_token: is not a token issued by ListUserLists"
    assert to_segments.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert to_segments.value.details() == "page_token: is not a token issued by ListSegments"


async def test_user_list__add_remove_replace__member_counts(lists):
    await _create(lists)

    assert await _change(lists, "add", "beta-testers", ["a", "b", "c"]) == 3
    assert await _change(lists, "add", "beta-testers", ["c", "d"]) == 4
    assert await _change(lists, "remove", "beta-testers", ["a", "zz"]) == 3
    assert await _change(lists, "replace", "beta-testers", ["d", "e"], ["e", "f"]) == 3
    assert await _change(lists, "replace", "beta-testers") == 0


async def test_in_list__member_changes__seen_by_the_next_evaluation(segments, profiles, evaluation, lists):
    # Given: a segment over a list, and a cached verdict for each user
    await _create(lists)
    await create_segment(segments, BETA)
    for user_id in ("u1", "u2"):
        await upsert(profiles, user_id, {"plan": "free"})
    assert await _segments_of(evaluation, "u1") == []

    # When / Then: every change is seen by the very next call on this replica
    await _change(lists, "add", "beta-testers", ["u1"])
    assert await _segments_of(evaluation, "u1") == ["beta"]
    assert await _segments_of(evaluation, "u2") == []
    await _change(lists, "replace", "beta-testers", ["u2"])
    assert await _segments_of(evaluation, "u1") == []
    assert await _segments_of(evaluation, "u2") == ["beta"]
    await _change(lists, "remove", "beta-testers", ["u2"])
    assert await _segments_of(evaluation, "u2") == []


async def test_in_list__cache_miss__one_statement(
    segments, profiles, evaluation, lists, server: RunningServer
):
    # Given
    await _create(lists)
    await create_segment(segments, BETA)
    await upsert(profiles, "u1", {"plan": "free"})
    await _change(lists, "add", "beta-testers", ["u1"])
    await _segments_of(evaluation, "u1")  # the catalogue is read
    server.profile_cache.clear()
    with recorded_statements(server.engine) as statements:
        # When
        segments_in = await _segments_of(evaluation, "u1")

    # Then
    assert segments_in == ["beta"]
    reads = [s for s in statements if "profiles" in s or "user_list_members" in s]
    assert len(reads) == 1, statements
    assert "user_list_members" in reads[0]


async def test_delete_user_list__referenced_by_a_segment__failed_precondition(segments, lists):
    await _create(lists)
    await create_segment(segments, BETA)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lists.DeleteUserList(user_lists_pb2.DeleteUserListRequest(name="beta-testers"))

    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "beta" in (error.value.details() or "")
    await segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="beta"))
    await lists.DeleteUserList(user_lists_pb2.DeleteUserListRequest(name="beta-testers"))


async def test_create_segment__unknown_list__invalid_argument_naming_the_field(segments):
    rule = {"all": {"rules": [{"condition": {"attribute": "plan", "operator": "EXISTS"}}, BETA["rule"]]}}

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create_segment(segments, {"name": "beta", "rule": rule})

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("segment.rule.all.rules[1].in_list.name:")


@pytest.mark.parametrize(
    ("kind", "name", "batches", "field"),
    [
        ("add", "", [["u1"]], "name"),
        ("add", "Bad Name", [["u1"]], "name"),
        ("add", "beta-testers", [["u1"], ["", "u2"]], "user_ids[1]"),
        ("replace", "beta-testers", [["u1", "x" * 257]], "user_ids[1]"),
        ("remove", "beta-testers", [["u1\n"]], "user_ids[0]"),
    ],
)
async def test_change_members__bad_input__invalid_argument(lists, kind, name, batches, field):
    await _create(lists)
    await _change(lists, "add", "beta-testers", ["keep"])

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _change(lists, kind, name, *batches)

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(f"{field}:")
    got = await lists.GetUserList(user_lists_pb2.GetUserListRequest(name="beta-testers"))
    assert got.member_count == 1  # nothing was written


async def test_change_members__another_name_later_in_the_stream__invalid_argument(lists):
    await _create(lists)
    messages = [
        user_lists_pb2.AddUserListMembersRequest(name="beta-testers", user_ids=["u1"]),
        user_lists_pb2.AddUserListMembersRequest(name="other", user_ids=["u2"]),
    ]

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lists.AddUserListMembers(iter(messages))

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("kind", ["add", "remove", "replace"])
async def test_change_members__unknown_list__not_found(lists, kind):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _change(lists, kind, "nope", ["u1"])

    assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("name", "code"),
    [("", grpc.StatusCode.INVALID_ARGUMENT), ("Beta", grpc.StatusCode.INVALID_ARGUMENT)],
)
async def test_create_user_list__bad_name__invalid_argument(lists, name, code):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _create(lists, name)

    assert error.value.code() == code
    assert (error.value.details() or "").startswith("user_list.name:")


async def test_create_user_list__name_taken__already_exists(lists):
    await _create(lists)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _create(lists)

    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_in_list__members_and_count__computed_by_the_database(segments, profiles, evaluation, lists):
    # Given: a list naming two profiles and an id without one
    await _create(lists)
    await create_segment(segments, BETA)
    for user_id in ("u1", "u2", "u3"):
        await upsert(profiles, user_id, {})
    await _change(lists, "add", "beta-testers", ["u3", "u1", "no-profile"])

    # When
    count = await evaluation.CountSegmentMembers(
        evaluation_pb2.CountSegmentMembersRequest(segment_name="beta")
    )
    listed = [
        user_id
        async for message in evaluation.ListSegmentMembers(
            evaluation_pb2.ListSegmentMembersRequest(segment_name="beta")
        )
        for user_id in message.user_ids
    ]

    # Then
    assert count.count == 2
    assert listed == ["u1", "u3"]


async def test_explain__in_list__says_whether_the_user_is_in_the_list(segments, profiles, evaluation, lists):
    await _create(lists)
    await create_segment(segments, BETA)
    await upsert(profiles, "u1", {})

    explained = await evaluation.ExplainEvaluation(
        evaluation_pb2.ExplainEvaluationRequest(user_id="u1", segment_name="beta")
    )

    assert not explained.matched
    assert explained.explanation.rule.in_list.name == "beta-testers"
    assert explained.explanation.detail == "not in user list 'beta-testers' does not hold"


async def test_list_change__invalidates_only_the_users_it_names(
    segments, profiles, evaluation, lists, server: RunningServer
):
    # Given: two cached users
    await _create(lists)
    await create_segment(segments, BETA)
    for user_id in ("u1", "u2"):
        await upsert(profiles, user_id, {})
    for _ in range(50):  # on PostgreSQL the upserts' own notifications may land late
        for user_id in ("u1", "u2"):
            await _segments_of(evaluation, user_id)
        if server.profile_cache.get("u1") and server.profile_cache.get("u2"):
            break

    # When
    await _change(lists, "add", "beta-testers", ["u1"])

    # Then: u2 keeps its entry (PostgreSQL: its notification names u1 only)
    assert server.profile_cache.get("u1") is None
    assert server.profile_cache.get("u2") is not None
    assert await _segments_of(evaluation, "u1") == ["beta"]
