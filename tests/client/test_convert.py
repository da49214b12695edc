"""Messages to plain values, and the requests built from the helpers' arguments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segmentd_client import _convert, _requests, errors
from segmentd_client.types import ApplyResult
from segmentd_client.v1 import evaluation_pb2, segments_pb2


def test_evaluation_from_proto__freshness_times__aware_datetimes():
    # Given
    response = evaluation_pb2.EvaluateUserResponse(segments=["a", "b"])
    response.evaluated_at.FromSeconds(1_800_000_010)
    response.profile_read_at.FromSeconds(1_800_000_000)
    # When
    evaluation = _convert.evaluation_from_proto(response)
    # Then
    assert evaluation.segments == ("a", "b")
    assert evaluation.evaluated_at == datetime.fromtimestamp(1_800_000_010, UTC)
    assert evaluation.profile_read_at == datetime.fromtimestamp(1_800_000_000, UTC)
    assert evaluation.segments_read_at is None


@pytest.mark.parametrize(
    ("consistency", "expected"),
    [("cached", evaluation_pb2.CACHED), ("strong", evaluation_pb2.STRONG)],
)
def test_requests__consistency__sent_as_the_enum(consistency, expected):
    assert _requests.evaluate_user("u", [], consistency).consistency == expected
    assert _requests.explain("u", "s", consistency).consistency == expected


def test_segment_to_proto__output_only_keys_ignored_unknown_refused():
    definition = {
        "name": "a",
        "rule": {"all": {}},
        "version": 3,
        "etag": "x",
        "create_time": "2026-01-01T00:00:00Z",
    }
    assert _convert.segment_to_proto(definition).version == 0
    with pytest.raises(ValueError, match="unknown key.*'rules'"):
        _convert.segment_to_proto({"name": "a", "rules": {}})


def test_json_form__integral_doubles_as_int():
    assert _convert.json_form({"a": [80.0, 2.5, True, None, "x"]}) == {"a": [80, 2.5, True, None, "x"]}


def test_apply_action__only_description_labels_and_rule_count():
    current = segments_pb2.Segment(name="a", description="d", version=4, etag="e")
    same = segments_pb2.Segment(name="a", description="d")
    assert _requests.apply_action(same, current) == "unchanged"
    assert _requests.apply_action(segments_pb2.Segment(name="a"), current) == "updated"
    assert _requests.apply_action(same, None) == "created"
    assert _requests.update(same, current).segment.etag == "e"


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (ApplyResult("created", "a", None, 1), "created a"),
        (ApplyResult("unchanged", "a", 2, 2), "unchanged a"),
        (ApplyResult("updated", "a", 2, 3), "updated a (v2 -> v3)"),
        (ApplyResult("updated", "a", 2, None, dry_run=True), "updated a (v2 -> v3)"),
    ],
)
def test_apply_result__kubectl_style_line(result, line):
    assert str(result) == line


def test_struct_of__nested_too_deep_for_protobuf__invalid_argument_before_sending():
    value: list[object] = []
    for _ in range(2_000):
        value = [value]
    with pytest.raises(errors.InvalidArgument) as raised:
        _convert.struct_of({"a": value})
    assert raised.value.field == "traits"


@pytest.mark.parametrize(("depth", "deeper_than_16"), [(1, False), (16, False), (17, True), (5_000, True)])
def test_nested_deeper_than__counts_containers_without_recursing(depth, deeper_than_16):
    value: object = {}
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    assert _convert.nested_deeper_than(value, 16) is deeper_than_16
    assert _convert.nested_deeper_than("scalar", 0) is False
