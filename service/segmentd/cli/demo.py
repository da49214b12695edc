"""``segmentd demo``: seed a store with synthetic users and apply the starter library."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from segmentd.cli.common import EXIT_OK, EXIT_USAGE, fail
from segmentd.cli.store_access import run_on_store

if TYPE_CHECKING:
    from segmentd.demo import DemoReport

#: Exit status when the store holds data the demo did not write (as for a conflict).
EXIT_CONFLICT: Final = 5


@click.command()
@click.option("--database-url", default=None, help="(env SEGMENTD_DATABASE_URL; default ./segmentd.db)")
@click.option("--profiles", "count", type=click.IntRange(1, 100_000), default=3_000, show_default=True)
@click.option("--seed", type=int, default=14, show_default=True, help="Same seed, same data.")
@click.option("--library", type=click.Path(path_type=Path, exists=True), default=None, help="Segment files.")
@click.option("--force", is_flag=True, help="Add the demo to a store that holds other data.")
def demo(database_url: str | None, count: int, seed: int, library: Path | None, force: bool) -> int:
    """Seed synthetic profiles and four weeks of events, and apply the starter library.

    Safe to run twice: the demo's own profiles (demo-*) are replaced, segments updated.

    \b
    Example:
      segmentd demo && segmentd serve
      segmentd demo --database-url postgresql://me@db/segmentd
    """
    from segmentd.config import load_settings
    from segmentd.demo import STARTER_LIBRARY, StoreHoldsOtherData
    from segmentd.store.database import shown_url

    try:
        settings = load_settings(argparse.Namespace(database_url=database_url))
    except ValueError as exc:
        fail(EXIT_USAGE, str(exc))
    try:
        report = run_on_store(_run(settings.database_url, library or STARTER_LIBRARY, count, seed, force))
    except StoreHoldsOtherData as exc:
        fail(EXIT_CONFLICT, str(exc))
    for name, outcome in report.segments.items():
        click.echo(f"{outcome} {name}")
    click.echo(
        f"seeded {report.profiles} profiles and {report.event_rows} event days into"
        f" {shown_url(settings.database_url)}"
    )
    click.echo(_NEXT_STEPS)
    return EXIT_OK


async def _run(database_url: str, library: Path, count: int, seed: int, force: bool) -> DemoReport:
    from segmentd.demo import run_demo
    from segmentd.store.database import create_engine, create_sessionmaker
    from segmentd.store.migrate import migrate

    engine = create_engine(database_url)
    try:
        await migrate(engine)
        return await run_demo(
            create_sessionmaker(engine), library=library, count=count, seed=seed, force=force
        )
    finally:
        await engine.dispose()


_NEXT_STEPS: Final = """
Try next (start the server first: segmentd serve):
  segmentd list --label library=starter
  segmentd count inactive-users
  segmentd eval demo-00001
  segmentd explain demo-00001 at-risk
  segmentd members advocates --output advocates.csv"""

COMMANDS: Final = (demo,)
