"""GetSegmentStats and CompareSegments over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from segmentd_client.v1 import evaluation_pb2
from tests.api.conftest import create_segment, upsert
from tests.stats.reference import ranked_groups, trait_figures

PAYING = {
    "name": "paying",
    "rule": {"condition": {"attribute": "plan", "operator": "IN", "value": ["pro", "team"]}},
}
SUPPORT = {
    "name": "support-heavy",
    "rule": {"condition": {"attribute": "tickets", "operator": "GREATER_THAN_OR_EQUALS", "value": 3}},
}
EVERYONE = {"name": "everyone", "rule": {"all": {"rules": []}}}


def _traits(i: int) -> dict[str, Any]:
    traits: dict[str, Any] = {
        "plan": ["free", "pro", "team", "pro"][i % 4],
        "mrr": (i * 37) % 500 + 0.25,
        "tickets": i % 7,
        "channel": ["ads", "seo", "partner"][i % 3],
    }
    if i % 9 == 0:
        traits["mrr"] = "lots"  # not a number: left out of the aggregates
    if i % 13 == 0:
        traits["mrr"] = True  # a boolean is not a number either
    if i % 10 == 0:
        del traits["channel"]
    return traits


TRAITS = [_traits(i) for i in range(60)]


@pytest.fixture
async def population(segments, profiles) -> None:
    for definition in (PAYING, SUPPORT, EVERYONE):
        await create_segment(segments, definition)
    for i, traits in enumerate(TRAITS):
        await upsert(profiles, f"user-{i:02d}", traits)


def _members(name: str) -> list[dict[str, Any]]:
    if name == "paying":
        return [t for t in TRAITS if t["plan"] in ("pro", "team")]
    if name == "support-heavy":
        return [t for t in TRAITS if t["tickets"] >= 3]
    return list(TRAITS)


def _as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _check_trait(stats: evaluation_pb2.TraitStats, members: list[dict[str, Any]], attribute: str) -> None:
    expected = trait_figures(members, TRAITS, attribute)
    assert stats.attribute == attribute
    assert stats.count == expected.count
    assert stats.sum == pytest.approx(expected.sum, rel=1e-12)
    for name in ("min", "max", "p50", "p90"):
        assert getattr(stats, name) == getattr(expected, name), name
    assert stats.mean == pytest.approx(expected.mean, rel=1e-12)
    assert stats.share_of_sum == pytest.approx(expected.share_of_sum, rel=1e-12)


async def test_get_segment_stats__numeric_traits__match_python(evaluation, population) -> None:
    # When
    stats = await evaluation.GetSegmentStats(
        evaluation_pb2.GetSegmentStatsRequest(segment_name="paying", numeric_traits=["mrr", "tickets"])
    )
    # Then
    members = _members("paying")
    assert (stats.segment_name, stats.segment_version) == ("paying", 1)
    assert (stats.member_count, stats.population_count) == (len(members), len(TRAITS))
    assert stats.share == len(members) / len(TRAITS)
    _check_trait(stats.traits[0], members, "mrr")
    _check_trait(stats.traits[1], members, "tickets")
    assert not stats.groups


async def test_get_segment_stats__group_by__one_group_per_value(evaluation, population) -> None:
    # When
    stats = await evaluation.GetSegmentStats(
        evaluation_pb2.GetSegmentStatsRequest(
            segment_name="paying", numeric_traits=["mrr"], group_by="channel"
        )
    )
    # Then
    members = _members("paying")
    expected = ranked_groups(members, "channel")
    got = [(json_format.MessageToDict(g.value), g.member_count) for g in stats.groups]
    assert got == expected
    for group in stats.groups:
        value = json_format.MessageToDict(group.value)
        in_group = [m for m in members if m.get("channel") == value]
        _check_trait(group.traits[0], in_group, "mrr")
        assert (group.rest, group.value_count) == (False, 1)
    _check_trait(stats.traits[0], members, "mrr")


async def test_get_segment_stats__group_by__same_segment_sums_as_without(
    evaluation, segments, profiles, dialect
) -> None:
    if dialect != "postgresql":
        pytest.skip("sums are exact on PostgreSQL; SQLite adds doubles (README, Statistics)")
    # Given: a sum whose partial sums no double holds exactly (1e300 + 1 - 1e300)
    await create_segment(segments, EVERYONE)
    for i, value in enumerate([1e300, 1.0, -1e300]):
        await upsert(profiles, f"u{i}", {"big": value, "group": f"g{i}"})
    # When
    request = evaluation_pb2.GetSegmentStatsRequest(segment_name="everyone", numeric_traits=["big"])
    alone = await evaluation.GetSegmentStats(request)
    request.group_by = "group"
    grouped = await evaluation.GetSegmentStats(request)
    # Then: the whole segment's figures do not depend on the grouping
    assert len(grouped.groups) == 3
    assert _as_dict(grouped.traits[0]) == _as_dict(alone.traits[0])


async def test_get_segment_stats__trait_nobody_has__counts_zero_and_unset(evaluation, population) -> None:
    # When
    stats = await evaluation.GetSegmentStats(
        evaluation_pb2.GetSegmentStatsRequest(segment_name="paying", numeric_traits=["plan", "nope.deeper"])
    )
    # Then: a string trait asked as numeric is left out, not an error
    for trait in stats.traits:
        # count 0, sum 0 (defaults, so not printed) and every other figure unset
        assert _as_dict(trait) == {"attribute": trait.attribute}


async def test_compare_segments__overlaps_and_stats__match_python(evaluation, population) -> None:
    # When
    names = ["paying", "support-heavy", "everyone"]
    answer = await evaluation.CompareSegments(
        evaluation_pb2.CompareSegmentsRequest(segment_names=names, numeric_traits=["mrr"])
    )
    # Then
    assert [s.segment_name for s in answer.segments] == names
    for stats in answer.segments:
        members = _members(stats.segment_name)
        assert stats.member_count == len(members)
        _check_trait(stats.traits[0], members, "mrr")
    ids = {name: {id(t) for t in _members(name)} for name in names}
    pairs = [(o.a, o.b, o.both, o.only_a, o.only_b) for o in answer.overlaps]
    assert pairs == [
        (a, b, len(ids[a] & ids[b]), len(ids[a] - ids[b]), len(ids[b] - ids[a]))
        for k, a in enumerate(names)
        for b in names[k + 1 :]
    ]


async def test_get_segment_stats__empty_store__zero_share(evaluation, segments) -> None:
    # Given
    await create_segment(segments, PAYING)
    # When
    stats = await evaluation.GetSegmentStats(
        evaluation_pb2.GetSegmentStatsRequest(segment_name="paying", numeric_traits=["mrr"], group_by="plan")
    )
    # Then
    assert (stats.member_count, stats.population_count, stats.share) == (0, 0, 0.0)
    assert stats.traits[0].count == 0
    assert not stats.traits[0].HasField("share_of_sum")
    assert not stats.groups


INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("request_fields", "code", "field"),
    [
        ({"segment_name": ""}, INVALID, "segment_name"),
        ({"segment_name": "missing"}, grpc.StatusCode.NOT_FOUND, "missing"),
        ({"segment_name": "paying", "numeric_traits": ["mrr", "mrr"]}, INVALID, "numeric_traits[1]"),
        ({"segment_name": "paying", "numeric_traits": ["a..b"]}, INVALID, "numeric_traits[0]"),
        ({"segment_name": "paying", "numeric_traits": [""]}, INVALID, "numeric_traits[0]"),
        ({"segment_name": "paying", "numeric_traits": ['a"b']}, INVALID, "numeric_traits[0]"),
        ({"segment_name": "paying", "numeric_traits": ["x" * 257]}, INVALID, "numeric_traits[0]"),
        (
            {"segment_name": "paying", "numeric_traits": [f"t{i}" for i in range(21)]},
            INVALID,
            "numeric_traits",
        ),
        ({"segment_name": "paying", "group_by": "a."}, INVALID, "group_by"),
    ],
)
async def test_get_segment_stats__bad_input__precise_status(
    evaluation, segments, request_fields, code, field
) -> None:
    # Given
    await create_segment(segments, PAYING)
    # When
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await evaluation.GetSegmentStats(evaluation_pb2.GetSegmentStatsRequest(**request_fields))
    # Then
    assert caught.value.code() == code
    assert field in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("names", "code", "field"),
    [
        (["paying"], grpc.StatusCode.INVALID_ARGUMENT, "segment_names"),
        ([], grpc.StatusCode.INVALID_ARGUMENT, "segment_names"),
        (["paying"] * 11, grpc.StatusCode.INVALID_ARGUMENT, "segment_names"),
        (["paying", "paying"], grpc.StatusCode.INVALID_ARGUMENT, "segment_names[1]"),
        (["paying", ""], grpc.StatusCode.INVALID_ARGUMENT, "segment_names[1]"),
        (["paying", "missing"], grpc.StatusCode.NOT_FOUND, "missing"),
    ],
)
async def test_compare_segments__bad_input__precise_status(evaluation, segments, names, code, field) -> None:
    # Given
    await create_segment(segments, PAYING)
    # When
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await evaluation.CompareSegments(evaluation_pb2.CompareSegmentsRequest(segment_names=names))
    # Then
    assert caught.value.code() == code
    assert field in (caught.value.details() or "")


async def test_compare_segments__ten_segments__every_pair(evaluation, segments, profiles) -> None:
    # Given
    names = [f"s{i}" for i in range(10)]
    for i, name in enumerate(names):
        rule = {"condition": {"attribute": "n", "operator": "GREATER_THAN_OR_EQUALS", "value": i}}
        await create_segment(segments, {"name": name, "rule": rule})
    for i in range(12):
        await upsert(profiles, f"u{i}", {"n": i})
    # When
    answer = await evaluation.CompareSegments(
        evaluation_pb2.CompareSegmentsRequest(segment_names=names, numeric_traits=["n"])
    )
    # Then
    assert [s.member_count for s in answer.segments] == [12 - i for i in range(10)]
    assert len(answer.overlaps) == 45
    assert answer.segments[9].traits[0].p50 == 10.0
