"""Request messages both clients send, and the apply decision they share.

Kept apart from the transport so that ``Client`` and ``AsyncClient`` differ only in how
they call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from segmentd_client._convert import (
    CONSISTENCY_BY_NAME,
    event_to_proto,
    profile_to_proto,
    segment_to_proto,
    struct_of,
)
from segmentd_client.definitions import DefinitionError, check_nesting, load_definitions
from segmentd_client.types import ApplyAction, ApplyResult, Consistency, Event
from segmentd_client.v1 import evaluation_pb2, profiles_pb2, segments_pb2

#: What ``apply_segment`` accepts: a definition, or the path of a file holding one.
DefinitionInput = Mapping[str, Any] | str | Path


def evaluate_user(
    user_id: str, segment_names: Sequence[str], consistency: Consistency
) -> evaluation_pb2.EvaluateUserRequest:
    """The request of ``evaluate_user``."""
    return evaluation_pb2.EvaluateUserRequest(
        user_id=user_id, segment_names=segment_names, consistency=CONSISTENCY_BY_NAME[consistency]
    )


def evaluate_profile(
    traits: Mapping[str, Any], segment_names: Sequence[str], user_id: str
) -> evaluation_pb2.EvaluateProfileRequest:
    """The request of ``evaluate_profile``."""
    return evaluation_pb2.EvaluateProfileRequest(
        traits=struct_of(traits), segment_names=segment_names, user_id=user_id
    )


def explain(
    user_id: str, segment_name: str, consistency: Consistency
) -> evaluation_pb2.ExplainEvaluationRequest:
    """The request of ``explain``."""
    return evaluation_pb2.ExplainEvaluationRequest(
        user_id=user_id, segment_name=segment_name, consistency=CONSISTENCY_BY_NAME[consistency]
    )


def upsert_profile(
    user_id: str, traits: Mapping[str, Any], replace: bool
) -> profiles_pb2.UpsertProfileRequest:
    """The request of ``upsert_profile``."""
    return profiles_pb2.UpsertProfileRequest(profile=profile_to_proto(user_id, traits), replace=replace)


def record_events(events: Iterable[Event]) -> profiles_pb2.RecordEventsRequest:
    """The request of ``record_events``."""
    return profiles_pb2.RecordEventsRequest(events=[event_to_proto(event) for event in events])


def list_segments(labels: Mapping[str, str], page_token: str) -> segments_pb2.ListSegmentsRequest:
    """One page's request of ``list_segments``."""
    return segments_pb2.ListSegmentsRequest(labels=labels, page_token=page_token, page_size=1000)


def members(segment_name: str, page_size: int, page_token: str) -> evaluation_pb2.ListSegmentMembersRequest:
    """The request of one attempt at a member listing."""
    return evaluation_pb2.ListSegmentMembersRequest(
        segment_name=segment_name, page_size=page_size, page_token=page_token
    )


def desired_segment(definition: DefinitionInput) -> segments_pb2.Segment:
    """The segment a definition (or a file holding exactly one) describes.

    Raises:
        DefinitionError: the file cannot be read, or does not hold exactly one definition,
            or the definition is malformed.
    """
    if isinstance(definition, str | Path):
        found = load_definitions(definition)
        if len(found) != 1:
            raise DefinitionError(f"{definition}: holds {len(found)} definitions; use apply_segments")
        definition = found[0]
    check_nesting(definition)
    try:
        return segment_to_proto(definition)
    except ValueError as exc:
        raise DefinitionError(f"segment {definition.get('name')!r}: {exc}") from None


def apply_action(desired: segments_pb2.Segment, current: segments_pb2.Segment | None) -> ApplyAction:
    """What applying ``desired`` over ``current`` (None: no such segment) does."""
    if current is None:
        return "created"
    same = (
        desired.description == current.description
        and dict(desired.labels) == dict(current.labels)
        and desired.rule == current.rule
    )
    return "unchanged" if same else "updated"


def update(
    desired: segments_pb2.Segment, current: segments_pb2.Segment | None
) -> segments_pb2.UpdateSegmentRequest:
    """The request making a segment ``desired``: replacing ``current``, or creating it (None).

    The etag is the one read (empty when there was no segment), so a segment changed or
    created by someone else in the meantime makes the write fail with ``Aborted``.
    """
    segment = segments_pb2.Segment()
    segment.CopyFrom(desired)
    segment.etag = "" if current is None else current.etag
    return segments_pb2.UpdateSegmentRequest(segment=segment, allow_missing=True)


def apply_request(
    desired: Sequence[segments_pb2.Segment],
    current: Sequence[segments_pb2.Segment | None],
    *,
    dry_run: bool,
) -> segments_pb2.UpdateSegmentRequest | segments_pb2.BatchUpdateSegmentsRequest | None:
    """The one call writing every definition that differs from its segment; None if none does.

    One definition applied is an ``UpdateSegment`` (its errors name ``segment.…``); of
    several, what changed is one ``BatchUpdateSegments``, all or none, even when only one
    did: its errors name the request and the segment (``requests[i].segment.…: segment
    'name': …``), so a refusal says which of the definitions it was.
    """
    requests = [
        update(wanted, found)
        for wanted, found in zip(desired, current, strict=True)
        if apply_action(wanted, found) != "unchanged"
    ]
    if not requests:
        return None
    if len(desired) == 1:
        requests[0].validate_only = dry_run
        return requests[0]
    return segments_pb2.BatchUpdateSegmentsRequest(requests=requests, validate_only=dry_run)


def apply_results(
    desired: Sequence[segments_pb2.Segment],
    current: Sequence[segments_pb2.Segment | None],
    written: Sequence[segments_pb2.Segment],
    *,
    dry_run: bool,
) -> list[ApplyResult]:
    """What applying ``desired`` did, given the segments the batch of ``apply_batch`` wrote."""
    results = []
    writes = iter(written)
    for wanted, found in zip(desired, current, strict=True):
        action = apply_action(wanted, found)
        before = None if found is None else found.version
        if action == "unchanged":
            results.append(ApplyResult(action, wanted.name, before, before, dry_run))
        else:
            after = next(writes).version
            results.append(ApplyResult(action, wanted.name, before, None if dry_run else after, dry_run))
    return results
