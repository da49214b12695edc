"""SegmentService over gRPC: CRUD, versions, etags, references, and precise errors."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from segmentd_client.v1 import segments_pb2
from tests.api.conftest import create_segment, segment_message

PAYING = {
    "name": "paying",
    "rule": {"condition": {"attribute": "plan", "operator": "IN", "value": ["pro", "team"]}},
}


def _reference(name: str, target: str) -> dict[str, Any]:
    return {"name": name, "rule": {"any": {"rules": [{"segment": {"name": target}}]}}}


async def test_create_segment__json_form__is_stored_as_version_1(segments):
    # Given
    definition = {
        "name": "upgrade-candidates",
        "description": "free users close to their seat limit",
        "labels": {"team": "billing"},
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
                        "event": {
                            "name": "invite_sent",
                            "operator": "GREATER_THAN_OR_EQUALS",
                            "count": 3,
                            "within_days": 30,
                        }
                    },
                ]
            }
        },
    }

    # When
    created = await create_segment(segments, definition)
    fetched = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="upgrade-candidates"))

    # Then
    assert created.version == 1 and created.etag
    assert fetched == created
    assert fetched.rule == segment_message(definition).rule
    assert dict(fetched.labels) == {"team": "billing"}


async def test_create_segment__taken_name__already_exists(segments):
    await create_segment(segments, PAYING)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create_segment(segments, PAYING)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({}, "segment.rule"),
        (
            {"condition": {"attribute": "plan", "operator": "OPERATOR_UNSPECIFIED", "value": "x"}},
            "segment.rule.condition.operator",
        ),
        ({"condition": {"attribute": "", "operator": "EXISTS"}}, "segment.rule.condition.attribute"),
        (
            {
                "any": {
                    "rules": [
                        {"condition": {"attribute": "a", "operator": "EXISTS"}},
                        {"condition": {"attribute": "plan", "operator": "IN", "value": "pro"}},
                    ]
                }
            },
            "segment.rule.any.rules[1].condition.value",
        ),
        (
            {"condition": {"attribute": "x", "operator": "BETWEEN", "value": [1]}},
            "segment.rule.condition.value",
        ),
        (
            {"condition": {"attribute": "x", "operator": "BEFORE", "value": "yesterday"}},
            "segment.rule.condition.value",
        ),
        (
            {"condition": {"attribute": "v", "operator": "SEMVER_LESS_THAN", "value": "1.2"}},
            "segment.rule.condition.value",
        ),
        (
            {"condition": {"attribute": "e", "operator": "MATCHES_REGEX", "value": "(a)\\1"}},
            "segment.rule.condition.value",
        ),
        (
            {"condition": {"attribute": "x", "operator": "EXISTS", "ignore_case": True}},
            "segment.rule.condition.ignore_case",
        ),
        ({"event": {"name": "login", "operator": "CONTAINS", "count": 1}}, "segment.rule.event.operator"),
        ({"split": {"salt": "s", "from_percent": 50, "to_percent": 10}}, "segment.rule.split"),
        (
            {"none": {"rules": [{"segment": {"name": "does-not-exist"}}]}},
            "segment.rule.none.rules[0].segment.name",
        ),
    ],
)
async def test_create_segment__bad_rule__invalid_argument_naming_the_path(segments, rule, field):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create_segment(segments, {"name": "bad", "rule": rule})
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(raised.value.details()).startswith(field), str(raised.value.details())
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await segments.GetSegment(segments_pb2.GetSegmentRequest(name="bad"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("name", ["", "Upper", "has space", "x" * 64, "ünï"])
async def test_create_segment__bad_name__invalid_argument(segments, name):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create_segment(segments, {**PAYING, "name": name})
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "segment.name" in str(raised.value.details())


async def test_update_segment__current_etag__new_version_and_old_one_kept(segments):
    # Given
    created = await create_segment(segments, PAYING)
    changed = segment_message({**PAYING, "description": "pro only"})
    changed.etag = created.etag

    # When
    updated = await segments.UpdateSegment(
        segments_pb2.UpdateSegmentRequest(
            segment=changed, update_mask=field_mask_pb2.FieldMask(paths=["description"])
        )
    )

    # Then
    assert (updated.version, updated.description) == (2, "pro only")
    assert updated.etag != created.etag
    first = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="paying", version=1))
    assert first.description == "" and first.version == 1


async def test_update_segment__stale_etag__aborted_and_unchanged(segments):
    created = await create_segment(segments, PAYING)
    changed = segment_message({**PAYING, "description": "first"})
    changed.etag = created.etag
    await segments.UpdateSegment(segments_pb2.UpdateSegmentRequest(segment=changed))

    changed.description = "second"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.UpdateSegment(segments_pb2.UpdateSegmentRequest(segment=changed))

    assert raised.value.code() == grpc.StatusCode.ABORTED
    current = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="paying"))
    assert (current.version, current.description) == (2, "first")


async def test_update_segment__concurrent_same_etag__exactly_one_wins(segments):
    created = await create_segment(segments, PAYING)

    async def update(description: str) -> grpc.StatusCode:
        changed = segment_message({**PAYING, "description": description})
        changed.etag = created.etag
        try:
            await segments.UpdateSegment(segments_pb2.UpdateSegmentRequest(segment=changed))
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    outcomes = await asyncio.gather(*(update(f"writer {i}") for i in range(6)))

    assert outcomes.count(grpc.StatusCode.OK) == 1
    assert set(outcomes) == {grpc.StatusCode.OK, grpc.StatusCode.ABORTED}
    assert (await segments.GetSegment(segments_pb2.GetSegmentRequest(name="paying"))).version == 2


async def test_update_segment__unknown_mask_path__invalid_argument(segments):
    created = await create_segment(segments, PAYING)
    changed = segment_message(PAYING)
    changed.etag = created.etag
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.UpdateSegment(
            segments_pb2.UpdateSegmentRequest(
                segment=changed, update_mask=field_mask_pb2.FieldMask(paths=["version"])
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask" in str(raised.value.details())


async def test_update_segment__would_make_a_cycle__invalid_argument(segments):
    await create_segment(segments, PAYING)
    await create_segment(segments, _reference("wrapper", "paying"))
    current = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="paying"))
    cyclic = segment_message(_reference("paying", "wrapper"))
    cyclic.etag = current.etag
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.UpdateSegment(segments_pb2.UpdateSegmentRequest(segment=cyclic))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "segment.rule" in str(raised.value.details())


async def test_delete_segment__referenced__failed_precondition_until_referrer_deleted(segments):
    await create_segment(segments, PAYING)
    await create_segment(segments, _reference("wrapper", "paying"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="paying"))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "wrapper" in str(raised.value.details())

    await segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="wrapper"))
    await segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="paying"))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await segments.GetSegment(segments_pb2.GetSegmentRequest(name="paying"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_segments__pages_and_label_filter(segments):
    for i in range(7):
        await create_segment(segments, {**PAYING, "name": f"s{i}", "labels": {"team": "a" if i % 2 else "b"}})

    names, token = [], ""
    while True:
        page = await segments.ListSegments(segments_pb2.ListSegmentsRequest(page_size=3, page_token=token))
        names += [s.name for s in page.segments]
        token = page.next_page_token
        if not token:
            break
    filtered = await segments.ListSegments(segments_pb2.ListSegmentsRequest(labels={"team": "a"}))

    assert names == [f"s{i}" for i in range(7)]
    assert [s.name for s in filtered.segments] == ["s1", "s3", "s5"]


async def test_list_segments__garbage_token__invalid_argument(segments):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.ListSegments(segments_pb2.ListSegmentsRequest(page_token="not-a-token"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in str(raised.value.details())


async def test_get_segment__unknown_version__not_found(segments):
    await create_segment(segments, PAYING)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await segments.GetSegment(segments_pb2.GetSegmentRequest(name="paying", version=7))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
