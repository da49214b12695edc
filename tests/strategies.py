"""Hypothesis strategies for rule trees, traits and evaluation contexts.

Shared by the engine's property tests and the SQL-versus-Python differential test:

    rules(max_leaves=...)   any rule tree, values valid or not (for validation's robustness)
    valid_rules(...)        rule trees that pass validate_rule
    traits()                profile traits over the attributes the rules use
    contexts()              EvaluationContext: traits, user id, now, event counts, thresholds

Rules and traits draw from the same small pools of attributes, strings, numbers, times and
versions so that conditions often meet traits they match, nearly match or mismatch by type.
Strings use a curated alphabet with case-sensitive non-ASCII letters (É, ß/ẞ, İ/ı, Σ/σ/ς, the
Kelvin sign) on which naive ASCII case folding disagrees with Python's ``str.lower``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from segmentd.engine import operators as op
from segmentd.engine.context import EvaluationContext
from segmentd.engine.operators import OPERATORS, Operator
from segmentd.engine.regex import UnsupportedPattern, check_pattern
from segmentd.engine.rules import (
    GROUP_KINDS,
    Condition,
    EventCondition,
    Group,
    JsonValue,
    ListReference,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.times import parse_time_us

ALPHABET = "abczABCZ09 -_.éÉßẞİıiIσςΣΩωKÅǆǅǄ漢😀\u0301"
WORDS = (
    "",
    "free",
    "FREE",
    "Free",
    "pro",
    "école",
    "ÉCOLE",
    "straße",
    "STRASSE",
    "İstanbul",
    "istanbul",
    "i̇stanbul",
    "ΣΑΣ",
    "σας",
    "σασ",
    "Kelvin",
    "free plan",
    "the FREE_plan",
    "écolé",
    "10",
    "2",
    # Strings that PostgreSQL's ->> text of another JSON type reads as (a number, a boolean,
    # a list): a comparison made on that text must still tell the types apart.
    "1.0",
    "-1",
    "true",
    "false",
    "[]",
)
ATTRIBUTES = (
    "plan",
    "mrr",
    "country",
    "company.size",
    "company.name",
    "tags",
    "signup",
    "version",
    "score",
    "a.b.c",
)
EVENT_NAMES = ("login", "purchase", "invite_sent")
#: What rules may count: the recorded names and the pseudo-events (``segmentd.engine.events``).
COUNTED_EVENTS = (*EVENT_NAMES, "*", "$created")
WINDOWS = (0, 1, 7, 30)
PERCENTS = (0, 10, 50, 90.5, 100)
SEGMENT_NAMES = ("paying-users", "trial", "churn-risk")
#: The user lists `in_list` leaves name (when a strategy is asked for them).
LIST_NAMES = ("beta-testers", "vip")
SALTS = ("", "exp-1", "onboarding-test")
#: The instant contexts use as ``now`` unless told otherwise.
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

SEMVERS = (
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.0+build.5",
    "1.0.1",
    "1.10.0",
    "2.0.0",
    "0.9.12",
)
NOT_SEMVERS = ("1.0", "v1.0.0", "01.0.0", "1.0.0-01", "1.0.0-", " 1.0.0", "1.0.0\n")
PATTERNS = (
    "",
    "^fr",
    "ee$",
    "[a-c]+",
    "é",
    "^\\d+$",
    "(?:ab|cd)",
    ".",
    "^(free|pro)$",
    "ß",
    "x{2,3}",
    "[^a]",
    "Σ",
    "FREE",
    "^[A-Z]+$",
    "ÉCOLE",
    "\\bfree\\b",
    "\\B",
    "é\\b",
    "\\bΣ",
    "[A-C]\\W",
)
NOT_PATTERNS = ("(", "[\\b]", "(?i)a", "a{1001}", "\\1", "[[:alpha:]]")
_OFFSETS_MINUTES = (0, 60, -300, 330, 1439, -1439)
_FRACTIONS = ("", ".5", ".250", ".123456789")
NOT_TIMES = ("2026-03-01", "2026-03-01T09:30:00", "2026-02-30T00:00:00Z", "2026-03-01T24:00:00Z", "yesterday")


@functools.cache
def strings() -> st.SearchStrategy[str]:
    """Short strings from the curated alphabet, and words that differ only by case."""
    return st.sampled_from(WORDS) | st.text(ALPHABET, max_size=5)


@functools.cache
def numbers() -> st.SearchStrategy[int | float]:
    """Numbers that collide often (``1`` and ``1.0``), within the range doubles hold exactly."""
    return (
        st.sampled_from((0, 1, 1.0, -1, 2, 2.5, 10, 80, 1e15))
        | st.integers(-(2**53), 2**53)
        | st.floats(-1e9, 1e9, allow_nan=False)
    )


@functools.cache
def scalars() -> st.SearchStrategy[str | int | float | bool]:
    """Strings, numbers and booleans."""
    return strings() | numbers() | st.booleans()


@st.composite
def times(draw: st.DrawFn) -> str:
    """RFC 3339 times around 2026, with various offsets: equal instants are written differently."""
    instant = NOW + timedelta(
        minutes=draw(st.sampled_from((0, -1, 1, -60, -1440 * 30, 1440))) + draw(st.integers(-5, 5))
    )
    offset = timedelta(minutes=draw(st.sampled_from(_OFFSETS_MINUTES)))
    local = instant.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + draw(st.sampled_from(_FRACTIONS))
    if offset:
        minutes = int(offset.total_seconds()) // 60
        text += f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    else:
        text += draw(st.sampled_from(("Z", "z", "+00:00")))
    return text.replace("T", draw(st.sampled_from("Tt")))


@functools.cache
def trait_values() -> st.SearchStrategy[JsonValue]:
    """Any JSON value a trait may hold, biased towards what the rules compare with."""
    leaves: st.SearchStrategy[JsonValue] = (
        st.none()
        | scalars()
        | times()
        | st.sampled_from(SEMVERS + NOT_SEMVERS + NOT_TIMES)
        | st.text(ALPHABET, max_size=12)
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(("size", "name", "x")), children, max_size=2)
        ),
        max_leaves=4,
    )


@st.composite
def traits(draw: st.DrawFn) -> dict[str, JsonValue]:
    """Traits setting some of `ATTRIBUTES` (nested ones through objects, or through non-objects)."""
    result: dict[str, Any] = {}
    for attribute in draw(st.lists(st.sampled_from(ATTRIBUTES), unique=True, max_size=len(ATTRIBUTES))):
        *parents, leaf = attribute.split(".")
        node = result
        for parent in parents:
            child = node.get(parent)
            if not isinstance(child, dict):
                child = node[parent] = {}
            node = child
        node[leaf] = draw(trait_values())
    if draw(st.booleans()):
        result["company"] = draw(trait_values())  # sometimes replaces the object nested paths go through
    return result


_EVENT_KEYS = tuple((name, days) for name in COUNTED_EVENTS for days in WINDOWS)
_PERCENTILE_KEYS = tuple((attribute, float(percent)) for attribute in ATTRIBUTES for percent in PERCENTS)


@st.composite
def contexts(
    draw: st.DrawFn, traits_strategy: st.SearchStrategy[dict[str, JsonValue]] | None = None
) -> EvaluationContext:
    """A context with some of the event counts and percentile thresholds the rules may read.

    A count left out is 0, as for a user without such events; a threshold left out or
    ``None`` is unknown, as when no profile holds a number.
    """
    return EvaluationContext(
        traits=draw(traits_strategy or traits()),
        user_id=draw(st.none() | st.sampled_from(("u1", "u2", "user-42")) | st.text(ALPHABET, max_size=8)),
        now=NOW,
        event_counts=draw(st.dictionaries(st.sampled_from(_EVENT_KEYS), st.integers(0, 5), max_size=6)),
        percentile_thresholds=draw(
            st.dictionaries(st.sampled_from(_PERCENTILE_KEYS), st.none() | numbers(), max_size=12)
        ),
        lists=draw(st.frozensets(st.sampled_from(LIST_NAMES))),
    )


# --- valid rules -------------------------------------------------------------------------


def _valid_patterns(ignore_case: bool) -> st.SearchStrategy[str]:
    return st.sampled_from([pattern for pattern in PATTERNS if _is_valid_pattern(pattern, ignore_case)])


def _is_valid_pattern(pattern: str, ignore_case: bool) -> bool:
    try:
        check_pattern(pattern, ignore_case=ignore_case)
    except UnsupportedPattern:
        return False
    return True


def _sorted_pair(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, min_size=2, max_size=2).map(sorted)


def _instant(text: str) -> int:
    instant = parse_time_us(text)
    assert instant is not None
    return instant


def _time_pair() -> st.SearchStrategy[list[str]]:
    return st.lists(times(), min_size=2, max_size=2).map(lambda pair: sorted(pair, key=_instant))


def _days() -> st.SearchStrategy[int | float]:
    return st.sampled_from((0, 1, 30, 30.0, 365)) | st.integers(0, 400)


_VALID_VALUES: dict[Operator, st.SearchStrategy[Any]] = {
    **dict.fromkeys((op.EQUALS, op.NOT_EQUALS, op.CONTAINS, op.NOT_CONTAINS), scalars()),
    **dict.fromkeys(
        (op.LESS_THAN, op.LESS_THAN_OR_EQUALS, op.GREATER_THAN, op.GREATER_THAN_OR_EQUALS),
        strings() | numbers(),
    ),
    **dict.fromkeys((op.IN, op.NOT_IN), st.lists(scalars(), max_size=4)),
    **dict.fromkeys((op.STARTS_WITH, op.ENDS_WITH), strings()),
    **dict.fromkeys((op.EXISTS, op.NOT_EXISTS), st.none()),
    op.BETWEEN: _sorted_pair(numbers()) | _time_pair(),
    **dict.fromkeys((op.BEFORE, op.AFTER), times()),
    **dict.fromkeys((op.WITHIN_LAST_DAYS, op.NOT_WITHIN_LAST_DAYS), _days()),
    **dict.fromkeys(
        (op.SEMVER_EQUALS, op.SEMVER_LESS_THAN, op.SEMVER_GREATER_THAN), st.sampled_from(SEMVERS)
    ),
    **dict.fromkeys((op.PERCENTILE_AT_MOST, op.PERCENTILE_AT_LEAST), st.sampled_from(PERCENTS)),
}


@st.composite
def valid_conditions(draw: st.DrawFn) -> Condition:
    """Conditions that pass validation, for every operator."""
    operator = draw(st.sampled_from(OPERATORS))
    ignore_case = operator in op.CASE_FOLDING_OPERATORS and draw(st.booleans())
    if operator == op.MATCHES_REGEX:
        value = draw(_valid_patterns(ignore_case))
    else:
        value = draw(_VALID_VALUES[operator])
    return Condition(draw(st.sampled_from(ATTRIBUTES)), operator, value, ignore_case)


def valid_events() -> st.SearchStrategy[EventCondition]:
    """Event conditions that pass validation."""
    return st.builds(
        EventCondition,
        name=st.sampled_from(COUNTED_EVENTS),
        operator=st.sampled_from(sorted(op.COUNT_OPERATORS)),
        count=st.integers(0, 5),
        within_days=st.sampled_from(WINDOWS),
    )


@st.composite
def valid_splits(draw: st.DrawFn) -> PercentageSplit:
    """Percentage splits that pass validation."""
    bounds = st.sampled_from((0.0, 10.0, 33.3, 50.0, 100.0)) | st.floats(0, 100)
    low, high = sorted((draw(bounds), draw(bounds)))
    return PercentageSplit(draw(st.sampled_from(SALTS)), low, high)


def valid_rules(
    *, max_leaves: int = 8, segment_names: Sequence[str] = (), list_names: Sequence[str] = ()
) -> st.SearchStrategy[Rule]:
    """Rule trees that pass ``validate_rule``; references only name ``segment_names``, and
    ``in_list`` leaves only ``list_names``."""
    leaves: st.SearchStrategy[Rule] = valid_conditions() | valid_events() | valid_splits()
    if segment_names:
        leaves |= st.builds(SegmentReference, st.sampled_from(tuple(segment_names)))
    if list_names:
        leaves |= st.builds(ListReference, st.sampled_from(tuple(list_names)))
    return st.recursive(leaves, _groups, max_leaves=max_leaves)


def _groups(children: st.SearchStrategy[Rule]) -> st.SearchStrategy[Rule]:
    return st.builds(Group, st.sampled_from(GROUP_KINDS), st.lists(children, max_size=4).map(tuple))


# --- any rules -----------------------------------------------------------------------------


def json_values() -> st.SearchStrategy[JsonValue]:
    """Any JSON value, including non-finite numbers and huge integers."""
    leaves: st.SearchStrategy[JsonValue] = (
        st.none()
        | scalars()
        | st.floats()
        | st.integers()
        | st.sampled_from((10**400, -(10**400), 1.5, -1, 101))
        | times()
        | st.sampled_from(SEMVERS + NOT_SEMVERS + NOT_TIMES + PATTERNS + NOT_PATTERNS)
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=2)
        ),
        max_leaves=4,
    )


def any_conditions(*, unknown_operators: bool = True) -> st.SearchStrategy[Condition]:
    """Conditions with any attribute, operator (valid or not), value and ignore_case."""
    attributes = st.sampled_from((*ATTRIBUTES, "", "a..b", ".a", "a" * 300)) | st.text(ALPHABET, max_size=4)
    operators = st.sampled_from(
        (*OPERATORS, "OPERATOR_UNSPECIFIED", *(("LIKE",) if unknown_operators else ()))
    )
    return st.builds(
        Condition,
        attributes,
        operators,
        json_values() | valid_conditions().map(lambda c: c.value),
        st.booleans(),
    )


def any_events() -> st.SearchStrategy[EventCondition]:
    """Event conditions with any name, operator, count and window."""
    return st.builds(
        EventCondition,
        name=st.sampled_from((*EVENT_NAMES, "")),
        operator=st.sampled_from((*OPERATORS, "OPERATOR_UNSPECIFIED")),
        count=st.integers(-2, 5) | st.integers(),
        within_days=st.sampled_from((*WINDOWS, -1, 36_500, 36_501)) | st.integers(),
    )


def any_splits() -> st.SearchStrategy[PercentageSplit]:
    """Percentage splits with any salt and bounds, NaN and infinities included."""
    return st.builds(PercentageSplit, st.text(max_size=3), st.floats(), st.floats())


def rules(*, max_leaves: int = 8, unknown_operators: bool = True) -> st.SearchStrategy[Rule]:
    """Any rule tree: valid and invalid values, operators, names and bounds.

    With ``unknown_operators=False``, operators are limited to those the JSON form can carry
    (the known ones and ``OPERATOR_UNSPECIFIED``).
    """
    references = st.builds(SegmentReference, st.sampled_from((*SEGMENT_NAMES, "", "Bad Name", "x" * 64)))
    leaves: st.SearchStrategy[Rule] = (
        any_conditions(unknown_operators=unknown_operators)
        | any_events()
        | references
        | any_splits()
        | valid_rules(max_leaves=1)
    )
    return st.recursive(leaves, _groups, max_leaves=max_leaves)


# --- sets of segments ----------------------------------------------------------------------

#: Names of the segments in a generated set; one is not a valid slug, as a caller may pass.
SET_NAMES = ("paying-users", "trial", "churn-risk", "loyal", "odd name\n")


@st.composite
def segment_sets(
    draw: st.DrawFn,
    rules_for: Any = None,
    names: Sequence[str] = SET_NAMES,
) -> dict[str, Rule]:
    """Acyclic sets of segments (each may reference only the ones after it in ``names``).

    ``rules_for(segment_names)`` gives the strategy of a segment's rule; `valid_rules` by default.
    """
    make = rules_for or (lambda segment_names: valid_rules(max_leaves=6, segment_names=segment_names))
    chosen = draw(st.lists(st.sampled_from(names), unique=True, min_size=1).map(sorted))
    return {name: draw(make(tuple(chosen[i + 1 :]))) for i, name in enumerate(chosen)}
