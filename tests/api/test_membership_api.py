"""ListSegmentMembers and CountSegmentMembers: computed by the database, equal to the Python verdicts."""

from __future__ import annotations

import base64
from typing import Any

import grpc
import pytest

from segmentd_client.v1 import evaluation_pb2, segments_pb2
from tests.api.conftest import create_segment, segment_message, upsert

UPGRADE = {
    "name": "upgrade-candidates",
    "rule": {
        "all": {
            "rules": [
                {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
                {
                    "condition": {
                        "attribute": "seats_used_pct",
                        "operator": "GREATER_THAN_OR_EQUALS",
                        "value": 80,
                    }
                },
                {
                    "none": {
                        "rules": [
                            {"condition": {"attribute": "churned", "operator": "EQUALS", "value": True}}
                        ]
                    }
                },
            ]
        }
    },
}


def _traits(i: int) -> dict[str, Any]:
    traits: dict[str, Any] = {"plan": ["free", "pro", "FREE"][i % 3], "seats_used_pct": (i * 7) % 100}
    if i % 5 == 0:
        traits["churned"] = True
    if i % 11 == 0:
        traits["seats_used_pct"] = "95"  # a string is not a number
    return traits


@pytest.fixture
async def population(segments, profiles) -> list[str]:
    await create_segment(segments, UPGRADE)
    for i in range(60):
        await upsert(profiles, f"user-{i:03}", _traits(i))
    return [f"user-{i:03}" for i in range(60)]


async def _members(evaluation, page_size: int = 0, page_token: str = "", name: str = "upgrade-candidates"):
    request = evaluation_pb2.ListSegmentMembersRequest(
        segment_name=name, page_size=page_size, page_token=page_token
    )
    return [message async for message in evaluation.ListSegmentMembers(request)]


async def test_list_members__equals_the_python_verdict_for_every_profile(population, evaluation):
    # Given
    expected = []
    for user_id in population:
        verdict = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))
        if "upgrade-candidates" in verdict.segments:
            expected.append(user_id)

    # When
    messages = await _members(evaluation)
    count = await evaluation.CountSegmentMembers(
        evaluation_pb2.CountSegmentMembersRequest(segment_name="upgrade-candidates")
    )

    # Then
    listed = [user_id for message in messages for user_id in message.user_ids]
    assert listed == expected and len(expected) > 3
    assert messages[-1].next_page_token == ""
    assert (count.count, count.segment_version) == (len(expected), 1)


async def test_list_members__pages_resume_exactly_where_the_last_ended(population, evaluation):
    everyone = [u for m in await _members(evaluation) for u in m.user_ids]
    pages, token = [], ""
    while True:
        messages = await _members(evaluation, page_size=2, page_token=token)
        pages.append([u for m in messages for u in m.user_ids])
        token = messages[-1].next_page_token
        if not token:
            break
    assert [u for page in pages for u in page] == everyone
    assert all(len(page) == 2 for page in pages[:-1])


async def test_list_members__empty_segment__one_empty_final_message(segments, evaluation):
    await create_segment(segments, {"name": "nobody", "rule": {"any": {"rules": []}}})
    messages = await _members(evaluation, name="nobody")
    assert [(list(m.user_ids), m.next_page_token) for m in messages] == [([], "")]


async def test_list_members__tampered_token__invalid_argument(population, evaluation):
    token = (await _members(evaluation, page_size=1))[-1].next_page_token
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (tampered, "garbage!", token[:-2]):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _members(evaluation, page_size=1, page_token=bad)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in str(raised.value.details())


async def test_list_members__token_of_another_segment__invalid_argument(population, segments, evaluation):
    await create_segment(segments, {**UPGRADE, "name": "other"})
    token = (await _members(evaluation, page_size=1))[-1].next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _members(evaluation, page_size=1, page_token=token, name="other")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "belongs to segment" in str(raised.value.details())


async def test_list_members__token_of_an_older_version__invalid_argument(population, segments, evaluation):
    token = (await _members(evaluation, page_size=1))[-1].next_page_token
    current = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="upgrade-candidates"))
    changed = segment_message({**UPGRADE, "description": "v2"})
    changed.etag = current.etag
    await segments.UpdateSegment(segments_pb2.UpdateSegmentRequest(segment=changed))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _members(evaluation, page_size=1, page_token=token)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "version 1" in str(raised.value.details())


@pytest.mark.parametrize("page_size", [-1, 10_000_000])
async def test_list_members__page_size_out_of_bounds__invalid_argument(population, evaluation, page_size):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _members(evaluation, page_size=page_size)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in str(raised.value.details())


async def test_count_members__unknown_segment__not_found(evaluation):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await evaluation.CountSegmentMembers(evaluation_pb2.CountSegmentMembersRequest(segment_name="nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
