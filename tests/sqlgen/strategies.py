"""Hypothesis strategies specific to the SQL compiler: RE2 patterns and texts to match them on.

Rule trees, traits and profiles come from ``tests/strategies.py``; these only add what the
regex translation needs: patterns built from the supported grammar, raw pattern soup (to
find parser disagreements), and texts rich in the characters the patterns talk about.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from segmentd.engine import operators as op
from segmentd.engine.operators import OPERATORS
from segmentd.engine.rules import GROUP_KINDS, Condition, Group, Rule
from segmentd.engine.times import parse_time_us
from segmentd.engine.validation import validate_rule
from segmentd.errors import InvalidRule
from tests.strategies import ATTRIBUTES, PERCENTS, scalars, traits, valid_rules

#: Percentiles the edge conditions use, beside the shared strategies' `PERCENTS`.
EDGE_PERCENTS = (0.1, 33.3, 99.9)
#: Every percentile a generated rule may ask for.
ALL_PERCENTS = tuple(float(percent) for percent in PERCENTS) + EDGE_PERCENTS

#: Characters where RE2 and PostgreSQL could disagree: newlines and other spaces, digits,
#: word characters, non-ASCII letters (with case), astral characters, and metacharacters.
TRICKY_CHARS = "ab_Z09 \t\n\r\f\v-.[]\\^$é É ΣσςİıK😀\u00a0\u2028\u0085"

_ESCAPED_PUNCTUATION = [f"\\{c}" for c in ".*+?()[]{}|^$\\-/#&~ "]
_CLASS_ESCAPES = ["\\d", "\\D", "\\w", "\\W", "\\s", "\\S"]
_CHAR_ESCAPES = ["\\n", "\\t", "\\r", "\\f", "\\v"]
_PLAIN = ["a", "b", "Z", "0", "9", "_", " ", "é", "Σ", "ς", "😀", "-", "/", "\u00a0", "\u2028", "\n", "\t"]
_QUANTIFIERS = ["*", "+", "?", "{2}", "{0,1}", "{1,3}", "{2,}", "{0}", "*?", "+?", "??", "{1,2}?"]


def _class_item() -> st.SearchStrategy[str]:
    ranges = st.sampled_from(["a-c", "0-9", "A-Z", "à-ÿ", "\\--/", "\t-\r", "Σ-ω", "a-a"])
    singles = st.sampled_from([c for c in _PLAIN if c != "-"] + ["\\]", "\\[", "\\-", "\\^", "\\\\", "."])
    return st.one_of(ranges, singles, st.sampled_from(_CLASS_ESCAPES + _CHAR_ESCAPES))


def char_classes() -> st.SearchStrategy[str]:
    """``[...]`` and ``[^...]`` classes of ranges, characters and escapes."""
    return st.builds(
        lambda negate, items: "[" + ("^" if negate else "") + "".join(items) + "]",
        st.booleans(),
        st.lists(_class_item(), min_size=1, max_size=4),
    )


def _atoms() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(_PLAIN),
        st.sampled_from(_ESCAPED_PUNCTUATION + _CLASS_ESCAPES + _CHAR_ESCAPES + [".", "\\b", "\\B"]),
        char_classes(),
    )


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    group = st.builds(lambda opener, body: f"{opener}{body})", st.sampled_from(["(", "(?:"]), children)
    return st.one_of(
        st.lists(children, min_size=2, max_size=4).map("".join),
        st.lists(children, min_size=2, max_size=3).map("|".join),
        group,
        st.builds(lambda body, q: f"(?:{body}){q}", children, st.sampled_from(_QUANTIFIERS)),
    )


def supported_patterns() -> st.SearchStrategy[str]:
    """Patterns from the supported grammar, optionally anchored."""
    quantified = st.builds(lambda atom, q: atom + q, _atoms(), st.sampled_from(_QUANTIFIERS))
    body = st.recursive(st.one_of(_atoms(), quantified), _extend, max_leaves=8)
    return st.builds(
        lambda start, pattern, end: start + pattern + end,
        st.sampled_from(["", "", "^"]),
        body,
        st.sampled_from(["", "", "$"]),
    )


def pattern_soup() -> st.SearchStrategy[str]:
    """Short strings of regex metacharacters: most are refused, the rest must translate right."""
    return st.text(alphabet="ab.\n[]^$*+?{}()|\\-,0123dswDSWntv:é", max_size=10)


def texts_for(pattern: str) -> st.SearchStrategy[str]:
    """Texts made of the tricky characters and the pattern's own characters."""
    alphabet = sorted(set(TRICKY_CHARS) | (set(pattern) - {"\x00"}))
    return st.text(alphabet=alphabet, max_size=12)


# --- rules and populations for the SQL-versus-Python differential test -----------------------

#: Keys that need quoting or escaping somewhere: SQLite JSON paths, JSON text, SQL literals.
ODD_KEYS = (
    "pl an",
    '"q"',
    "$",
    "a[0]",
    "é",
    "Σίσυφος",
    "\\",
    "'",
    "0",
    "k\n",
    "😀",
    'a"b[c',
    "*",
    " ",
    "ß",
    "İ",
)
#: The key names tests/strategies.py builds traits and rules from.
PLAIN_KEYS = (
    "plan",
    "mrr",
    "country",
    "company",
    "size",
    "name",
    "tags",
    "signup",
    "version",
    "score",
    "a",
    "b",
    "c",
    "x",
)


def key_renamings() -> st.SearchStrategy[dict[str, str]]:
    """A one-to-one renaming of some plain keys to odd ones (often none: plain paths matter too)."""

    @st.composite
    def renaming(draw: st.DrawFn) -> dict[str, str]:
        renamed = draw(st.lists(st.sampled_from(PLAIN_KEYS), unique=True, max_size=6))
        odd = draw(st.permutations(ODD_KEYS))
        return dict(zip(renamed, odd, strict=False))

    return st.just({}) | renaming()


EDGE_STRINGS = (
    "free\n",
    "\nfree",
    "a\nb",
    "FREE\n",
    "ΣΑΣ\n",
    "",
    " ",
    "\t",
    "ǅ",
    "ﬃ",
    "\u212a",  # KELVIN SIGN, lower-cases to an ASCII k
    "10",
    "1e3",
    "true",
    "null",
    "[1]",
    "%_",
    "a'b",
    '"',
    "\\",
    "😀x",
    "\u00a0",
)
EDGE_NUMBERS = (
    2**53,
    -(2**53),
    2**53 - 1,
    0.1,
    0.30000000000000004,
    1e15 + 0.5,
    -0.0,
    1e-7,
    5e-324,
    1.7976931348623157e308,
    -1e308,
    # Doubles PostgreSQL writes back without an exponent: 1e+23 as 100000000000000000000000.
    1e23,
    -1e300,
    2.0**60,
    1e22 + 2**20,
)
#: Any finite double: the API's numbers are doubles, and must agree on every path.
ANY_DOUBLE = st.floats(allow_nan=False, allow_infinity=False)
EDGE_TIMES = (
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00-23:59",
    "9999-12-31T23:59:59.999999-23:59",
    "2024-02-29T12:00:00Z",
    "2026-03-01T12:00:00.0000001Z",
    "2026-03-01T11:59:59.999999999Z",
    "2026-03-01T12:00:00.000001+00:00",
    "2026-02-28T12:00:00-00:00",
)
NOT_QUITE_TIMES = (
    "2026-02-29T00:00:00Z",
    "2026-03-01T12:00:60Z",
    "2026-03-01T12:00:00+24:00",
    "2026-03-01 12:00:00Z",
    "2026-03-01T12:00:00Z\n",
    "\uff12026-03-01T12:00:00Z",
    "2026-03-01T12:00:00.Z",
    "2026-03-01T12:00:00.1234567890Z",
    "0000-01-01T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "1900-02-29T00:00:00Z",
)
EDGE_SEMVERS = (
    "1.0.0-alpha.beta.1",
    "1.0.0-0",
    "1.0.0-0a",
    "1.0.0-a-b",
    "18446744073709551616.0.0",
    "18446744073709551617.0.0",
    "1.0.0-x.7.z.92",
    "1.0.0-rc.1+build.1",
    "1.0.0-alpha.10",
    "1.0.0-alpha.9",
    "1.0.0-Alpha",
)
NOT_QUITE_SEMVERS = ("1.0.0+build..1", "1.0.0-", "1.0.0-alpha..1", "1.0.0-00", "1.0", "1.0.0 ", "１.0.0")


def edge_values() -> st.SearchStrategy[object]:
    """Trait values on the edges of each operator family."""
    scalars = st.sampled_from(
        EDGE_STRINGS
        + EDGE_NUMBERS
        + EDGE_TIMES
        + NOT_QUITE_TIMES
        + EDGE_SEMVERS
        + NOT_QUITE_SEMVERS
        + (True, False, None)
    )
    scalars |= ANY_DOUBLE
    return scalars | st.lists(scalars, max_size=3) | st.text(alphabet=TRICKY_CHARS, max_size=6)


_EDGE_SCALARS = st.sampled_from(EDGE_STRINGS + EDGE_NUMBERS + (True, False)) | ANY_DOUBLE
_EDGE_ORDERED = st.sampled_from(EDGE_STRINGS + EDGE_NUMBERS) | ANY_DOUBLE


def _sorted_times() -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(EDGE_TIMES), min_size=2, max_size=2).map(
        lambda pair: sorted(pair, key=lambda text: parse_time_us(text) or 0)
    )


_EDGE_VALUES_BY_OPERATOR: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys((op.EQUALS, op.NOT_EQUALS, op.CONTAINS, op.NOT_CONTAINS), _EDGE_SCALARS),
    **dict.fromkeys(
        (op.LESS_THAN, op.LESS_THAN_OR_EQUALS, op.GREATER_THAN, op.GREATER_THAN_OR_EQUALS), _EDGE_ORDERED
    ),
    # Long lists take the other PostgreSQL plan (IN over jsonb instead of one @> per value).
    **dict.fromkeys(
        (op.IN, op.NOT_IN),
        st.lists(_EDGE_SCALARS, max_size=4) | st.lists(_EDGE_SCALARS | scalars(), min_size=17, max_size=20),
    ),
    **dict.fromkeys((op.STARTS_WITH, op.ENDS_WITH), st.sampled_from(EDGE_STRINGS)),
    op.MATCHES_REGEX: supported_patterns()
    | st.sampled_from(("^$", "\\n", "^free$", "e$", ".", "(?s:.)", "^\\s*$")),
    **dict.fromkeys((op.EXISTS, op.NOT_EXISTS), st.none()),
    op.BETWEEN: st.lists(st.sampled_from(EDGE_NUMBERS), min_size=2, max_size=2).map(sorted) | _sorted_times(),
    **dict.fromkeys((op.BEFORE, op.AFTER), st.sampled_from(EDGE_TIMES)),
    **dict.fromkeys(
        (op.WITHIN_LAST_DAYS, op.NOT_WITHIN_LAST_DAYS), st.sampled_from((0, 1, 1000, 36_500, 2.0))
    ),
    **dict.fromkeys(
        (op.SEMVER_EQUALS, op.SEMVER_LESS_THAN, op.SEMVER_GREATER_THAN), st.sampled_from(EDGE_SEMVERS)
    ),
    **dict.fromkeys((op.PERCENTILE_AT_MOST, op.PERCENTILE_AT_LEAST), st.sampled_from(EDGE_PERCENTS)),
}


@st.composite
def edge_conditions(draw: st.DrawFn) -> Condition:
    """Valid conditions whose values sit on the edges of their operator's semantics."""
    operator = draw(st.sampled_from(OPERATORS))
    ignore_case = operator in op.CASE_FOLDING_OPERATORS and draw(st.booleans())
    condition = Condition(
        draw(st.sampled_from(ATTRIBUTES)), operator, draw(_EDGE_VALUES_BY_OPERATOR[operator]), ignore_case
    )
    try:
        validate_rule(condition)
    except InvalidRule:
        assume(False)
    return condition


def _groups(children: st.SearchStrategy[Rule]) -> st.SearchStrategy[Rule]:
    return st.builds(Group, st.sampled_from(GROUP_KINDS), st.lists(children, max_size=4).map(tuple))


def sql_rules(
    *, segment_names: Sequence[str] = (), max_leaves: int = 8, list_names: Sequence[str] = ()
) -> st.SearchStrategy[Rule]:
    """Valid rule trees mixing the shared strategies' leaves with `edge_conditions`."""
    leaves = valid_rules(max_leaves=1, segment_names=segment_names, list_names=list_names) | edge_conditions()
    return st.recursive(leaves, _groups, max_leaves=max_leaves)


_TOP_LEVEL = tuple(attribute for attribute in ATTRIBUTES if "." not in attribute)


@st.composite
def sql_traits(draw: st.DrawFn) -> dict[str, Any]:
    """The shared `traits`, with some top-level attributes set to edge values."""
    result = draw(traits())
    result.update(draw(st.dictionaries(st.sampled_from(_TOP_LEVEL), edge_values(), max_size=3)))
    return result


def rename_keys(value: Any, renaming: Mapping[str, str]) -> Any:
    """Rename the keys of every object nested in a JSON value."""
    if isinstance(value, dict):
        return {renaming.get(key, key): rename_keys(item, renaming) for key, item in value.items()}
    if isinstance(value, list):
        return [rename_keys(item, renaming) for item in value]
    return value


def rename_attribute(attribute: str, renaming: Mapping[str, str]) -> str:
    """Rename each step of a dotted path."""
    return ".".join(renaming.get(step, step) for step in attribute.split("."))


def rename_rule(rule: Rule, renaming: Mapping[str, str]) -> Rule:
    """Rename the attribute paths of every condition of a rule tree."""
    if isinstance(rule, Group):
        return Group(rule.kind, tuple(rename_rule(child, renaming) for child in rule.rules))
    if isinstance(rule, Condition):
        return dataclasses.replace(rule, attribute=rename_attribute(rule.attribute, renaming))
    return rule
