"""``segmentd import FILE``: stream a CSV or JSON Lines file of profiles to a running server.

    FILE ─> import_formats (FileProfile | RowError, each with its line)
         ─> ImportProfilesRequest messages ─> ProfileService.ImportProfiles (one transaction)
         ─> report, the server's stream positions mapped back to file lines

The server stores all or nothing. Without ``--skip-invalid``, a row this command cannot read
cancels the call at once (the server then rolls back), and the rest of the file is only read
to report every unreadable row. Exit status: 0 imported, 1 invalid input or a failed
import, 2 usage error, 3 server unreachable (or its database unavailable).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import grpc
from grpc import aio
from tqdm import tqdm

from segmentd.import_formats import (
    FileProfile,
    Format,
    HeaderError,
    RowError,
    format_for_path,
    read_csv,
    read_jsonl,
)
from segmentd_client.v1 import profiles_pb2, profiles_pb2_grpc

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
    ImportCall = aio.StreamUnaryCall[profiles_pb2.ImportProfilesRequest, profiles_pb2.ImportProfilesResponse]

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3

DEFAULT_TARGET: Final = "localhost:50051"
DEFAULT_BATCH_SIZE: Final = 500
#: Messages stay well under the server's 4 MiB default receive limit.
MAX_MESSAGE_BYTES: Final = 1024 * 1024
#: Invalid rows printed one by one; the summary counts them all.
MAX_PRINTED_ERRORS: Final = 1000

# How the server names a profile of the stream: its 1-based position.
_PROFILE_AT_POSITION: Final = re.compile(r"profiles\[(\d+)\]\.?")

READERS_BY_FORMAT: Final[dict[Format, Callable[[Iterable[str]], Iterator[FileProfile | RowError]]]] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
}


def add_import_command(subparsers: Subparsers) -> None:
    """Add ``import`` to the ``segmentd`` sub-commands."""
    _add_arguments(subparsers.add_parser("import", help="import profiles from a CSV or JSON Lines file"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``segmentd import`` alone, with ``argv`` as its arguments; return the exit status."""
    parser = argparse.ArgumentParser(prog="segmentd import")
    _add_arguments(parser)
    return run_import(parser.parse_args(argv))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Import profiles into a running segmentd server, all or nothing (see docs/import.md)."
    )
    parser.add_argument("file", type=Path, help="a .csv or .jsonl file")
    parser.add_argument(
        "--format", choices=sorted(READERS_BY_FORMAT), help="default: from the file's extension"
    )
    parser.add_argument("--replace", action="store_true", help="replace stored traits instead of merging")
    parser.add_argument(
        "--skip-invalid", action="store_true", help="import the valid rows, report the others"
    )
    parser.add_argument("--target", default=DEFAULT_TARGET, help=f"server address (default {DEFAULT_TARGET})")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, help="profiles per message"
    )
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to wait for the server")
    parser.add_argument("--progress", action="store_true", help="show the progress bar even when not a TTY")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run_import(arguments: argparse.Namespace) -> int:
    """Import ``arguments.file`` into the server at ``arguments.target``; return the exit status."""
    path: Path = arguments.file
    file_format: Format | None = arguments.format or format_for_path(path)
    if file_format is None:
        return _fail(EXIT_USAGE, f"{path}: unknown file type; use --format csv or --format jsonl")
    try:
        file = path.open(encoding="utf-8-sig", newline="" if file_format == "csv" else None)
    except OSError as exc:
        return _fail(EXIT_USAGE, f"{path}: {exc.strerror or exc}")
    with file:
        try:
            records = READERS_BY_FORMAT[file_format](file)
            return asyncio.run(_import_file(path, records, arguments))
        except HeaderError as exc:
            return _fail(EXIT_INVALID, f"{path}: {exc}; nothing was imported")
        except UnicodeDecodeError as exc:
            return _fail(EXIT_INVALID, f"{path}: not UTF-8 text ({exc.reason}); nothing was imported")


async def _import_file(
    path: Path, records: Iterator[FileProfile | RowError], arguments: argparse.Namespace
) -> int:
    options = [("grpc.max_send_message_length", 2 * MAX_MESSAGE_BYTES)]
    async with aio.insecure_channel(arguments.target, options=options) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), arguments.connect_timeout)
        except TimeoutError:
            return _fail(EXIT_UNREACHABLE, f"cannot reach a segmentd server at {arguments.target}")
        upload = _Upload(profiles_pb2_grpc.ProfileServiceStub(channel), arguments)
        show = arguments.progress or sys.stderr.isatty()
        with tqdm(desc="importing", unit=" rows", file=sys.stderr, disable=not show) as progress:
            try:
                response = await upload.run(records, progress)
            except aio.AioRpcError as exc:
                progress.close()
                return _rpc_failure(path, exc, upload.lines, arguments.target)
    return _report(path, upload, response)


class _Upload:
    """One ImportProfiles call fed from the file, and what it learned about the rows."""

    def __init__(
        self, stub: profiles_pb2_grpc.ProfileServiceAsyncStub, arguments: argparse.Namespace
    ) -> None:
        self.lines = LineMap()
        self.problems: list[RowError] = []
        self.problem_count = 0
        self._options = arguments
        self._call: ImportCall = stub.ImportProfiles()
        self._batch: list[profiles_pb2.Profile] = []
        self._batch_bytes = 0
        self._sent_first = False

    async def run(
        self, records: Iterator[FileProfile | RowError], progress: tqdm[Any]
    ) -> profiles_pb2.ImportProfilesResponse | None:
        """Send every readable row; return the server's response, or None once cancelled."""
        for record in records:
            progress.update()
            if isinstance(record, RowError):
                self._reject(record)
                progress.set_postfix(invalid=self.problem_count, refresh=False)
            elif not self._call.cancelled():
                await self._add(record)
        if self._call.cancelled():
            return None
        await self._flush()
        await self._call.done_writing()
        return await self._call

    def _reject(self, problem: RowError) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PRINTED_ERRORS:
            self.problems.append(problem)
        if not self._options.skip_invalid:
            # Nothing may be committed now: let the server roll back while we read on.
            self._call.cancel()

    async def _add(self, record: FileProfile) -> None:
        profile = profiles_pb2.Profile(user_id=record.user_id)
        profile.traits.update(record.traits)
        size = profile.ByteSize()
        if size > MAX_MESSAGE_BYTES:
            self._reject(RowError(record.line, "traits", f"the profile is {size} bytes, too large to send"))
            return
        if self._batch and self._batch_bytes + size > MAX_MESSAGE_BYTES:
            await self._flush()
        self.lines.add(record.line)
        self._batch.append(profile)
        self._batch_bytes += size
        if len(self._batch) >= self._options.batch_size:
            await self._flush()

    async def _flush(self) -> None:
        if self._sent_first and not self._batch:
            return
        request = profiles_pb2.ImportProfilesRequest(profiles=self._batch)
        if not self._sent_first:
            request.replace = self._options.replace
            request.skip_invalid = self._options.skip_invalid
        self._batch, self._batch_bytes, self._sent_first = [], 0, True
        try:
            await self._call.write(request)
        except asyncio.InvalidStateError:
            await self._call  # the call ended early: raise its status
            raise


def _report(path: Path, upload: _Upload, response: profiles_pb2.ImportProfilesResponse | None) -> int:
    if response is None:
        _print_problems(path, upload.problems, upload.problem_count)
        return _fail(
            EXIT_INVALID,
            f"{path}: {_invalid_rows(upload.problem_count)}; nothing was imported "
            "(--skip-invalid imports the valid rows)",
        )
    server_problems = [
        RowError(upload.lines.line_of(error.index) or 0, error.field, error.message)
        for error in response.errors
    ]
    problems = sorted([*upload.problems, *server_problems], key=lambda problem: problem.line)
    skipped = upload.problem_count + response.skipped
    _print_problems(path, problems, skipped)
    summary = f"imported {response.imported} profiles from {path}"
    print(summary + (f"; skipped {_invalid_rows(skipped)}" if skipped else ""))
    return EXIT_OK


def _print_problems(path: Path, problems: Sequence[RowError], total: int) -> None:
    shown = problems[:MAX_PRINTED_ERRORS]
    for problem in shown:
        print(f"{path}:{problem.line}: {problem.field}: {problem.message}", file=sys.stderr)
    if total > len(shown):
        print(f"{path}: ... and {_invalid_rows(total - len(shown))} more", file=sys.stderr)


def _rpc_failure(path: Path, error: aio.AioRpcError, lines: LineMap, target: str) -> int:
    details = error.details() or ""
    if error.code() == grpc.StatusCode.UNAVAILABLE:
        return _fail(
            EXIT_UNREACHABLE, f"the server at {target} is unavailable: {details}; nothing was imported"
        )
    if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
        line, rest = lines.locate(details)
        return _fail(EXIT_INVALID, f"{path}:{line}: {rest}" if line else f"{path}: {details}")
    return _fail(EXIT_INVALID, f"import failed: {error.code().name}: {details}; nothing was imported")


def _invalid_rows(count: int) -> str:
    return f"{count} invalid row{'' if count == 1 else 's'}"


def _fail(status: int, message: str) -> int:
    print(f"segmentd import: {message}", file=sys.stderr)
    return status


class LineMap:
    """Remembers the file line of each profile sent, by its 1-based position in the stream.

    Lines usually follow positions at a constant offset, so only the positions where the
    offset changes are kept: memory grows with blank, multi-line and skipped records, not
    with the size of the file.
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._offsets: list[int] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, line: int) -> int:
        """Record the next profile sent, read at ``line``; return its position (from 1)."""
        self._count += 1
        offset = line - self._count
        if not self._offsets or self._offsets[-1] != offset:
            self._starts.append(self._count)
            self._offsets.append(offset)
        return self._count

    def line_of(self, index: int) -> int | None:
        """Return the line of the profile at position ``index``, or None if none was sent there."""
        if not 1 <= index <= self._count:
            return None
        return index + self._offsets[bisect_right(self._starts, index) - 1]

    def locate(self, text: str) -> tuple[int | None, str]:
        """Split a server message ``profiles[i].field: why`` into ``(line, "field: why")``.

        Returns ``(None, text)`` when ``text`` names no profile that was sent.
        """
        match = _PROFILE_AT_POSITION.match(text)
        line = None if match is None else self.line_of(int(match.group(1)))
        if match is None or line is None:
            return None, text
        return line, text[match.end() :]
