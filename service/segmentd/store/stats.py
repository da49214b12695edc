"""Runs the statistics statement (`segmentd.sqlgen.stats`) and reads its row(s) into figures.

The database does every per-profile step; this module only adds up at most
``max_groups + 2`` rows (one per group, the rest, the non-members) and divides. Sums are
exact decimals on PostgreSQL (``numeric``) rounded once to a double, and doubles on SQLite;
means and shares are computed here from those sums, with the same divisions on both stores.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext
from typing import Any, Final

from sqlalchemy import ColumnElement, text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.engine.rules import JsonValue
from segmentd.sqlgen.stats import PERCENTILES, stats_statement
from segmentd.store.database import store_work
from segmentd.store.models import ProfileRow

#: Groups reported by value; members with any other value make one more group, the rest.
MAX_GROUPS: Final = 50

_BOOLEAN, _NUMBER, _STRING = 1, 2, 3


@dataclass(frozen=True, slots=True)
class TraitFigures:
    """Aggregates of one numeric trait over a set of members (None: no member has a number)."""

    attribute: str
    count: int
    sum: float
    mean: float | None
    min: float | None
    max: float | None
    p50: float | None
    p90: float | None
    share_of_sum: float | None


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """The members sharing one value of the group trait, or the rest (``rest``)."""

    value: JsonValue
    member_count: int
    traits: tuple[TraitFigures, ...]
    rest: bool
    value_count: int


@dataclass(frozen=True, slots=True)
class SegmentFigures:
    """A segment's size, share of the population, trait aggregates and groups."""

    member_count: int
    population_count: int
    share: float
    traits: tuple[TraitFigures, ...]
    groups: tuple[GroupFigures, ...] = ()


@dataclass(frozen=True, slots=True)
class Overlap:
    """How segments ``a`` and ``b`` (indexes into the segments compared) overlap."""

    a: int
    b: int
    both: int
    only_a: int
    only_b: int


class StatsQueries:
    """Computes statistics over the profiles with conditions built by ``segmentd.sqlgen``.

    Args:
        engine: the store's engine.
        max_groups: groups reported by value; the members with other values make one more.
    """

    def __init__(self, engine: AsyncEngine, max_groups: int = MAX_GROUPS) -> None:
        self._engine = engine
        self._max_groups = max_groups
        self.dialect: str = engine.dialect.name

    async def compare(
        self, members: Sequence[ColumnElement[bool]], attributes: Sequence[str]
    ) -> tuple[list[SegmentFigures], list[Overlap]]:
        """Return each segment's figures and every pair's overlap, from one statement."""
        row = (await self._rows(members, attributes, None))[0]
        population = int(row["population"])
        figures = [
            _segment(row, j, attributes, population, _pop_sums(row, attributes)) for j in range(len(members))
        ]
        overlaps = []
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                both = int(row[f"both_{a}_{b}"] or 0)
                overlaps.append(
                    Overlap(a, b, both, figures[a].member_count - both, figures[b].member_count - both)
                )
        return figures, overlaps

    async def grouped(
        self, member: ColumnElement[bool], attributes: Sequence[str], group: tuple[str, ...]
    ) -> SegmentFigures:
        """Return one segment's figures with its groups by the trait at ``group``."""
        rows = sorted(await self._rows([member], attributes, group), key=lambda row: int(row["bucket"]))
        total = _summed(rows, attributes)
        population = int(total["population"])
        pop_sums = _pop_sums(total, attributes)
        groups = tuple(
            _group(row, attributes, population, pop_sums, self._max_groups) for row in rows if row["bucket"]
        )
        whole = _segment(total, 0, attributes, population, pop_sums)
        return SegmentFigures(whole.member_count, population, whole.share, whole.traits, groups)

    async def _rows(
        self, members: Sequence[ColumnElement[bool]], attributes: Sequence[str], group: tuple[str, ...] | None
    ) -> list[Mapping[str, Any]]:
        statement = stats_statement(
            dialect=self.dialect,
            profiles=ProfileRow.__table__,
            members=members,
            traits=[tuple(attribute.split(".")) for attribute in attributes],
            group=group,
            max_groups=self._max_groups,
        )
        async with store_work():
            async with self._engine.connect() as connection, connection.begin():
                if self.dialect == "postgresql":
                    # JIT-compiling a statement this wide (a few expressions per segment and
                    # trait) costs seconds, far more than it saves on a scan of the profiles.
                    await connection.execute(text("SET LOCAL jit = off"))
                    # The planner costs a JSON operator like an integer comparison, so it sees
                    # a cheap scan and a costly transfer of its rows from parallel workers;
                    # evaluating the rules dominates, and is what the workers share.
                    await connection.execute(text("SET LOCAL parallel_tuple_cost = 0.01"))
                result = await connection.execute(statement)
                return [row._mapping for row in result]


def _pop_sums(row: Mapping[str, Any], attributes: Sequence[str]) -> list[float]:
    return [_number(row[f"pop_sum_{i}"]) or 0.0 for i in range(len(attributes))]


def _segment(
    row: Mapping[str, Any], j: int, attributes: Sequence[str], population: int, pop_sums: Sequence[float]
) -> SegmentFigures:
    member_count = int(row[f"members_{j}"] or 0)
    traits = tuple(
        _trait(row, attribute, f"{j}_{i}", f"{j}_{i}", pop_sums[i]) for i, attribute in enumerate(attributes)
    )
    return SegmentFigures(member_count, population, member_count / population if population else 0.0, traits)


def _group(
    row: Mapping[str, Any],
    attributes: Sequence[str],
    population: int,
    pop_sums: Sequence[float],
    max_groups: int,
) -> GroupFigures:
    rest = int(row["bucket"]) > max_groups
    traits = tuple(
        _trait(row, attribute, f"0_{i}", f"group_{{}}_{i}", pop_sums[i])
        for i, attribute in enumerate(attributes)
    )
    value_count = int(row["value_rank"]) - max_groups if rest else 1
    value = None if rest else _group_value(row)
    return GroupFigures(value, int(row["members_0"]), traits, rest, value_count)


def _trait(
    row: Mapping[str, Any], attribute: str, suffix: str, percentile: str, pop_sum: float
) -> TraitFigures:
    """Read one trait's figures; ``percentile`` names its p50/p90 columns (``{}`` for p50...)."""
    count = int(row[f"count_{suffix}"] or 0)
    total = _number(row[f"sum_{suffix}"]) or 0.0
    p50, p90 = (_number(row[_percentile_column(percentile, p)]) for p in PERCENTILES)
    return TraitFigures(
        attribute=attribute,
        count=count,
        sum=total,
        mean=total / count if count else None,
        min=_number(row[f"min_{suffix}"]),
        max=_number(row[f"max_{suffix}"]),
        p50=p50,
        p90=p90,
        share_of_sum=total / pop_sum if count and pop_sum else None,
    )


def _percentile_column(pattern: str, percent: int) -> str:
    if "{}" in pattern:
        return pattern.format(f"p{percent}")
    return f"p{percent}_{pattern}"


def _group_value(row: Mapping[str, Any]) -> JsonValue:
    kind = int(row["value_kind"])
    if kind == _BOOLEAN:
        return bool(row["value_number"])
    if kind == _NUMBER:
        return _number(row["value_number"])
    if kind == _STRING:
        return str(row["value_text"])
    return None


def _summed(rows: Sequence[Mapping[str, Any]], attributes: Sequence[str]) -> dict[str, Any]:
    """The whole segment from its groups: counts and sums add up, min, max and percentiles."""
    total: dict[str, Any] = {
        "population": sum(int(row["population"]) for row in rows),
        "members_0": sum(int(row["members_0"] or 0) for row in rows),
    }
    for i in range(len(attributes)):
        for name in (f"count_0_{i}",):
            total[name] = sum(int(row[name] or 0) for row in rows)
        for name in (f"pop_sum_{i}", f"sum_0_{i}"):
            total[name] = _exact_sum(row[name] for row in rows)
        # Each row's p50_0_i is the smallest value of its group reaching the segment's rank.
        for name in (f"min_0_{i}", f"p50_0_{i}", f"p90_0_{i}"):
            total[name] = min((row[name] for row in rows if row[name] is not None), default=None)
        name = f"max_0_{i}"
        total[name] = max((row[name] for row in rows if row[name] is not None), default=None)
    return total


#: Additions in this context are exact (digits are kept as needed, not to a fixed precision).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _exact_sum(values: Iterable[Any]) -> Decimal | float | None:
    present = [value for value in values if value is not None]
    if not present:
        return None
    if any(isinstance(value, Decimal) for value in present):
        # PostgreSQL's exact sums stay exact: the default context keeps 28 digits, so 1e300 + 1
        # would lose the 1 that the whole segment's own statement keeps.
        with localcontext(_EXACT):
            return sum((Decimal(value) for value in present), Decimal(0))
    return math.fsum(present)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
