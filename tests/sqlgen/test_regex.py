"""RE2 patterns: the supported subset, and the PostgreSQL translation checked on a real server."""

from __future__ import annotations

import asyncpg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segmentd.engine.inline import re2_searcher
from segmentd.engine.regex import UnsupportedPattern, check_pattern, compile_re2, to_postgres_regex
from segmentd.engine.regex_case import fold_pattern
from tests.sqlgen.strategies import pattern_soup, supported_patterns, texts_for


async def _postgres_matches(connection: asyncpg.Connection, regex: str, texts: list[str]) -> list[bool]:
    rows = await connection.fetch(
        "SELECT t ~ $2 AS matched FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
        texts,
        regex,
    )
    return [row["matched"] for row in rows]


def _re2_matches(pattern: str, texts: list[str]) -> list[bool]:
    compiled = compile_re2(pattern)
    return [compiled.search(text) is not None for text in texts]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", ""),
        ("a.b", "a[^\\n]b"),
        ("\\d+", "[0-9]+"),
        ("\\D", "[^0-9]"),
        ("\\w", "[0-9A-Z_a-z]"),
        ("\\s", "[\\t\\n\\f\\r ]"),
        ("\\S", "[^\\t\\n\\f\\r ]"),
        ("[^\\d-]", "[^\\-0-9]"),
        ("(a|bc)*", "(?:a|bc)*"),
        ("((a)|b)+", "(?:(?:a)|b)+"),
        ("x{2,5}?", "x{2,5}"),
        ("x{3}", "x{3}"),
        ("x{3,}", "x{3,}"),
        ("x??", "x?"),
        ("(?:ab)+", "(?:ab)+"),
        ("ab*", "ab*"),
        ("^a$", "^a$"),
        ("é😀", "\\u00e9\\U0001f600"),
        ("[]a]", "[\\]a]"),
        ("\\.\\\\", "\\.\\\\"),
        ("@,_ ", "@,_ "),
        ("\\v", "\\v"),
        ("()", "(?:)"),
        ("[\\s\\S]", "[\\u0001-\\ud7ff\\ue000-\\U0010ffff]"),
        ("[^\U0001f600]", "[^\\U0001f600]"),
        (
            "[^\\x{1}-\\x{10ffff}]".replace("\\x{1}", "\x01").replace("\\x{10ffff}", "\U0010ffff"),
            "[^\\u0001-\\ud7ff\\ue000-\\U0010ffff]",
        ),
    ],
)
def test_to_postgres_regex__supported__translates(pattern, expected):
    # Given / When
    translated = to_postgres_regex(pattern)

    # Then
    assert translated == expected


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a)\\1", "not a valid RE2 pattern"),
        ("a{,2}", "literal '{'"),
        ("a{", "literal '{'"),
        ("[[:alpha:]]", "inside a character class"),
        ("[a&&b]", "ambiguous"),
        ("[a~~b]", "ambiguous"),
        ("[\\b]", "not a valid RE2 pattern"),
        ("\\pL", "Unicode classes"),
        ("\\PL", "Unicode classes"),
        ("\\p{Greek}", "Unicode classes"),
        ("\\Aa", "use ^"),
        ("a\\z", "use $"),
        ("\\Qa\\E", "quoting"),
        ("\\Qa.b\\B", "quoting"),  # \Q quotes what \B's search form adds: the scan's reason, not RE2's
        ("\\x41", "unsupported escape"),
        ("\\101", "unsupported escape"),
        ("\\0", "unsupported escape"),
        ("\\C", "unsupported escape"),
        ("\\é", "not a valid RE2 pattern"),
        ("(?i)a", "only (...) and (?:...)"),
        ("(?P<n>a)", "only (...) and (?:...)"),
        ("(?<n>a)", "only (...) and (?:...)"),
        ("(?=a)", "not a valid RE2 pattern"),
        ("x{256}", "repetition counts above 255"),
        ("x{2,256}", "repetition counts above 255"),
        ("x{256,}", "repetition counts above 255"),
        ("a\x00", "NUL"),
        ("a**", "not a valid RE2 pattern"),
        ("[\\d-z]", "not supported"),
        ("\ud800", "not valid Unicode"),
        ("(" * 101 + ")" * 101, "nest more than 100 deep"),
    ],
)
def test_check_pattern__unsupported__raises_with_reason(pattern, reason):
    # When / Then
    with pytest.raises(UnsupportedPattern, match=None) as raised:
        check_pattern(pattern, ignore_case=False)
    assert reason in str(raised.value)
    with pytest.raises(UnsupportedPattern):
        to_postgres_regex(pattern)


@pytest.mark.parametrize(
    ("pattern", "folded"),
    [
        ("abc", "abc"),
        ("ÉCOLE", "école"),
        ("Σ", "σ"),
        ("[A-Z]+", "[a-z]+"),
        ("[^A-C]", "[^a-c]"),
        ("\\S\\W\\D\\B", "\\S\\W\\D\\B"),
        ("École\\.", "école\\."),
        ("[]A]", "[]a]"),
        ("[A-]", "[a-]"),
        ("[\\--/]", "[\\--/]"),
        ("[!-\\/]", "[!-\\/]"),
    ],
)
def test_fold_pattern__ignore_case__lower_cases_literals_keeps_escapes(pattern, folded):
    # When / Then
    assert fold_pattern(pattern) == folded
    check_pattern(pattern, ignore_case=True)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("İ", "2 characters"), ("[À-Þ]", "range À-Þ"), ("[0-Z]", "range"), ("[\\--Z]", "range")],
)
def test_check_pattern__ignore_case__unfoldable__raises_with_reason(pattern, reason):
    # When / Then
    with pytest.raises(UnsupportedPattern) as raised:
        check_pattern(pattern, ignore_case=True)
    assert reason in str(raised.value)
    check_pattern(pattern, ignore_case=False)


@pytest.mark.parametrize(
    ("pattern", "text", "matched"),
    [
        ("\\bfree\\b", "the free plan", True),
        ("\\bfree\\b", "freemium", False),
        ("\\ba", "éa", True),  # ASCII word characters only, as RE2
        ("a\\B", "aé", False),
        ("\\B", "", True),
        # Between characters only: RE2 alone also finds \B inside the two bytes of é
        ("\\B", "xéy", False),
        ("\\B", "éé", True),
        ("x\\B", "xé", False),
        ("é\\B", "éy", False),
        ("\\B$", "xé", True),
        ("a|\\B", "xéy", False),
    ],
)
@pytest.mark.postgres
async def test_word_boundary__ascii__same_in_re2_and_postgresql(pg_raw, pattern, text, matched):
    # When / Then
    assert (compile_re2(pattern).search(text) is not None) is matched
    assert re2_searcher(compile_re2(pattern))(text) is matched  # the generated evaluator's search
    assert await _postgres_matches(pg_raw, to_postgres_regex(pattern), [text]) == [matched]


def test_compile_re2__dollar__matches_only_at_the_very_end():
    # RE2 without multi-line mode, unlike Python's re, does not match $ before a final newline.
    assert compile_re2("a$").search("a\n") is None
    assert compile_re2("a$").search("a") is not None
    assert compile_re2("a.b").search("a\nb") is None


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.postgres
@_SETTINGS
@given(data=st.data(), pattern=supported_patterns())
async def test_to_postgres_regex__grammar_patterns__match_like_re2(pg_raw, data, pattern):
    # Given
    try:
        translated = to_postgres_regex(pattern)
    except UnsupportedPattern:
        assume(False)
        raise
    texts = data.draw(st.lists(texts_for(pattern), min_size=1, max_size=12), label="texts")

    # When
    matched = await _postgres_matches(pg_raw, translated, texts)

    # Then
    assert matched == _re2_matches(pattern, texts), translated


@pytest.mark.postgres
@_SETTINGS
@given(data=st.data(), pattern=pattern_soup())
async def test_to_postgres_regex__metacharacter_soup__matches_like_re2(pg_raw, data, pattern):
    # Given
    try:
        check_pattern(pattern, ignore_case=False)
    except UnsupportedPattern:
        assume(False)
    translated = to_postgres_regex(pattern)
    texts = data.draw(st.lists(texts_for(pattern), min_size=1, max_size=12), label="texts")

    # When
    matched = await _postgres_matches(pg_raw, translated, texts)

    # Then
    assert matched == _re2_matches(pattern, texts), translated
