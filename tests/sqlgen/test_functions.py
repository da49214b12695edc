"""The SQL helper functions: PostgreSQL's reimplementations agree with the engine's Python.

SQLite registers the engine's own functions, so there the tests only check the wiring and the
handling of non-text arguments.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentd.engine.semver import compare_semver_text
from segmentd.engine.split import bucket
from segmentd.engine.times import parse_time_us
from segmentd.sqlgen.functions import POSTGRES_FUNCTIONS_SQL, register_sqlite_functions
from tests.sqlgen.strategies import (
    EDGE_SEMVERS,
    EDGE_TIMES,
    NOT_QUITE_SEMVERS,
    NOT_QUITE_TIMES,
    TRICKY_CHARS,
)
from tests.strategies import ALPHABET, NOT_SEMVERS, NOT_TIMES, SEMVERS, WORDS

_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def _postgres_map(connection, function: str, *columns: list[str]) -> list[object]:
    """Apply a function to rows of arguments in one query, keeping their order."""
    arguments = ", ".join(f"${i + 1}::text[]" for i in range(len(columns)))
    names = ", ".join(f"a{i}" for i in range(len(columns)))
    rows = await connection.fetch(
        f"SELECT {function}({names}) AS r"
        f" FROM unnest({arguments}) WITH ORDINALITY AS u({names}, n) ORDER BY n",
        *columns,
    )
    return [row["r"] for row in rows]


@st.composite
def time_texts(draw: st.DrawFn) -> str:
    """RFC 3339-shaped texts whose fields stray just over their limits."""
    year = draw(st.integers(0, 9999))
    fields = [draw(st.integers(0, 13)), draw(st.integers(0, 32)), draw(st.integers(0, 24))]
    minute, second = draw(st.integers(0, 60)), draw(st.integers(0, 60))
    fraction = draw(st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".123456789", ".1234567890"]))
    offset = draw(
        st.sampled_from(
            ["Z", "z", "", "+00:00", "-00:00", "+23:59", "-23:59", "+24:00", "+05:60", "+0530", "+5:30"]
        )
    )
    separator = draw(st.sampled_from("Tt T"))
    month, day, hour = fields
    return (
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    )


@pytest.mark.postgres
@_SETTINGS
@given(texts=st.lists(time_texts() | st.sampled_from(EDGE_TIMES + NOT_QUITE_TIMES + NOT_TIMES), max_size=30))
async def test_segmentd_time_us__postgresql__matches_parse_time_us(pg_raw, texts):
    assert await _postgres_map(pg_raw, "segmentd_time_us", texts) == [parse_time_us(text) for text in texts]


_VERSIONS = st.sampled_from(SEMVERS + NOT_SEMVERS + EDGE_SEMVERS + NOT_QUITE_SEMVERS) | st.builds(
    lambda core, pre: core + pre,
    st.sampled_from(["1.0.0", "0.0.0", "10.2.3", "1.0.00"]),
    st.lists(st.sampled_from(["0", "1", "01", "11", "a", "A", "-", "a-1", "rc"]), max_size=3).map(
        lambda ids: "-" + ".".join(ids) if ids else ""
    ),
)


@pytest.mark.postgres
@_SETTINGS
@given(pairs=st.lists(st.tuples(_VERSIONS, _VERSIONS), max_size=30))
async def test_segmentd_semver_cmp__postgresql__matches_compare_semver_text(pg_raw, pairs):
    lefts, rights = [a for a, _ in pairs], [b for _, b in pairs]
    expected = [compare_semver_text(a, b) for a, b in pairs]
    assert await _postgres_map(pg_raw, "segmentd_semver_cmp", lefts, rights) == expected


@pytest.mark.postgres
@_SETTINGS
@given(pairs=st.lists(st.tuples(st.text(ALPHABET), st.text(TRICKY_CHARS.replace("\x00", ""))), max_size=30))
async def test_segmentd_bucket__postgresql__matches_bucket(pg_raw, pairs):
    salts, users = [salt for salt, _ in pairs], [user for _, user in pairs]
    assert await _postgres_map(pg_raw, "segmentd_bucket", salts, users) == [bucket(s, u) for s, u in pairs]


@pytest.mark.postgres
async def test_segmentd_lower__postgresql__matches_str_lower_on_every_code_point(pg_raw):
    # Given: every character PostgreSQL text can hold (no NUL, no surrogates)
    characters = [chr(i) for i in range(1, 0x110000) if not 0xD800 <= i <= 0xDFFF]

    # When
    lowered = await _postgres_map(pg_raw, "segmentd_lower", characters)

    # Then
    assert [c for c, low in zip(characters, lowered, strict=True) if c.lower() != low] == []


@pytest.mark.postgres
@pytest.mark.parametrize(
    "text",
    [
        "ΑΣ",
        "ΑΣ ΑΣ",
        "Σ",
        "ΑΣΑ",
        "ΑΣ.",
        "Α.Σ",
        "ΑΣ'",
        "Α\u0301Σ",
        "ΑΣ\u0301",
        "aΣb",
        "İSTANBUL",
        "ẞ",
        "ǅ",
        *WORDS,
    ],
)
async def test_segmentd_lower__postgresql__matches_str_lower_in_context(pg_raw, text):
    assert await pg_raw.fetchval("SELECT segmentd_lower($1)", text) == text.lower()


@pytest.mark.postgres
async def test_segmentd_lower__postgresql__independent_of_database_locale(pg_raw):
    # The scratch database is created with the C.UTF-8 locale, where plain lower() is ASCII only
    # or libc-defined; the ICU collation inside segmentd_lower is what makes É become é.
    assert await pg_raw.fetchval("SELECT segmentd_lower($1)", "ÉΣ") == "éς"


@pytest.fixture
def sqlite_connection():
    connection = sqlite3.connect(":memory:")
    register_sqlite_functions(connection)
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("sql", "arguments", "expected"),
    [
        ("segmentd_time_us(?)", ("1970-01-01T00:00:01Z",), 1_000_000),
        ("segmentd_time_us(?)", ("2026-02-30T00:00:00Z",), None),
        ("segmentd_time_us(?)", (5,), None),
        ("segmentd_semver_cmp(?, ?)", ("1.0.0-rc.1", "1.0.0"), -1),
        ("segmentd_semver_cmp(?, ?)", ("1.0.0", 1), None),
        ("segmentd_bucket(?, ?)", ("x", "y"), bucket("x", "y")),
        ("segmentd_bucket(?, ?)", ("x", None), None),
        ("segmentd_lower(?)", ("ÉCOLE ΑΣ",), "école ας"),
        ("segmentd_lower(?)", (1,), None),
        ("segmentd_regexp(?, ?)", ("a.b", "a\nb"), 0),
        ("segmentd_regexp(?, ?)", ("^a[^x]b$", "a\nb"), 1),
        ("segmentd_regexp(?, ?)", ("a", None), None),
        ("? REGEXP ?", ("free\n", "ee$"), 0),
        ("? REGEXP ?", ("free", "ee$"), 1),
    ],
)
def test_register_sqlite_functions__registered__call_engine_functions(
    sqlite_connection, sql, arguments, expected
):
    assert sqlite_connection.execute(f"SELECT {sql}", arguments).fetchone()[0] == expected


def test_postgres_functions_sql__no_colon_words__safe_inside_sqlalchemy_text():
    # Alembic's op.execute wraps a string in text(), which reads ":name" as a bind parameter.
    for statement in POSTGRES_FUNCTIONS_SQL:
        assert re.findall(r"(?<![:\w\\]):\w+", statement) == []
