"""Protobuf messages to and from the client's plain values (``segmentd_client.types``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from segmentd_client.errors import InvalidArgument
from segmentd_client.types import (
    DEFINITION_KEYS,
    Consistency,
    Evaluation,
    Event,
    Explanation,
    ExplanationNode,
    Profile,
    Segment,
)
from segmentd_client.v1 import evaluation_pb2, profiles_pb2, rules_pb2, segments_pb2

CONSISTENCY_BY_NAME: Final[dict[Consistency, evaluation_pb2.Consistency.ValueType]] = {
    "cached": evaluation_pb2.CACHED,
    "strong": evaluation_pb2.STRONG,
}

# Keys a segment may carry when read back (``segmentd get -o json``); apply ignores them.
_OUTPUT_ONLY_KEYS: Final = frozenset(
    {"version", "etag", "create_time", "update_time", "createTime", "updateTime"}
)


def json_form(value: Any) -> Any:
    """Return ``value`` with integral floats as ints (Struct carries every number as a double)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: json_form(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_form(item) for item in value]
    return value


def message_to_json(message: Any) -> dict[str, Any]:
    """Return a message's JSON form, with the proto's field names."""
    result: dict[str, Any] = json_form(json_format.MessageToDict(message, preserving_proto_field_name=True))
    return result


def time_of(message: timestamp_pb2.Timestamp, is_set: bool = True) -> datetime | None:
    """Return a Timestamp as an aware datetime, or None when it is unset."""
    if not is_set:
        return None
    return message.ToDatetime(tzinfo=UTC)


#: The deepest traits the server stores (levels of objects and lists, the traits object first).
SERVER_MAX_TRAITS_DEPTH: Final = 16


class TraitsTooDeep(InvalidArgument):
    """Traits nest too deeply to be converted to a Struct (protobuf converts recursively)."""

    def __init__(self) -> None:
        super().__init__(
            f"traits: nested too deeply to send (traits hold at most {SERVER_MAX_TRAITS_DEPTH} levels)"
        )


def struct_of(data: Mapping[str, Any]) -> struct_pb2.Struct:
    """Return a JSON object as a Struct.

    Raises:
        TraitsTooDeep: the object nests too deeply to convert (an ``InvalidArgument``).
    """
    struct = struct_pb2.Struct()
    try:
        struct.update(dict(data))
    except RecursionError:  # protobuf converts recursively
        raise TraitsTooDeep from None
    return struct


_CONTAINERS: Final = (Mapping, list, tuple)


def nested_deeper_than(value: Any, levels: int) -> bool:
    """Whether JSON ``value`` holds lists or objects more than ``levels`` deep (``value`` is level 1).

    Any mapping counts as an object and any list or tuple as a list, as the conversions to
    protobuf take them. Walked level by level, without recursion, so any depth can be measured.
    """
    level = [value] if isinstance(value, _CONTAINERS) else []
    for _ in range(levels):
        level = [
            item
            for container in level
            for item in (container.values() if isinstance(container, Mapping) else container)
            if isinstance(item, _CONTAINERS)
        ]
        if not level:
            break
    return bool(level)


def segment_from_proto(message: segments_pb2.Segment) -> Segment:
    """Return a Segment message as a plain value."""
    return Segment(
        name=message.name,
        rule=message_to_json(message.rule),
        description=message.description,
        labels=dict(message.labels),
        version=message.version,
        etag=message.etag,
        create_time=time_of(message.create_time, message.HasField("create_time")),
        update_time=time_of(message.update_time, message.HasField("update_time")),
    )


def segment_to_proto(definition: Mapping[str, Any]) -> segments_pb2.Segment:
    """Return a segment definition (``name``, ``description``, ``labels``, ``rule``) as a message.

    Raises:
        ValueError: the definition has unknown keys or is not a valid segment.
    """
    unknown = sorted(set(definition) - set(DEFINITION_KEYS) - _OUTPUT_ONLY_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(DEFINITION_KEYS)}"
        )
    kept = {key: definition[key] for key in DEFINITION_KEYS if definition.get(key) is not None}
    try:
        return json_format.ParseDict(kept, segments_pb2.Segment())
    except json_format.ParseError as exc:
        raise ValueError(str(exc)) from None


def profile_from_proto(message: profiles_pb2.Profile) -> Profile:
    """Return a Profile message as a plain value."""
    return Profile(
        user_id=message.user_id,
        traits=json_form(json_format.MessageToDict(message.traits)),
        create_time=time_of(message.create_time, message.HasField("create_time")),
        update_time=time_of(message.update_time, message.HasField("update_time")),
    )


def profile_to_proto(user_id: str, traits: Mapping[str, Any]) -> profiles_pb2.Profile:
    """Return a Profile message for ``user_id`` with ``traits``."""
    return profiles_pb2.Profile(user_id=user_id, traits=struct_of(traits))


def event_to_proto(event: Event) -> profiles_pb2.Event:
    """Return an Event as a message (an unset time means now, for the server)."""
    message = profiles_pb2.Event(user_id=event.user_id, name=event.name, count=event.count)
    if event.time is not None:
        message.time.FromDatetime(event.time)
    return message


def evaluation_from_proto(
    message: evaluation_pb2.EvaluateUserResponse | evaluation_pb2.EvaluateProfileResponse,
) -> Evaluation:
    """Return an evaluation response as a plain value."""
    read_at: dict[str, datetime | None] = {}
    if isinstance(message, evaluation_pb2.EvaluateUserResponse):
        read_at["profile_read_at"] = time_of(message.profile_read_at, message.HasField("profile_read_at"))
        read_at["segments_read_at"] = time_of(message.segments_read_at, message.HasField("segments_read_at"))
    return Evaluation(
        segments=tuple(message.segments),
        evaluated_at=time_of(message.evaluated_at, message.HasField("evaluated_at")),
        **read_at,
    )


def explanation_from_proto(message: evaluation_pb2.ExplainEvaluationResponse) -> Explanation:
    """Return an ExplainEvaluation response as a plain value."""
    return Explanation(
        segment_name=message.segment_name,
        segment_version=message.segment_version,
        matched=message.matched,
        root=_node(message.explanation),
        evaluated_at=time_of(message.evaluated_at, message.HasField("evaluated_at")),
        profile_read_at=time_of(message.profile_read_at, message.HasField("profile_read_at")),
        segments_read_at=time_of(message.segments_read_at, message.HasField("segments_read_at")),
    )


def _node(message: rules_pb2.Explanation) -> ExplanationNode:
    actual = None
    if message.HasField("actual_value"):
        actual = json_form(json_format.MessageToDict(message.actual_value))
    return ExplanationNode(
        kind=message.rule.WhichOneof("kind") or "",
        rule=message_to_json(message.rule),
        matched=message.matched,
        detail=message.detail,
        attribute_present=message.attribute_present,
        actual_value=actual,
        children=tuple(_node(child) for child in message.children),
    )
