"""Statistics and comparisons as protobuf messages (``SegmentStats``, ``SegmentOverlap``)."""

from __future__ import annotations

from google.protobuf import struct_pb2

from segmentd.statistics import NamedFigures, NamedOverlap
from segmentd.store.stats import GroupFigures, SegmentFigures, TraitFigures
from segmentd_client.v1 import evaluation_pb2


def segment_stats_to_proto(named: NamedFigures) -> evaluation_pb2.SegmentStats:
    """Encode a segment's figures."""
    figures: SegmentFigures = named.figures
    return evaluation_pb2.SegmentStats(
        segment_name=named.name,
        segment_version=named.version,
        member_count=figures.member_count,
        population_count=figures.population_count,
        share=figures.share,
        traits=[trait_stats_to_proto(trait) for trait in figures.traits],
        groups=[_group_to_proto(group) for group in figures.groups],
    )


def trait_stats_to_proto(trait: TraitFigures) -> evaluation_pb2.TraitStats:
    """Encode one trait's aggregates; figures that do not exist stay unset."""
    optional = {
        name: value
        for name, value in (
            ("mean", trait.mean),
            ("min", trait.min),
            ("max", trait.max),
            ("p50", trait.p50),
            ("p90", trait.p90),
            ("share_of_sum", trait.share_of_sum),
        )
        if value is not None
    }
    return evaluation_pb2.TraitStats(attribute=trait.attribute, count=trait.count, sum=trait.sum, **optional)


def overlap_to_proto(overlap: NamedOverlap) -> evaluation_pb2.SegmentOverlap:
    """Encode how two segments overlap."""
    return evaluation_pb2.SegmentOverlap(
        a=overlap.a, b=overlap.b, both=overlap.both, only_a=overlap.only_a, only_b=overlap.only_b
    )


def _group_to_proto(group: GroupFigures) -> evaluation_pb2.GroupStats:
    message = evaluation_pb2.GroupStats(
        member_count=group.member_count,
        traits=[trait_stats_to_proto(trait) for trait in group.traits],
        rest=group.rest,
        value_count=group.value_count,
    )
    if not group.rest:
        value = struct_pb2.Value()
        if group.value is None:
            value.null_value = struct_pb2.NULL_VALUE
        elif isinstance(group.value, bool):
            value.bool_value = group.value
        elif isinstance(group.value, int | float):
            value.number_value = group.value
        else:
            value.string_value = str(group.value)
        message.value.CopyFrom(value)
    return message
