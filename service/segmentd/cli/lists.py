"""``segmentd lists create|get|list|delete|import``: user lists, through the typed client.

``lists import NAME FILE`` reads one user id per line (a ``.txt`` file, blank lines skipped), or
one column of a CSV file with a header (``.csv``, or any file with ``--column``; the column
``user_id`` by default), and sends the ids in one call: added to the list, or with
``--replace`` replacing it atomically. An unreadable file changes nothing.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from segmentd.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, client_command, echo_json, fail
from segmentd_client import Client, UserList

DEFAULT_COLUMN: Final = "user_id"


class _BadFile(Exception):
    """The file cannot be read as ids: nothing must change."""


@click.group(name="lists")
def lists_group() -> None:
    """Manage user lists: explicit sets of user ids, tested in rules with in_list.

    \b
    Example:
      segmentd lists create beta-testers --description "Early access"
      segmentd lists import beta-testers ids.txt
      segmentd lists import beta-testers export.csv --column account_id --replace
      segmentd lists get beta-testers
    """


@lists_group.command(name="create")
@click.argument("name")
@click.option("--description", default="", help="What the list is for.")
@client_command
def create_list(name: str, description: str, client: Client) -> int:
    """Create an empty user list.

    \b
    Example:
      segmentd lists create beta-testers --description "Asked for early access"
    """
    client.create_user_list(name, description=description)
    click.echo(f"created {name}")
    return EXIT_OK


@lists_group.command(name="get")
@click.argument("name")
@click.option("-o", "--output", "output", type=click.Choice(["text", "json"]), default="text")
@client_command
def get_list(name: str, output: str, client: Client) -> int:
    """Print a user list and its member count.

    \b
    Example:
      segmentd lists get beta-testers -o json
    """
    user_list = client.get_user_list(name)
    if output == "json":
        echo_json(dataclasses.asdict(user_list))
    else:
        _print_table([user_list])
    return EXIT_OK


@lists_group.command(name="list")
@client_command
def list_lists(client: Client) -> int:
    """Print every user list, by name, with its member count.

    \b
    Example:
      segmentd lists list
    """
    _print_table(client.list_user_lists())
    return EXIT_OK


@lists_group.command(name="delete")
@click.argument("name")
@client_command
def delete_list(name: str, client: Client) -> int:
    """Delete a user list and its members (refused while a segment tests it).

    \b
    Example:
      segmentd lists delete beta-testers
    """
    client.delete_user_list(name)
    click.echo(f"deleted {name}")
    return EXIT_OK


@lists_group.command(name="import")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--replace", is_flag=True, help="Replace the list's members (atomically) instead of adding.")
@click.option("--column", default=None, help="Read this column of a CSV file (default: user_id).")
@click.option(
    "--progress", "show_progress", is_flag=True, help="Show the progress bar even when not a terminal."
)
@client_command
def import_list(name: str, file: Path, client: Client, **options: Any) -> int:
    """Add the user ids of a file to a list (one id per line, or a CSV column), all or nothing.

    \b
    Example:
      segmentd lists import beta-testers ids.txt
      segmentd lists import beta-testers export.csv --column account_id --replace
    """
    as_csv = file.suffix.lower() == ".csv" or options["column"] is not None
    try:
        opened = file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        fail(EXIT_USAGE, f"{file}: {exc.strerror or exc}")
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("importing: {task.completed} ids"), TimeElapsedColumn())
    with (
        opened,
        Progress(
            *columns, console=console, disable=not (options["show_progress"] or console.is_terminal)
        ) as progress,
    ):
        task = progress.add_task("import", total=None)
        ids = _csv_ids(opened, options["column"] or DEFAULT_COLUMN) if as_csv else _line_ids(opened)
        change = client.replace_list_members if options["replace"] else client.add_list_members
        try:
            count = change(name, ids, on_sent=lambda sent: progress.advance(task, sent), timeout=None)
        except _BadFile as exc:
            fail(EXIT_INVALID, f"{file}: {exc}; the list was not changed")
        except UnicodeDecodeError as exc:
            fail(EXIT_INVALID, f"{file}: not UTF-8 text ({exc.reason}); the list was not changed")
    verb = "replaced the members of" if options["replace"] else "imported into"
    click.echo(f"{verb} {name} from {file}: {count} members")
    return EXIT_OK


def _line_ids(lines: IO[str]) -> Iterator[str]:
    for line in lines:
        user_id = line.strip()
        if user_id:
            yield user_id


def _csv_ids(lines: IO[str], column: str) -> Iterator[str]:
    # strict: an unterminated quote is an error, not a member spanning the rest of the file
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
        if header is None or column not in header:
            raise _BadFile(f"no column {column!r} in the header (use --column)")
        index = header.index(column)
        for row in reader:
            if not row:
                continue
            if index >= len(row):
                raise _BadFile(f"line {reader.line_num}: no value in column {column!r}")
            yield row[index].strip()
    except csv.Error as exc:
        raise _BadFile(f"line {reader.line_num}: malformed CSV: {exc}") from None


def _print_table(user_lists: list[UserList]) -> None:
    rows = [("NAME", "MEMBERS", "DESCRIPTION")] + [
        (user_list.name, str(user_list.member_count), user_list.description) for user_list in user_lists
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}".rstrip())


COMMANDS: Final = (lists_group,)
