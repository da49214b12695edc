"""Import files to profiles: CSV with typed columns, and JSON Lines.

    read_csv(lines)    header ``user_id,plan,mrr:number,company.size:integer,...`` then one row a profile
    read_jsonl(lines)  one ``{"user_id": "...", "traits": {...}}`` object a line

Both yield, in file order, a :class:`FileProfile` per record or a :class:`RowError` for a
record that cannot be read, each with the 1-based line number where the record starts, so
that every message about a record can point into the file. Only the file format is checked
here; the profile rules (user id length, traits size, ...) are the server's, and the
command line maps its answers back to lines.

Pure: no I/O beyond the iterables given, no grpc.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Final, Literal

from segmentd.engine.times import parse_time_us
from segmentd.store.checks import MAX_TRAITS_DEPTH
from segmentd_client._convert import nested_deeper_than

if TYPE_CHECKING:
    from _csv import Reader

Format = Literal["csv", "jsonl"]

#: The format a file name's suffix implies (``--format`` overrides it).
FORMATS_BY_SUFFIX: Final[dict[str, Format]] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

#: Column types of the CSV header (``name:type``); ``string`` when no type is given.
COLUMN_TYPES: Final = ("string", "number", "integer", "boolean", "json", "time")

USER_ID_COLUMN: Final = "user_id"

# Struct carries numbers as doubles: a larger integer would arrive changed.
MAX_EXACT_INTEGER: Final = 2**53

_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER: Final = re.compile(r"-?[0-9]+")
_BOOLEANS: Final = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class HeaderError(ValueError):
    """The CSV header cannot be used; nothing in the file can be imported."""


@dataclass(frozen=True, slots=True)
class FileProfile:
    """A profile read from the file.

    Attributes:
        line: the 1-based line where its record starts.
        user_id: the user id, as written (the server checks it).
        traits: the traits, nested along dotted column names.
    """

    line: int
    user_id: str
    traits: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RowError:
    """A record that cannot be read.

    Attributes:
        line: the 1-based line where the record starts.
        field: the column (CSV) or key (JSON Lines) at fault, or ``csv``/``json`` for the record.
        message: what is wrong, for people.
    """

    line: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a CSV header.

    Attributes:
        header: the header cell, as written.
        path: the trait's path (``("company", "size")``); empty for the ``user_id`` column.
        type: one of ``COLUMN_TYPES``.
    """

    header: str
    path: tuple[str, ...]
    type: str


def format_for_path(path: str | PurePath) -> Format | None:
    """Return the format a file name implies (``.csv``, ``.jsonl``/``.ndjson``), or None."""
    return FORMATS_BY_SUFFIX.get(PurePath(path).suffix.lower())


def parse_header(cells: Sequence[str]) -> list[Column]:
    """Decode a CSV header row: ``user_id`` once, then ``name[:type]`` trait columns.

    The type follows the last colon (write ``a:b:string`` for a trait named ``a:b``);
    dots in a name nest objects (``company.size``). No column may sit inside another's
    path (``company`` beside ``company.size``).

    Raises:
        HeaderError: naming the column at fault.
    """
    columns = [_parse_column(cell.strip()) for cell in cells]
    ids = [column for column in columns if not column.path]
    if len(ids) != 1:
        raise HeaderError(f"the header must have exactly one {USER_ID_COLUMN!r} column, it has {len(ids)}")
    paths: dict[tuple[str, ...], str] = {}
    for column in columns:
        if column.path:
            _check_no_overlap(column, paths)
            paths[column.path] = column.header
    return columns


def _parse_column(header: str) -> Column:
    name, colon, type_name = header.rpartition(":")
    if not colon:
        name, type_name = header, "string"
    if type_name not in COLUMN_TYPES:
        known = ", ".join(COLUMN_TYPES)
        raise HeaderError(f"column {header!r}: unknown type {type_name!r}; use one of {known}")
    if name == USER_ID_COLUMN:
        if type_name != "string":
            raise HeaderError(f"column {header!r}: {USER_ID_COLUMN} is a string")
        return Column(header, (), "string")
    path = tuple(name.split("."))
    if not all(path):
        raise HeaderError(f"column {header!r}: empty name, or an empty part in a dotted name")
    if len(path) > MAX_TRAITS_DEPTH:
        raise HeaderError(
            f"column {header!r}: more than {MAX_TRAITS_DEPTH} parts (traits nest at most that deep)"
        )
    return Column(header, path, type_name)


def _check_no_overlap(column: Column, paths: dict[tuple[str, ...], str]) -> None:
    for other_path, other_header in paths.items():
        shorter = min(len(other_path), len(column.path))
        if other_path[:shorter] == column.path[:shorter]:
            raise HeaderError(f"columns {other_header!r} and {column.header!r} write the same trait")


def read_csv(lines: Iterable[str]) -> Iterator[FileProfile | RowError]:
    """Read the header of CSV text now, and return its records (open with ``newline=""``).

    Blank lines are skipped; an empty cell leaves its trait out.

    Raises:
        HeaderError: the header row is missing or unusable (raised here, before any record).
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise HeaderError(f"line 1: malformed CSV: {exc}") from exc
    if header is None:
        raise HeaderError("the file is empty: a header row is required")
    return _csv_records(reader, parse_header(header))


def _csv_records(reader: Reader, columns: Sequence[Column]) -> Iterator[FileProfile | RowError]:
    last_line = reader.line_num
    while True:
        # line_num counts physical lines read, so a record starts right after the last one.
        start = last_line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells = None
            yield RowError(start, "csv", f"malformed CSV: {exc}")
        last_line = reader.line_num
        if cells:
            yield _csv_record(start, columns, cells)


def _csv_record(line: int, columns: Sequence[Column], cells: Sequence[str]) -> FileProfile | RowError:
    if len(cells) != len(columns):
        return RowError(line, "csv", f"expected {len(columns)} cells as in the header, found {len(cells)}")
    user_id = ""
    traits: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=True):
        if not column.path:
            user_id = cell
        elif cell != "":
            try:
                value = CELL_PARSERS_BY_TYPE[column.type](cell)
            except ValueError as exc:
                return RowError(line, column.header, str(exc))
            # A value of a dotted column sits one level further down for each part.
            if nested_deeper_than(value, MAX_TRAITS_DEPTH - len(column.path)):
                return RowError(line, column.header, TOO_DEEP)
            _set_path(traits, column.path, value)
    return FileProfile(line, user_id, traits)


def _set_path(traits: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = traits
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def parse_number(cell: str) -> int | float:
    """Parse a JSON number (surrounding blanks allowed); integers stay ``int``.

    Raises:
        ValueError: not a JSON number, not finite, or an integer too large to send exactly.
    """
    text = cell.strip()
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise ValueError(f"{cell!r} is not a number")
    if match.group(1) is None and match.group(2) is None:
        return _exact_integer(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{cell!r} is too large")
    return value


def parse_integer(cell: str) -> int:
    """Parse an integer (surrounding blanks allowed).

    Raises:
        ValueError: not an integer, or one beyond ±2⁵³ (numbers travel as doubles).
    """
    text = cell.strip()
    if _INTEGER.fullmatch(text) is None:
        raise ValueError(f"{cell!r} is not an integer")
    return _exact_integer(text)


def _exact_integer(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_EXACT_INTEGER:
        raise ValueError(f"{text} is beyond ±2^53, the largest integer sent exactly")
    return value


def parse_boolean(cell: str) -> bool:
    """Parse true/false, 1/0 or yes/no, in any case (surrounding blanks allowed).

    Raises:
        ValueError: anything else.
    """
    value = _BOOLEANS.get(cell.strip().lower())
    if value is None:
        raise ValueError(f"{cell!r} is not a boolean (true/false, 1/0, yes/no)")
    return value


#: Python's JSON parser recurses once per level; far deeper than any trait may be (16 levels).
TOO_DEEP: Final = f"nested too deeply to read (traits hold at most {MAX_TRAITS_DEPTH} levels)"


def parse_json(cell: str) -> Any:
    """Parse any JSON value; NaN and Infinity are refused, as JSON does.

    Raises:
        ValueError: not JSON.
    """
    try:
        value = json.loads(cell, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    if nested_deeper_than(value, MAX_TRAITS_DEPTH - 1):
        raise ValueError(TOO_DEEP)  # a cell is a trait's value, one level below the traits
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_time(cell: str) -> str:
    """Check an RFC 3339 date-time with its offset; return it as written (blanks stripped).

    Raises:
        ValueError: not such a time (a date alone, or a time without offset, is not one).
    """
    text = cell.strip()
    if parse_time_us(text) is None:
        raise ValueError(f"{cell!r} is not an RFC 3339 time such as 2026-03-01T09:30:00Z")
    return text


CELL_PARSERS_BY_TYPE: Final[dict[str, Callable[[str], Any]]] = {
    "string": str,
    "number": parse_number,
    "integer": parse_integer,
    "boolean": parse_boolean,
    "json": parse_json,
    "time": parse_time,
}


def read_jsonl(lines: Iterable[str]) -> Iterator[FileProfile | RowError]:
    """Read profiles from JSON Lines: ``{"user_id": "...", "traits": {...}}`` a line.

    Blank lines are skipped; ``traits`` may be left out (no traits).
    """
    for line_number, line in enumerate(lines, start=1):
        if line.strip():
            yield _jsonl_record(line_number, line)


def _jsonl_record(line: int, text: str) -> FileProfile | RowError:
    try:
        record = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        return RowError(line, "json", f"not valid JSON: {exc}")
    except RecursionError:
        return RowError(line, "json", TOO_DEEP)
    if not isinstance(record, dict):
        return RowError(line, "json", "each line must be a JSON object")
    unknown = sorted(set(record) - {USER_ID_COLUMN, "traits"})
    if unknown:
        return RowError(line, unknown[0], "unknown key; a line holds only user_id and traits")
    user_id = record.get(USER_ID_COLUMN)
    if not isinstance(user_id, str):
        return RowError(line, USER_ID_COLUMN, "is required and must be a string")
    traits = record.get("traits", {})
    if not isinstance(traits, dict):
        return RowError(line, "traits", "must be a JSON object")
    if nested_deeper_than(traits, MAX_TRAITS_DEPTH):
        return RowError(line, "traits", TOO_DEEP)
    return FileProfile(line, user_id, traits)
