"""``segmentd serve`` and ``segmentd migrate``: the server itself, not a client of it.

``serve`` has one option per field of ``segmentd.config.Settings``, generated from the
dataclass (a new setting is a new flag, with nothing to add here): ``--port``,
``--database-url``, ``--migrate/--no-migrate``, ... A flag wins over its ``SEGMENTD_*``
variable, which wins over the default (``segmentd.config.load_settings``).
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from typing import Any, Final

import click

from segmentd.cli.common import EXIT_OK, EXIT_USAGE, fail
from segmentd.cli.store_access import run_on_store
from segmentd.config import Settings, load_settings
from segmentd.observability.logs import configure_logging

_CLICK_TYPE_BY_NAME: Final[dict[str, click.ParamType[Any]]] = {
    "int": click.INT,
    "float": click.FLOAT,
    "str": click.STRING,
}


def _descriptions() -> dict[str, str]:
    """Each setting's description, from the ``Attributes:`` section of ``Settings``' docstring."""
    found: dict[str, str] = {}
    name = ""
    for line in (Settings.__doc__ or "").split("Attributes:", 1)[-1].splitlines():
        match = re.fullmatch(r"\s{8}(\w+): (.*)", line)
        if match:
            name, found[match[1]] = match[1], match[2]
        elif name and line.strip():
            found[name] += " " + line.strip()
    return found


def _default_shown(setting: Field[Any]) -> str:
    # A field kept out of repr (a secret) keeps its default out of --help too.
    if not setting.repr:
        return "built in; set it in production"
    default = setting.default if setting.default is not MISSING else None
    return repr(default)


def _option(setting: Field[Any], description: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The option of one setting: ``--flag/--no-flag`` for a boolean, a typed value otherwise."""
    flag = "--" + setting.name.replace("_", "-")
    type_name = str(setting.type).removesuffix(" | None")
    description = description.replace("``", "").rstrip(".")
    help_text = f"{description} (env SEGMENTD_{setting.name.upper()}, default {_default_shown(setting)})"
    if type_name == "bool":
        no_flag = "--no-" + setting.name.replace("_", "-")
        return click.option(f"{flag}/{no_flag}", setting.name, default=None, help=help_text)
    if type_name not in _CLICK_TYPE_BY_NAME:
        raise TypeError(f"Settings.{setting.name}: no command-line type for {setting.type!r}")
    return click.option(flag, setting.name, type=_CLICK_TYPE_BY_NAME[type_name], default=None, help=help_text)


def _with_setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    descriptions = _descriptions()
    for setting in reversed(fields(Settings)):
        command = _option(setting, descriptions.get(setting.name, ""))(command)
    return command


def _configure_logging(log_format: str) -> None:
    try:
        configure_logging(log_format)  # text or JSON lines on stderr
    except ValueError as exc:
        fail(EXIT_USAGE, str(exc))
    # Alembic logs every plugin it loads at INFO; only the migrations it runs are of interest.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _settings(flags: dict[str, Any]) -> Settings:
    try:
        return load_settings(argparse.Namespace(**flags))
    except ValueError as exc:
        fail(EXIT_USAGE, str(exc))


@click.command()
@_with_setting_options
def serve(**flags: Any) -> int:
    """Start the gRPC server (on the embedded SQLite store unless told otherwise).

    Every setting is a flag and a SEGMENTD_* environment variable; a flag wins.

    \b
    Example:
      segmentd serve
      segmentd serve --port 6000 --database-url postgresql://me@db/segmentd
      segmentd serve --workers 2 --database-url postgresql://me@db/segmentd
    """
    settings = _settings(flags)
    _configure_logging(settings.log_format)
    from segmentd.security.tls import TLSFilesError

    try:
        return _run_server(settings)
    except TLSFilesError as exc:
        fail(EXIT_USAGE, str(exc))


def _run_server(settings: Settings) -> int:
    if settings.workers <= 1:
        from segmentd.server import serve as run_server

        run_on_store(run_server(settings))
        return EXIT_OK
    from segmentd.workers import WorkersNeedPostgreSQL, serve_workers

    try:
        return run_on_store(serve_workers(settings))
    except WorkersNeedPostgreSQL as exc:
        fail(EXIT_USAGE, str(exc))


@click.command()
@click.option("--database-url", default=None, help="(env SEGMENTD_DATABASE_URL)")
def migrate(database_url: str | None) -> int:
    """Apply the database migrations and exit.

    \b
    Example:
      segmentd migrate --database-url postgresql://me@db/segmentd
    """
    settings = _settings({"database_url": database_url})
    _configure_logging(settings.log_format)
    from segmentd.store.database import shown_url
    from segmentd.store.migrate import migrate as run_migrations

    run_on_store(run_migrations(settings.database_url))
    click.echo(f"migrated {shown_url(settings.database_url)}")
    return EXIT_OK


COMMANDS: Final = (serve, migrate)
