"""Segment statistics recomputed in Python, profile by profile: what the database must agree with."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segmentd.engine.percentiles import nearest_rank
from segmentd.engine.traits import MISSING, is_number, lookup, split_path


@dataclass(frozen=True)
class Figures:
    count: int
    sum: float
    mean: float | None
    min: float | None
    max: float | None
    p50: float | None
    p90: float | None
    share_of_sum: float | None


def numbers(traits: Sequence[Mapping[str, Any]], attribute: str) -> list[float]:
    path = split_path(attribute)
    found = [lookup(t, path) for t in traits]
    return [float(v) for v in found if is_number(v)]


def trait_figures(
    members: Sequence[Mapping[str, Any]], population: Sequence[Mapping[str, Any]], attribute: str
) -> Figures:
    values = sorted(numbers(members, attribute))
    pop_sum = math.fsum(numbers(population, attribute))
    total = math.fsum(values)
    if not values:
        return Figures(0, 0.0, None, None, None, None, None, None)
    return Figures(
        count=len(values),
        sum=total,
        mean=total / len(values),
        min=values[0],
        max=values[-1],
        p50=values[nearest_rank(50, len(values)) - 1],
        p90=values[nearest_rank(90, len(values)) - 1],
        share_of_sum=total / pop_sum if pop_sum else None,
    )


def group_value(traits: Mapping[str, Any], attribute: str) -> Any:
    """The group a member falls in: its scalar value, or None (missing, null, list, object)."""
    value = lookup(traits, split_path(attribute))
    if value is MISSING or isinstance(value, list | dict):
        return None
    return float(value) if is_number(value) else value


def _key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, bool):
        return (1, float(value), "")
    if isinstance(value, float):
        return (2, value, "")
    return (3, 0.0, value)


def ranked_groups(members: Sequence[Mapping[str, Any]], attribute: str) -> list[tuple[Any, int]]:
    """(value, member count) by descending count, ties by (type, number, UTF-8 bytes)."""
    counts = Counter(_typed(group_value(m, attribute)) for m in members)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], _sort_key(item[0])))
    return [(value[1], count) for value, count in ordered]


def _typed(value: Any) -> tuple[int, Any]:
    # True == 1.0 in Python: keep the type apart so they are two groups.
    return (_key(value)[0], value)


def _sort_key(typed: tuple[int, Any]) -> tuple[int, float, bytes]:
    kind, number, text = _key(typed[1])
    return (kind, number, text.encode())
