"""``segmentd import FILE``: a CSV or JSON Lines file of profiles, through the typed client.

    FILE ─> import_formats (FileProfile | RowError, each with its line)
         ─> Client.import_profiles (one ImportProfiles call, one transaction)
         ─> report, every position the server names mapped back to a file line

The server stores all or nothing. Without ``--skip-invalid``, a row this command cannot read
cancels the call at once (the server then rolls back), and the rest of the file is only read
to report every unreadable row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from segmentd.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, client_command, echo_error, fail
from segmentd.import_formats import (
    FileProfile,
    Format,
    HeaderError,
    RowError,
    format_for_path,
    read_csv,
    read_jsonl,
)
from segmentd_client import Client, ImportResult, errors
from segmentd_client._importing import PositionMap

DEFAULT_BATCH_SIZE: Final = 500
#: Invalid rows printed one by one; the summary counts them all.
MAX_PRINTED_ERRORS: Final = 1000

# How the server names a profile of the stream: its 1-based position.
_PROFILE_AT_POSITION: Final = re.compile(r"profiles\[(\d+)\]\.?")

READERS_BY_FORMAT: Final[dict[Format, Callable[[Iterable[str]], Iterator[FileProfile | RowError]]]] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
}


class _Unreadable(Exception):
    """A row could not be read: the import must store nothing."""


@click.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(sorted(READERS_BY_FORMAT)),
    help="Default: from the file's extension.",
)
@click.option("--replace", is_flag=True, help="Replace stored traits instead of merging.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows, report the others.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Profiles per message.",
)
@click.option(
    "--connect-timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the server."
)
@click.option(
    "--progress", "show_progress", is_flag=True, help="Show the progress bar even when not a terminal."
)
@client_command
def import_command(file: Path, file_format: Format | None, client: Client, **options: Any) -> int:
    """Import profiles from a CSV or JSON Lines file, all or nothing (see docs/import.md).

    \b
    Example:
      segmentd import users.csv
      segmentd import users.jsonl --skip-invalid --replace
    """
    file_format = file_format or format_for_path(file)
    if file_format is None:
        fail(EXIT_USAGE, f"{file}: unknown file type; use --format csv or --format jsonl")
    try:
        opened = file.open(encoding="utf-8-sig", newline="" if file_format == "csv" else None)
    except OSError as exc:
        fail(EXIT_USAGE, f"{file}: {exc.strerror or exc}")
    with opened:
        try:
            client.wait_ready(options["connect_timeout"])
            return _Import(file, READERS_BY_FORMAT[file_format](opened), options).run(client)
        except HeaderError as exc:
            fail(EXIT_INVALID, f"{file}: {exc}; nothing was imported")
        except UnicodeDecodeError as exc:
            fail(EXIT_INVALID, f"{file}: not UTF-8 text ({exc.reason}); nothing was imported")


class _Import:
    """One import of a file: the rows fed to the client, and what was learned about them."""

    def __init__(
        self, path: Path, records: Iterator[FileProfile | RowError], options: dict[str, Any]
    ) -> None:
        self.path, self.records, self.options = path, records, options
        self.lines = LineMap()
        self.problems: list[RowError] = []
        self.problem_count = 0

    def run(self, client: Client) -> int:
        """Import the file; return the exit status (or fail with the reason)."""
        console = Console(stderr=True)
        show = self.options["show_progress"] or console.is_terminal
        columns = (SpinnerColumn(), TextColumn("importing: {task.completed} rows"), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=not show, transient=False) as progress:
            task = progress.add_task("import", total=None)
            try:
                result = client.import_profiles(
                    self._profiles(lambda: progress.advance(task)),
                    replace=self.options["replace"],
                    skip_invalid=self.options["skip_invalid"],
                    batch_size=self.options["batch_size"],
                    timeout=None,
                )
            except _Unreadable:
                for record in self.records:  # read on, to report every unreadable row
                    if isinstance(record, RowError):
                        self._reject(record)
                return self._refused()
            except errors.SegmentdError as exc:
                raise self._located(exc) from None
        return self._report(result)

    def _profiles(self, advance: Callable[[], None]) -> Iterator[dict[str, Any]]:
        for record in self.records:
            advance()
            if isinstance(record, RowError):
                self._reject(record)
                if not self.options["skip_invalid"]:
                    raise _Unreadable
                continue
            self.lines.add(record.line)
            yield {"user_id": record.user_id, "traits": record.traits}

    def _reject(self, problem: RowError) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PRINTED_ERRORS:
            self.problems.append(problem)

    def _refused(self) -> int:
        _print_problems(self.path, self.problems, self.problem_count)
        fail(
            EXIT_INVALID,
            f"{self.path}: {_invalid_rows(self.problem_count)}; nothing was imported "
            "(--skip-invalid imports the valid rows)",
        )

    def _located(self, error: errors.SegmentdError) -> errors.SegmentdError:
        if isinstance(error, errors.InvalidArgument):
            line, rest = self.lines.locate(error.details)
            fail(EXIT_INVALID, f"{self.path}:{line}: {rest}" if line else f"{self.path}: {error.details}")
        if isinstance(error, errors.Unavailable):
            error.details += "; nothing was imported"
        return error

    def _report(self, result: ImportResult) -> int:
        server_problems = [
            RowError(self.lines.line_of(problem.index) or 0, problem.field, problem.message)
            for problem in result.problems
        ]
        problems = sorted([*self.problems, *server_problems], key=lambda problem: problem.line)
        skipped = self.problem_count + result.skipped
        _print_problems(self.path, problems, skipped)
        summary = f"imported {result.imported} profiles from {self.path}"
        click.echo(summary + (f"; skipped {_invalid_rows(skipped)}" if skipped else ""))
        return EXIT_OK


def _print_problems(path: Path, problems: Sequence[RowError], total: int) -> None:
    shown = problems[:MAX_PRINTED_ERRORS]
    for problem in shown:
        click.echo(f"{path}:{problem.line}: {problem.field}: {problem.message}", err=True)
    if total > len(shown):
        echo_error(f"{path}: ... and {_invalid_rows(total - len(shown))} more")


def _invalid_rows(count: int) -> str:
    return f"{count} invalid row{'' if count == 1 else 's'}"


class LineMap(PositionMap):
    """Remembers the file line of each profile sent, by its 1-based position in the stream.

    Lines usually follow positions at a constant offset, so only the positions where the
    offset changes are kept: memory grows with blank, multi-line and skipped records, not
    with the size of the file.
    """

    def line_of(self, index: int) -> int | None:
        """Return the line of the profile at position ``index``, or None if none was sent there."""
        return self.get(index)

    def locate(self, text: str) -> tuple[int | None, str]:
        """Split a server message ``profiles[i].field: why`` into ``(line, "field: why")``.

        Returns ``(None, text)`` when ``text`` names no profile that was sent.
        """
        match = _PROFILE_AT_POSITION.match(text)
        line = None if match is None else self.line_of(int(match.group(1)))
        if match is None or line is None:
            return None, text
        return line, text[match.end() :]


COMMANDS: Final = (import_command,)
