"""Segment statistics as one SQL statement: sizes, overlaps and numeric aggregates.

    base      one row per profile: m<j> (1 if a member of segment j, else 0), v<i> (trait i
              when it is a JSON number, else NULL) and, with a group trait, its sort keys
    ranks     (grouped only) the group values among the members of segment 0, ranked by
              member count, ties by value: row_number() over the aggregate
    windowed  per segment and trait, the running count of members holding a number, in the
              trait's order (one sort per trait, shared by every segment), and their total;
              grouped, the same per group
    SELECT    conditional aggregates: count(*), sum(m<j>), sum(m<j> * m<k>) per pair, and per
              segment and trait count, sum, min, max, and the nearest-rank p50 / p90: the
              smallest value whose running count reaches ceil(p * total / 100)

Every profile is read once, into ``base`` (each rule and trait expression computed once
per profile, whatever the number of aggregates reading it: a subquery fenced by ``OFFSET 0``
on PostgreSQL, which may run in parallel workers, else a materialised CTE); grouped
statistics read ``base`` twice. Without a group trait the statement returns one row; with one, a
row per group (``bucket`` 1..``max_groups``, ``max_groups + 1`` for the rest, 0 for the
non-members), which `segmentd.store.stats` adds up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Integer,
    Label,
    Numeric,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)

from segmentd.sqlgen.json_values import JsonValueSql, postgres_trait, sqlite_trait

#: The percentiles every trait's statistics carry.
PERCENTILES: Final = (50, 90)

# The JSON types a group value sorts by, in this order (lists and objects group with null).
_NULL, _BOOLEAN, _NUMBER, _STRING = 0, 1, 2, 3


def stats_statement(
    *,
    dialect: str,
    profiles: FromClause,
    members: Sequence[ColumnElement[bool]],
    traits: Sequence[tuple[str, ...]],
    group: tuple[str, ...] | None = None,
    max_groups: int = 50,
) -> Select[Any]:
    """Return the statement computing the statistics of ``members`` (one condition per segment).

    Columns: ``population``; ``members_<j>``; ``both_<j>_<k>`` for j < k; ``pop_sum_<i>``;
    per segment j and trait i ``count_<j>_<i>``, ``sum_<j>_<i>``, ``min_<j>_<i>``,
    ``max_<j>_<i>``, ``p50_<j>_<i>``, ``p90_<j>_<i>``. With ``group`` (one segment only):
    ``bucket``, ``value_kind``, ``value_number``, ``value_text``, ``value_rank`` (the highest
    rank in the group) and per trait ``group_p50_<i>`` / ``group_p90_<i>``.
    """
    trait_of = postgres_trait if dialect == "postgresql" else sqlite_trait
    columns: list[Label[Any]] = [
        case((member, 1), else_=0).label(f"m{j}") for j, member in enumerate(members)
    ]
    columns += [_number(dialect, trait_of(profiles, path)).label(f"v{i}") for i, path in enumerate(traits)]
    if group is not None:
        columns += _group_keys(dialect, trait_of(profiles, group))
    base = _base(dialect, select(*columns).select_from(profiles), grouped=group is not None)
    source: FromClause = base
    bucket: ColumnElement[int] | None = None
    if group is not None:
        source, bucket = _bucketed(base, max_groups)
    # PostgreSQL's percentile_disc sorts only the members' values, where the running counts
    # sort every profile; but the segment's percentiles cannot be combined from its groups'.
    ordered_set = dialect == "postgresql" and group is None
    windowed = _windowed(source, len(members), 0 if ordered_set else len(traits), bucket).subquery("windowed")
    aggregates = _aggregates(dialect, windowed, len(members), len(traits), ordered_set=ordered_set)
    if bucket is None:
        return select(*aggregates).select_from(windowed)
    grouped = _group_columns(windowed, len(traits))
    return select(*grouped, *aggregates).select_from(windowed).group_by(windowed.c.bucket)


def _base(dialect: str, rows: Select[Any], *, grouped: bool) -> FromClause:
    """``rows`` as a relation whose columns are computed once per profile, however often read.

    Each m<j> and v<i> is referenced by many aggregates and windows, and both databases
    would otherwise substitute the whole expression (a segment's rule) into every reference,
    evaluating it once per reference and row: 3x slower on 5 segments. A ``MATERIALIZED``
    CTE prevents that, but PostgreSQL never scans it in parallel workers; a subquery with
    ``OFFSET 0`` is not flattened into the outer query either (the same guarantee) and its
    scan, where every rule is evaluated, may be split between workers. Grouped statistics
    read ``base`` twice, so there it stays a CTE, computed once.
    """
    if dialect == "postgresql" and not grouped:
        return rows.offset(literal_column("0")).subquery("base")
    return rows.cte("base").prefix_with("MATERIALIZED")


def _group_columns(rows: FromClause, traits: int) -> list[Any]:
    """The bucket, the value keys (equal on every row of a named group), the group percentiles."""
    c = rows.c
    columns: list[Any] = [
        c.bucket,
        func.min(c.g_kind).label("value_kind"),
        func.min(c.g_number).label("value_number"),
        func.min(c.g_text).label("value_text"),
        func.max(c.g_rank).label("value_rank"),
    ]
    for i in range(traits):
        for p in PERCENTILES:
            columns.append(_percentile(c.m0, c[f"gcum{i}"], c[f"gtot{i}"], c[f"v{i}"], p, f"group_p{p}_{i}"))
    return columns


def _number(dialect: str, trait: JsonValueSql) -> ColumnElement[Any]:
    """The trait when it is a JSON number, else NULL: numeric on PostgreSQL (exact sums)."""
    value = trait.number()
    if dialect == "postgresql":
        value = cast(value, Numeric)  # inside the CASE: never cast a non-number
    return case((trait.kind_is("number"), value))


def _group_keys(dialect: str, trait: JsonValueSql) -> list[Label[Any]]:
    """(JSON type rank, number, text) of the group trait, never NULL, so they join and sort."""
    kind = case(
        (trait.kind_is("boolean"), _BOOLEAN), (trait.kind_is("number"), _NUMBER),
        (trait.kind_is("string"), _STRING), else_=_NULL,
    )  # fmt: skip
    number = case(
        (trait.kind_is("boolean"), case((trait.equals_any_exact([True]), 1), else_=0)),
        (trait.kind_is("number"), _number(dialect, trait)),
        else_=0,
    )
    text = case((trait.kind_is("string"), trait.ordered(trait.text())), else_=trait.ordered(literal("")))
    return [kind.label("g_kind"), number.label("g_number"), text.label("g_text")]


def _bucketed(base: FromClause, max_groups: int) -> tuple[FromClause, ColumnElement[int]]:
    """Join each member to its group's rank; return (base with ``g_rank``, its bucket)."""
    b = base.c
    keys = (b.g_kind, b.g_number, b.g_text)
    rank = func.row_number().over(order_by=(func.count().desc(), *keys))
    ranks = select(*keys, rank.label("g_rank")).where(b.m0 == 1).group_by(*keys).subquery("ranks")
    r = ranks.c
    joined = base.outerjoin(ranks, and_(b.g_kind == r.g_kind, b.g_number == r.g_number, b.g_text == r.g_text))
    bucket = case((b.m0 == 0, 0), (r.g_rank <= max_groups, r.g_rank), else_=max_groups + 1)
    rows = select(*b, r.g_rank, bucket.label("bucket")).select_from(joined).subquery("bucketed")
    return rows, rows.c.bucket


def _windowed(
    source: FromClause, segments: int, traits: int, bucket: ColumnElement[int] | None
) -> Select[Any]:
    """``source`` with, per segment and trait, running and total member counts of numbers."""
    c = source.c
    columns: list[Any] = list(c)
    for i in range(traits):
        value = c[f"v{i}"]
        for j in range(segments):
            holds = case((and_(c[f"m{j}"] == 1, value.is_not(None)), 1), else_=0)
            columns.append(func.sum(holds).over(order_by=value, rows=(None, 0)).label(f"cum{j}_{i}"))
            columns.append(func.sum(holds).over().label(f"tot{j}_{i}"))
        if bucket is not None:
            present = case((value.is_not(None), 1), else_=0)
            columns.append(func.sum(present).over(partition_by=c.bucket, order_by=value, rows=(None, 0))
                           .label(f"gcum{i}"))  # fmt: skip
            columns.append(func.sum(present).over(partition_by=c.bucket).label(f"gtot{i}"))
    return select(*columns)


def _aggregates(
    dialect: str, rows: FromClause, segments: int, traits: int, *, ordered_set: bool
) -> list[Label[Any]]:
    c = rows.c
    # total() on SQLite: a sum of doubles that never overflows to an error, 0.0 for no rows.
    add = func.sum if dialect == "postgresql" else func.total
    columns: list[Label[Any]] = [func.count().label("population")]
    columns += [func.sum(c[f"m{j}"]).label(f"members_{j}") for j in range(segments)]
    columns += [
        func.sum(c[f"m{j}"] * c[f"m{k}"]).label(f"both_{j}_{k}")
        for j in range(segments)
        for k in range(j + 1, segments)
    ]
    columns += [add(c[f"v{i}"]).label(f"pop_sum_{i}") for i in range(traits)]
    for j in range(segments):
        member = c[f"m{j}"] == 1
        for i in range(traits):
            value = c[f"v{i}"]
            of_members = case((member, value))
            columns += [
                func.count(of_members).label(f"count_{j}_{i}"),
                add(of_members).label(f"sum_{j}_{i}"),
                func.min(of_members).label(f"min_{j}_{i}"),
                func.max(of_members).label(f"max_{j}_{i}"),
            ]
            if ordered_set:
                columns += [_percentile_disc(of_members, p, f"p{p}_{j}_{i}") for p in PERCENTILES]
                continue
            columns += [
                _percentile(c[f"m{j}"], c[f"cum{j}_{i}"], c[f"tot{j}_{i}"], value, p, f"p{p}_{j}_{i}")
                for p in PERCENTILES
            ]
    return columns


def _percentile(
    member: ColumnElement[int],
    running: ColumnElement[Any],
    total: ColumnElement[Any],
    value: ColumnElement[Any],
    percent: int,
    name: str,
) -> Label[Any]:
    """The smallest member value whose running count reaches the nearest rank.

    ``(percent * total + 99) // 100`` is ``ceil(percent * total / 100)`` in integers, which is
    at least 1 when ``total`` is, as `segmentd.engine.percentiles.nearest_rank` ranks.
    """
    rank = (literal(percent, Integer) * total + 99) // 100
    return func.min(case((and_(member == 1, running >= rank), value))).label(name)


def _percentile_disc(values: ColumnElement[Any], percent: int, name: str) -> Label[Any]:
    """PostgreSQL's ``percentile_disc`` at the nearest rank (NULLs, the non-members, ignored).

    It takes the value at rank ``ceil(f * N)`` with ``f * N`` in doubles, where 0.9 * N can
    round to just above an integer. ``percent / 100 - 1e-12`` gives the exact rank for any N
    below 10^10: the exact ``percent * N / 100`` is an integer or at least 0.01 above one,
    and ``1e-12 * N`` lies between the rounding error and that 0.01.
    """
    fraction = literal(percent / 100 - 1e-12, Float)
    return func.percentile_disc(fraction).within_group(values).label(name)
