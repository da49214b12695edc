"""``segmentd events prune``: store maintenance, run against the database, not a server.

Like ``segmentd migrate``, it reads ``--database-url`` (or ``SEGMENTD_DATABASE_URL``) and the
retention setting (``--retention-days`` or ``SEGMENTD_EVENT_RETENTION_DAYS``), and is safe to
run while servers serve: it deletes in small batches, one short transaction each.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import Final

import click

from segmentd.cli.common import EXIT_OK, EXIT_USAGE, fail
from segmentd.cli.store_access import run_on_store
from segmentd.config import load_settings


@click.command()
@click.option("--database-url", default=None, help="(env SEGMENTD_DATABASE_URL)")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    help="Keep this many days (env SEGMENTD_EVENT_RETENTION_DAYS, default 730; 0 keeps all).",
)
@click.option("--dry-run", is_flag=True, help="Say which days would be removed, remove nothing.")
def prune(database_url: str | None, retention_days: int | None, dry_run: bool) -> int:
    """Remove the event days older than the retention, in small batches.

    \b
    Example:
      segmentd events prune --database-url postgresql://me@db/segmentd
      segmentd events prune --retention-days 90 --dry-run
    """
    try:
        settings = load_settings(
            argparse.Namespace(database_url=database_url, event_retention_days=retention_days)
        )
    except ValueError as exc:
        fail(EXIT_USAGE, str(exc))
    oldest = settings.event_retention.oldest_day(datetime.now(UTC))
    if oldest is None:
        click.echo("retention is 0 (keep every day): nothing to prune")
        return EXIT_OK
    if dry_run:
        prunable = run_on_store(_prune(settings.database_url, oldest, dry_run=True))
        click.echo(f"would remove {prunable} event day rows before {oldest.isoformat()}")
        return EXIT_OK
    removed = run_on_store(_prune(settings.database_url, oldest))
    click.echo(f"removed {removed} event day rows before {oldest.isoformat()}")
    return EXIT_OK


async def _prune(database_url: str, oldest: date, *, dry_run: bool = False) -> int:
    # Imported here so that the other commands start without loading the store.
    from segmentd.store.database import create_engine, create_sessionmaker
    from segmentd.store.retention import count_prunable, prune_events

    engine = create_engine(database_url)
    try:
        sessions = create_sessionmaker(engine)
        return await (count_prunable if dry_run else prune_events)(sessions, oldest)
    finally:
        await engine.dispose()


COMMANDS: Final = (prune,)
