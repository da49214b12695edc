"""Conversions between protobuf messages and domain objects.

Rules travel through their canonical JSON form (``segmentd.engine.codec``), which is the
proto3 JSON mapping of ``segmentd.v1.Rule``: one decoder serves the API, the store and the
command line, and reports errors with the same field paths everywhere.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from segmentd.engine.codec import rule_from_json, rule_to_json
from segmentd.engine.explain import Explanation
from segmentd.engine.rules import Group, JsonValue, Rule
from segmentd.engine.times import datetime_to_us
from segmentd.errors import InvalidArgument, InvalidRule
from segmentd.evaluation import Freshness
from segmentd.importer import ImportReport
from segmentd.store.records import Event, Profile, Segment
from segmentd_client.v1 import evaluation_pb2, profiles_pb2, rules_pb2, segments_pb2

_NOT_FINITE = "numbers must be finite (JSON has no NaN or infinity)"


def rule_from_proto(message: rules_pb2.Rule, field: str) -> Rule:
    """Decode a rule message; errors name paths below ``field`` (e.g. ``segment.rule``).

    Raises:
        InvalidRule: the rule is invalid, or one of its values is not a finite number.
    """
    try:
        as_json = json_format.MessageToDict(message)
    except (ValueError, json_format.Error) as error:  # json_format refuses NaN and infinities
        raise InvalidRule(field, _NOT_FINITE) from error
    return rule_from_json(as_json, field)


def rule_to_proto(rule: Rule) -> rules_pb2.Rule:
    """Encode a domain rule as a message."""
    return json_format.ParseDict(rule_to_json(rule), rules_pb2.Rule())


def struct_to_dict(message: struct_pb2.Struct, field: str = "traits") -> dict[str, JsonValue]:
    """Return a ``Struct`` as a plain JSON object, as ``json_format.MessageToDict`` would.

    Converted directly: ``MessageToDict`` dispatches on descriptors for every value, which
    made it a fifth of an import's server time. Numbers stay floats, as it returns them.

    Raises:
        InvalidArgument: a number in it is NaN or infinite; names ``field``.
    """
    try:
        return _object_of(message)
    except ValueError as error:
        raise InvalidArgument(field, _NOT_FINITE) from error


def _object_of(message: struct_pb2.Struct) -> dict[str, JsonValue]:
    fields = message.fields  # keys, then lookups: the map's items() is Python-level and slower
    return {key: _json_of(fields[key]) for key in fields}


def _json_of(value: struct_pb2.Value) -> JsonValue:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise ValueError(number)
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _object_of(value.struct_value)
    if kind == "list_value":
        return [_json_of(item) for item in value.list_value.values]
    return None  # null_value, or no kind set (MessageToDict reads both as null)


def dict_to_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    """Return a plain JSON object as a ``Struct``."""
    message = struct_pb2.Struct()
    message.update(data)
    return message


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    """Return ``moment`` (timezone-aware) as a ``Timestamp``."""
    # Integer arithmetic: Timestamp.FromDatetime goes through calendar.timegm, a hot-path cost.
    seconds, micros = divmod(datetime_to_us(moment), 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


_CONSISTENCIES = frozenset(evaluation_pb2.Consistency.values())


def is_strong(consistency: int) -> bool:
    """Tell whether a request's ``consistency`` asks to skip every cache.

    Raises:
        InvalidArgument: ``consistency`` is not a value of the enum.
    """
    if consistency not in _CONSISTENCIES:
        raise InvalidArgument("consistency", f"unknown value {consistency}; use CACHED or STRONG")
    return consistency == evaluation_pb2.STRONG


def freshness_fields(freshness: Freshness | None) -> dict[str, timestamp_pb2.Timestamp]:
    """Return the ``profile_read_at`` and ``segments_read_at`` fields of a verdict's response."""
    if freshness is None:
        return {}
    return {
        "profile_read_at": timestamp(freshness.profile_read_at),
        "segments_read_at": timestamp(freshness.segments_read_at),
    }


def segment_to_proto(segment: Segment) -> segments_pb2.Segment:
    """Encode a stored segment."""
    return segments_pb2.Segment(
        name=segment.name,
        description=segment.description,
        rule=rule_to_proto(segment.rule),
        labels=segment.labels,
        version=segment.version,
        etag=segment.etag,
        create_time=timestamp(segment.create_time),
        update_time=timestamp(segment.update_time),
    )


def profile_to_proto(profile: Profile) -> profiles_pb2.Profile:
    """Encode a stored profile."""
    return profiles_pb2.Profile(
        user_id=profile.user_id,
        traits=dict_to_struct(dict(profile.traits)),
        create_time=timestamp(profile.create_time),
        update_time=timestamp(profile.update_time),
    )


# The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def event_from_proto(message: profiles_pb2.Event, received_at: datetime, field: str = "event") -> Event:
    """Decode an event; one without a time happened at ``received_at``; a count of 0 means 1.

    Raises:
        InvalidArgument: the time is outside the range of ``Timestamp``; names ``field.time``.
    """
    time = received_at
    if message.HasField("time"):
        seconds, nanos = message.time.seconds, message.time.nanos
        if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos <= 999_999_999):
            raise InvalidArgument(
                f"{field}.time", "must lie in 0001-01-01 to 9999-12-31 with nanos in 0..999999999"
            )
        time = message.time.ToDatetime(tzinfo=UTC)
    return Event(user_id=message.user_id, name=message.name, time=time, count=message.count or 1)


def explanation_to_proto(explanation: Explanation) -> rules_pb2.Explanation:
    """Encode an explanation tree; group nodes carry their kind with an empty rule list."""
    node = explanation.rule
    if isinstance(node, Group):
        node = Group(node.kind)
    message = rules_pb2.Explanation(
        rule=rule_to_proto(node),
        matched=explanation.matched,
        children=[explanation_to_proto(child) for child in explanation.children],
        attribute_present=explanation.attribute_present,
        detail=explanation.detail,
    )
    if explanation.actual_value is not None:
        message.actual_value.CopyFrom(json_to_value(explanation.actual_value))
    return message


def json_to_value(value: JsonValue) -> struct_pb2.Value:
    """Return any JSON value as a ``google.protobuf.Value``."""
    holder = struct_pb2.Struct()
    holder.update({"value": value})
    return holder.fields["value"]


def import_report_to_proto(report: ImportReport) -> profiles_pb2.ImportProfilesResponse:
    """Encode the outcome of an import."""
    return profiles_pb2.ImportProfilesResponse(
        imported=report.imported,
        skipped=report.skipped,
        errors=[
            profiles_pb2.ImportError(index=error.index, field=error.field, message=error.message)
            for error in report.errors
        ],
    )
