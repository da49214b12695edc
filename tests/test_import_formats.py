"""segmentd.import_formats: CSV with typed columns and JSON Lines, to profiles with line numbers."""

from __future__ import annotations

import io
from typing import Any

import pytest

from segmentd.errors import InvalidArgument
from segmentd.import_formats import (
    FileProfile,
    HeaderError,
    RowError,
    format_for_path,
    parse_boolean,
    parse_integer,
    parse_json,
    parse_number,
    parse_time,
    read_csv,
    read_jsonl,
)
from segmentd.store.checks import MAX_TRAITS_DEPTH, check_traits


def _csv(text: str) -> list[FileProfile | RowError]:
    return list(read_csv(io.StringIO(text, newline="")))


def _jsonl(text: str) -> list[FileProfile | RowError]:
    return list(read_jsonl(io.StringIO(text)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("users.csv", "csv"),
        ("USERS.CSV", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", None),
    ],
)
def test_format_for_path__by_suffix(name: str, expected: str | None) -> None:
    assert format_for_path(name) == expected


def test_read_csv__typed_columns__converted() -> None:
    # Given
    text = (
        "user_id,plan,mrr:number,seats:integer,trial:boolean,tags:json,signup:time,company.size:integer,"
        "company.country\n"
        'u1,free,49.5,3,yes,"[""a""]",2026-03-01T09:30:00Z,50,FR\n'
    )
    # When
    records = _csv(text)
    # Then
    assert records == [
        FileProfile(
            2,
            "u1",
            {
                "plan": "free",
                "mrr": 49.5,
                "seats": 3,
                "trial": True,
                "tags": ["a"],
                "signup": "2026-03-01T09:30:00Z",
                "company": {"size": 50, "country": "FR"},
            },
        )
    ]


def test_read_csv__empty_cells__traits_absent() -> None:
    # When
    records = _csv("user_id,plan,mrr:number,company.size:integer\nu1,,,\n")
    # Then
    assert records == [FileProfile(2, "u1", {})]


def test_read_csv__blank_and_multiline_records__start_lines_reported() -> None:
    # Given
    text = 'user_id,note,n:integer\n\nu1,"two\nlines",1\n\nu2,x,oops\nu3,y,3\n'
    # When
    records = _csv(text)
    # Then
    assert records == [
        FileProfile(3, "u1", {"note": "two\nlines", "n": 1}),
        RowError(6, "n:integer", "'oops' is not an integer"),
        FileProfile(7, "u3", {"note": "y", "n": 3}),
    ]


def test_read_csv__wrong_cell_count__row_error() -> None:
    # When
    records = _csv("user_id,a\nu1\nu2,x,y\nu3,z\n")
    # Then
    assert [(r.line, r.field) for r in records if isinstance(r, RowError)] == [(2, "csv"), (3, "csv")]
    assert records[-1] == FileProfile(4, "u3", {"a": "z"})


def test_read_csv__malformed_quoting__row_error_and_reading_goes_on() -> None:
    # When
    records = _csv('user_id,a\nu1,"x"y\nu2,z\n')
    # Then
    assert isinstance(records[0], RowError)
    assert (records[0].line, records[0].field) == (2, "csv")
    assert records[1] == FileProfile(3, "u2", {"a": "z"})


def test_read_csv__crlf_and_header_blanks__accepted() -> None:
    # When
    records = _csv("user_id , mrr:number \r\nu1,1\r\n")
    # Then
    assert records == [FileProfile(2, "u1", {"mrr": 1})]


def test_read_csv__colon_in_trait_name__type_after_the_last_colon() -> None:
    # When
    records = _csv("user_id,utm:source:string\nu1,ads\n")
    # Then
    assert records == [FileProfile(2, "u1", {"utm:source": "ads"})]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param("plan,mrr", "exactly one 'user_id' column, it has 0", id="no-user-id"),
        pytest.param("user_id,user_id", "exactly one 'user_id' column, it has 2", id="two-user-ids"),
        pytest.param("user_id,mrr:float", "unknown type 'float'", id="unknown-type"),
        pytest.param("user_id,a:b", "unknown type 'b'", id="colon-without-type"),
        pytest.param("user_id:integer", "user_id is a string", id="typed-user-id"),
        pytest.param("user_id,", "empty name", id="empty-column"),
        pytest.param("user_id,a..b", "empty part", id="empty-path-step"),
        pytest.param("user_id,plan,plan:string", "write the same trait", id="duplicate"),
        pytest.param("user_id,company:json,company.size", "write the same trait", id="prefix"),
        pytest.param("user_id,company.size,company", "write the same trait", id="prefix-after"),
    ],
)
def test_read_csv__bad_header__header_error(header: str, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        read_csv(io.StringIO(header + "\n"))


def test_read_csv__empty_file__header_error() -> None:
    with pytest.raises(HeaderError, match="empty"):
        read_csv(io.StringIO(""))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("0", 0), ("-12", -12), (" 42 ", 42), ("3.5", 3.5), ("-1e3", -1000.0), ("2E+2", 200.0), ("0.10", 0.1)],
)
def test_parse_number__json_numbers(cell: str, expected: Any) -> None:
    value = parse_number(cell)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "cell", ["", "abc", "1,5", "0x10", "1_000", "+1", ".5", "01", "NaN", "inf", "1e999", "9" * 17]
)
def test_parse_number__not_numbers__refused(cell: str) -> None:
    with pytest.raises(ValueError):
        parse_number(cell)


@pytest.mark.parametrize(("cell", "expected"), [("7", 7), ("-0", 0), ("007", 7), (str(2**53), 2**53)])
def test_parse_integer__integers(cell: str, expected: int) -> None:
    assert parse_integer(cell) == expected


@pytest.mark.parametrize("cell", ["1.0", "1e3", "x", "", str(2**53 + 1), "١"])
def test_parse_integer__not_integers__refused(cell: str) -> None:
    with pytest.raises(ValueError):
        parse_integer(cell)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("Yes", True),
        ("false", False),
        ("0", False),
        (" no ", False),
    ],
)
def test_parse_boolean__accepted_spellings(cell: str, expected: bool) -> None:
    assert parse_boolean(cell) is expected


@pytest.mark.parametrize("cell", ["t", "y", "2", "on", ""])
def test_parse_boolean__other_text__refused(cell: str) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_boolean(cell)


@pytest.mark.parametrize(
    ("cell", "expected"), [('{"a": [1, null]}', {"a": [1, None]}), ("null", None), ('"s"', "s"), ("2", 2)]
)
def test_parse_json__any_json_value(cell: str, expected: Any) -> None:
    assert parse_json(cell) == expected


@pytest.mark.parametrize("cell", ["{", "NaN", "[Infinity]", "'a'"])
def test_parse_json__not_json__refused(cell: str) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_json(cell)


@pytest.mark.parametrize("depth", [16, 400, 100_000])  # a cell is a trait: level 2 of the traits
def test_parse_json__nested_deeper_than_traits_may__refused(depth: int) -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json("[" * depth + "]" * depth)


def test_parse_json__as_deep_as_traits_may__accepted() -> None:
    assert parse_json("[" * 15 + "]" * 15) is not None


@pytest.mark.parametrize("depth", [17, 400, 100_000])
def test_read_jsonl__traits_nested_too_deep__that_row_refused(depth: int) -> None:
    deep = '{"user_id": "d", "traits": {"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}}"
    records = _jsonl(deep + '\n{"user_id": "ok"}')
    assert isinstance(records[0], RowError) and "nested too deeply" in records[0].message
    assert records[1] == FileProfile(2, "ok", {})


@pytest.mark.parametrize(
    "cell", ["2026-03-01T09:30:00Z", "2026-03-01t09:30:00.250+01:00", " 2026-03-01T09:30:00-05:00 "]
)
def test_parse_time__rfc3339__kept_as_written(cell: str) -> None:
    assert parse_time(cell) == cell.strip()


@pytest.mark.parametrize("cell", ["2026-03-01", "2026-03-01T09:30:00", "2026-02-30T00:00:00Z", "yesterday"])
def test_parse_time__not_rfc3339__refused(cell: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_time(cell)


def test_read_jsonl__profiles_blank_lines_and_errors__with_line_numbers() -> None:
    # Given
    text = "\n".join(
        [
            '{"user_id": "u1", "traits": {"plan": "free", "company": {"size": 5}}}',
            "",
            '{"user_id": "u2"}',
            "{not json",
            "[1, 2]",
            '{"user_id": 7}',
            '{"user_id": "u3", "traits": [1]}',
            '{"user_id": "u4", "trait": {}}',
            '{"user_id": "u5", "traits": {"x": NaN}}',
            "   ",
            '{"user_id": "", "traits": {"x": null}}',
        ]
    )
    # When
    records = _jsonl(text)
    # Then
    assert records[:2] == [
        FileProfile(1, "u1", {"plan": "free", "company": {"size": 5}}),
        FileProfile(3, "u2", {}),
    ]
    assert [(r.line, r.field) for r in records[2:7] if isinstance(r, RowError)] == [
        (4, "json"),
        (5, "json"),
        (6, "user_id"),
        (7, "traits"),
        (8, "trait"),
    ]
    assert isinstance(records[7], RowError)
    assert records[7].line == 9
    # The server checks user ids: an empty one is passed on.
    assert records[8] == FileProfile(11, "", {"x": None})


def _stored_by_the_server(traits: dict[str, Any]) -> bool:
    try:
        check_traits(traits, "traits")
    except InvalidArgument:
        return False
    return True


@pytest.mark.parametrize("parts", [1, 2, 8, 15])
@pytest.mark.parametrize("extra", [0, 1])
def test_read_csv__json_in_a_dotted_column__refused_exactly_where_the_server_would(
    parts: int, extra: int
) -> None:
    # Given: a json cell as deep as it may be under a column of `parts` parts, plus `extra`
    depth = MAX_TRAITS_DEPTH - parts + extra
    header = ".".join(f"k{i}" for i in range(parts)) + ":json"
    records = _csv(f"user_id,{header}\nd,{'[' * depth + ']' * depth}\n")
    # Then: the reader keeps the row exactly when the server would store it
    assert isinstance(records[0], FileProfile) == (extra == 0)
    if isinstance(records[0], FileProfile):
        assert _stored_by_the_server(records[0].traits)
    else:
        assert records[0].field == header and "nested too deeply" in records[0].message


def test_read_csv__column_with_more_parts_than_traits_nest__header_refused() -> None:
    deepest = ".".join(f"k{i}" for i in range(MAX_TRAITS_DEPTH))
    records = _csv(f"user_id,{deepest}\nd,x\n")
    assert isinstance(records[0], FileProfile) and _stored_by_the_server(records[0].traits)
    with pytest.raises(HeaderError, match="more than 16 parts"):
        _csv(f"user_id,{deepest}.one_more\nd,x\n")
