"""The ``segmentd`` command: ``serve``, ``migrate`` and ``import``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from segmentd.config import Settings, add_arguments, load_settings
from segmentd.observability.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segmentd", description="Which segments does this user belong to?")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the gRPC server")
    add_arguments(serve)
    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate.add_argument(
        "--database-url", dest="database_url", default=None, help="(env SEGMENTD_DATABASE_URL)"
    )
    from segmentd.importer_cli import add_import_command

    add_import_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``segmentd`` command line; return the exit status."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "import":
        # A client of a running server: the server's settings are none of its business.
        from segmentd.importer_cli import run_import

        return run_import(arguments)
    try:
        settings = load_settings(arguments)
        configure_logging(settings.log_format)  # text or JSON lines on stderr
    except ValueError as exc:
        print(f"segmentd: {exc}", file=sys.stderr)
        return 2
    # Alembic logs every plugin it loads at INFO; only the migrations it runs are of interest.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if arguments.command == "serve":
        return _serve(settings)
    from segmentd.store.migrate import migrate

    asyncio.run(migrate(settings.database_url))
    print(f"migrated {settings.database_url}")
    return 0


def _serve(settings: Settings) -> int:
    if settings.workers <= 1:
        from segmentd.server import serve

        asyncio.run(serve(settings))
        return 0
    from segmentd.workers import WorkersNeedPostgreSQL, serve_workers

    try:
        return asyncio.run(serve_workers(settings))
    except WorkersNeedPostgreSQL as exc:
        print(f"segmentd: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
