"""``segmentd stats | compare``: segment statistics as aligned tables, optionally a plot.

The figures come from ``GetSegmentStats`` / ``CompareSegments`` through the typed client;
``--plot FILE.svg`` draws them with matplotlib (the ``plot`` extra), imported only then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click

from segmentd.cli.common import EXIT_OK, EXIT_USAGE, client_command, echo_json, fail
from segmentd.cli.tables import format_number, format_share, table
from segmentd_client import Client, Comparison, GroupStats, SegmentStats, TraitStats

_TRAIT_HEADER: Final = ("TRAIT", "COUNT", "SUM", "MEAN", "MIN", "P50", "P90", "MAX", "SHARE OF SUM")
_OUTPUT = click.Choice(["text", "json"])


@click.command()
@click.argument("segment")
@click.option(
    "--trait", "traits", multiple=True, metavar="PATH", help="A numeric trait to aggregate (repeatable)."
)
@click.option("--group-by", default="", metavar="PATH", help="Also give the figures per value of this trait.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Draw the figures to FILE.svg.")
@click.option("-o", "--output", "output_format", type=_OUTPUT, default="text", show_default=True)
@client_command
def stats(
    segment: str,
    traits: tuple[str, ...],
    group_by: str,
    plot: Path | None,
    output_format: str,
    client: Client,
) -> int:
    """Print a segment's size, share of the population and aggregates of numeric traits.

    Computed by the database. With --group-by, one row per value of that trait (the 50 values
    with the most members, then the rest); with --plot, the member counts and the first
    trait's mean per group are drawn too.

    \b
    Example:
      segmentd stats paying --trait mrr --trait tickets
      segmentd stats paying --trait mrr --group-by channel --plot paying.svg
    """
    figures = client.segment_stats(segment, traits, group_by=group_by)
    if output_format == "json":
        echo_json(dataclasses.asdict(figures))
    else:
        _print_stats(figures, group_by)
    if plot is not None:
        bars = [(_group_label(group), group.member_count, _mean(group.traits)) for group in figures.groups]
        _plot(plot, bars or [(figures.segment_name, figures.member_count, _mean(figures.traits))], traits)
    return EXIT_OK


@click.command()
@click.argument("segments", nargs=-1, required=True)
@click.option(
    "--trait", "traits", multiple=True, metavar="PATH", help="A numeric trait to aggregate (repeatable)."
)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Draw the figures to FILE.svg.")
@click.option("-o", "--output", "output_format", type=_OUTPUT, default="text", show_default=True)
@client_command
def compare(
    segments: tuple[str, ...], traits: tuple[str, ...], plot: Path | None, output_format: str, client: Client
) -> int:
    """Compare 2 to 10 segments: sizes, trait aggregates and how each pair overlaps.

    One scan of the profiles in the database. With --plot, the member counts and the first
    trait's mean per segment are drawn.

    \b
    Example:
      segmentd compare free-plan detractors promoters --trait nps
      segmentd compare free-plan detractors --trait nps --plot compare.svg
    """
    comparison = client.compare_segments(segments, traits)
    if output_format == "json":
        echo_json(dataclasses.asdict(comparison))
    else:
        _print_comparison(comparison)
    if plot is not None:
        _plot(plot, [(s.segment_name, s.member_count, _mean(s.traits)) for s in comparison.segments], traits)
    return EXIT_OK


def _print_stats(figures: SegmentStats, group_by: str) -> None:
    click.echo(
        f"{figures.segment_name} (v{figures.segment_version}): {figures.member_count} of "
        f"{figures.population_count} profiles ({format_share(figures.share)})"
    )
    if figures.traits:
        click.echo()
        _echo(table(_TRAIT_HEADER, [_trait_row(trait) for trait in figures.traits]))
    if figures.groups:
        click.echo()
        header = (group_by.upper(), "MEMBERS", *(f"MEAN {t.attribute}" for t in figures.traits))
        rows = [
            (_group_label(g), str(g.member_count), *(format_number(t.mean) for t in g.traits))
            for g in figures.groups
        ]
        _echo(table(header, rows))


def _print_comparison(comparison: Comparison) -> None:
    header = ("SEGMENT", "MEMBERS", "SHARE", *(f"MEAN {t.attribute}" for t in comparison.segments[0].traits))
    rows = [
        (
            s.segment_name,
            str(s.member_count),
            format_share(s.share),
            *(format_number(t.mean) for t in s.traits),
        )
        for s in comparison.segments
    ]
    _echo(table(header, rows))
    click.echo()
    overlap_rows = [(o.a, o.b, str(o.both), str(o.only_a), str(o.only_b)) for o in comparison.overlaps]
    _echo(table(("A", "B", "BOTH", "ONLY A", "ONLY B"), overlap_rows, names=2))
    for segment in comparison.segments:
        if segment.traits:
            click.echo()
            click.echo(segment.segment_name)
            _echo(table(_TRAIT_HEADER, [_trait_row(trait) for trait in segment.traits]))


def _trait_row(trait: TraitStats) -> tuple[str, ...]:
    figures = (trait.sum, trait.mean, trait.min, trait.p50, trait.p90, trait.max)
    share = "-" if trait.share_of_sum is None else format_share(trait.share_of_sum)
    return (trait.attribute, str(trait.count), *(format_number(f) for f in figures), share)


def _group_label(group: GroupStats) -> str:
    if group.rest:
        return f"(other {group.value_count} values)"
    if group.value is None:
        return "(none)"
    if isinstance(group.value, bool):
        return "true" if group.value else "false"
    return str(group.value)


def _mean(traits: Sequence[TraitStats]) -> float | None:
    return traits[0].mean if traits else None


def _echo(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(line)


def _plot(path: Path, bars: Sequence[tuple[str, int, float | None]], traits: Sequence[str]) -> None:
    """Draw member counts (and the first trait's mean, on a second axis) per bar to an SVG."""
    try:
        # Imported here: matplotlib is an optional extra, and slow to import.
        from segmentd.cli.plot import draw
    except ImportError:
        fail(EXIT_USAGE, "--plot needs matplotlib: pip install 'segmentd[plot]' (or uv sync --extra plot)")
    trait: Any = traits[0] if traits else None
    draw(path, bars, trait)
    click.echo(f"wrote {path}", err=True)


COMMANDS: Final = (stats, compare)
