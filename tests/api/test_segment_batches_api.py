"""SegmentService's validate_only, allow_missing and BatchUpdateSegments: checked, all or none."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from segmentd_client.v1 import evaluation_pb2, segments_pb2
from tests.api.conftest import create_segment, segment_message, upsert

FREE = {"name": "free", "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}}


def _reference(name: str, target: str) -> dict[str, Any]:
    return {"name": name, "rule": {"any": {"rules": [{"segment": {"name": target}}]}}}


def _apply(definition: dict[str, Any], etag: str = "") -> segments_pb2.UpdateSegmentRequest:
    segment = segment_message(definition)
    segment.etag = etag
    return segments_pb2.UpdateSegmentRequest(segment=segment, allow_missing=True)


async def _names(segments) -> list[str]:
    listed = await segments.ListSegments(segments_pb2.ListSegmentsRequest())
    return [segment.name for segment in listed.segments]


async def _refused(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == code, raised.value.details()
    return raised.value.details() or ""


async def test_create_segment__validate_only__returns_the_segment_and_writes_nothing(segments):
    # When
    preview = await segments.CreateSegment(
        segments_pb2.CreateSegmentRequest(segment=segment_message(FREE), validate_only=True)
    )

    # Then
    assert (preview.name, preview.version) == ("free", 1)
    assert await _names(segments) == []
    created = await create_segment(segments, FREE)  # the name is still free
    assert created.version == 1


async def test_create_segment__validate_only_with_a_missing_reference__invalid_argument(segments):
    details = await _refused(
        segments.CreateSegment(
            segments_pb2.CreateSegmentRequest(
                segment=segment_message(_reference("a", "nope")), validate_only=True
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("segment.rule.any.rules[0].segment") and "'nope' does not exist" in details


async def test_update_segment__validate_only__the_stored_version_stays(segments):
    # Given
    v1 = await create_segment(segments, FREE)
    changed = segment_message({**FREE, "description": "changed"})
    changed.etag = v1.etag

    # When
    preview = await segments.UpdateSegment(
        segments_pb2.UpdateSegmentRequest(segment=changed, validate_only=True)
    )

    # Then
    assert (preview.version, preview.description) == (2, "changed")
    stored = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="free"))
    assert (stored.version, stored.description, stored.etag) == (1, "", v1.etag)


async def test_update_segment__allow_missing__creates_then_updates_with_the_etag(segments):
    # When
    created = await segments.UpdateSegment(_apply(FREE))
    updated = await segments.UpdateSegment(_apply({**FREE, "description": "second"}, etag=created.etag))

    # Then
    assert (created.version, updated.version, updated.description) == (1, 2, "second")


@pytest.mark.parametrize(
    ("exists", "etag", "code"),
    [
        pytest.param(False, "stale", grpc.StatusCode.ABORTED, id="etag-for-a-missing-segment"),
        pytest.param(True, "", grpc.StatusCode.ABORTED, id="no-etag-for-an-existing-segment"),
    ],
)
async def test_update_segment__allow_missing_against_what_is_stored__aborted(segments, exists, etag, code):
    # Given
    if exists:
        await create_segment(segments, FREE)

    # When / Then
    await _refused(segments.UpdateSegment(_apply({**FREE, "description": "x"}, etag=etag)), code)
    names = await _names(segments)
    assert names == (["free"] if exists else [])


async def test_update_segment__allow_missing_without_a_rule__invalid_argument_names_it(segments):
    request = _apply(FREE)
    request.update_mask.paths.append("description")
    details = await _refused(segments.UpdateSegment(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith("segment.rule:")


async def test_batch__references_within_the_batch__written_in_order(segments, profiles, evaluation):
    # Given
    await upsert(profiles, "u1", {"plan": "free"})

    # When
    response = await segments.BatchUpdateSegments(
        segments_pb2.BatchUpdateSegmentsRequest(
            requests=[_apply(FREE), _apply(_reference("also-free", "free"))]
        )
    )

    # Then
    assert [(s.name, s.version) for s in response.segments] == [("free", 1), ("also-free", 1)]
    verdict = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="u1"))
    assert sorted(verdict.segments) == ["also-free", "free"]


async def test_batch__one_invalid_request__nothing_written_and_its_index_named(segments):
    # Given
    v1 = await create_segment(segments, FREE)
    bad = {"name": "bad", "rule": {"condition": {"attribute": "mrr", "operator": "LESS_THAN"}}}

    # When
    details = await _refused(
        segments.BatchUpdateSegments(
            segments_pb2.BatchUpdateSegmentsRequest(
                requests=[
                    _apply({**FREE, "description": "changed"}, v1.etag),
                    _apply(_reference("ok", "free")),
                    _apply(bad),
                ]
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    # Then
    assert details.startswith("requests[2].segment.rule.condition") and "segment 'bad': " in details
    assert await _names(segments) == ["free"]
    stored = await segments.GetSegment(segments_pb2.GetSegmentRequest(name="free"))
    assert (stored.version, stored.description) == (1, "")


async def test_batch__a_stale_etag__aborted_and_nothing_written(segments):
    # Given
    await create_segment(segments, FREE)

    # When
    await _refused(
        segments.BatchUpdateSegments(
            segments_pb2.BatchUpdateSegmentsRequest(
                requests=[_apply(_reference("new", "free")), _apply(FREE, "stale")]
            )
        ),
        grpc.StatusCode.ABORTED,
    )

    # Then
    assert await _names(segments) == ["free"]


async def test_batch__a_cycle_made_by_two_requests__invalid_argument_and_nothing_written(segments):
    # Given a <- b: b references a
    a = await create_segment(segments, FREE | {"name": "a"})
    await create_segment(segments, _reference("b", "a"))

    # When c references b, and a is changed to reference c: a -> c -> b -> a
    details = await _refused(
        segments.BatchUpdateSegments(
            segments_pb2.BatchUpdateSegmentsRequest(
                requests=[_apply(_reference("c", "b")), _apply(_reference("a", "c"), a.etag)]
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    # Then
    assert details.startswith("requests[1].segment.rule.any.rules[0].segment") and "cycle" in details
    assert await _names(segments) == ["a", "b"]


async def test_batch__validate_only__checks_the_whole_set_and_writes_nothing(segments):
    # When: the second references the first, which does not exist outside the batch
    response = await segments.BatchUpdateSegments(
        segments_pb2.BatchUpdateSegmentsRequest(
            requests=[_apply(FREE), _apply(_reference("also-free", "free"))], validate_only=True
        )
    )

    # Then
    assert [s.name for s in response.segments] == ["free", "also-free"]
    assert await _names(segments) == []


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        pytest.param([], "requests", id="empty"),
        pytest.param([_apply(FREE)] * 1001, "requests", id="too-many"),
        pytest.param(
            [_apply(FREE), _apply({**FREE, "description": "twice"})], "requests[1].segment.name", id="twice"
        ),
        pytest.param(
            [
                segments_pb2.UpdateSegmentRequest(
                    segment=segment_message(FREE), allow_missing=True, validate_only=True
                )
            ],
            "requests[0].validate_only",
            id="child-validate-only",
        ),
        pytest.param(
            [_apply(FREE), segments_pb2.UpdateSegmentRequest(segment=segment_message(FREE | {"name": "x"}))],
            "requests[1].segment.etag",
            id="update-without-etag",
        ),
    ],
)
async def test_batch__malformed__invalid_argument_names_the_field(segments, requests, field):
    details = await _refused(
        segments.BatchUpdateSegments(segments_pb2.BatchUpdateSegmentsRequest(requests=requests)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith(f"{field}:"), details
    assert await _names(segments) == []
