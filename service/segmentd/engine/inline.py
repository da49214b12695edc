"""Each operator as an inline Python expression, for the code generator (`segmentd.engine.codegen`).

    EXPRESSIONS_BY_OPERATOR[operator](condition, value, bind) -> Inline(text, cost)

``value`` is the source text that reads the trait (``None`` when missing or null, never
`MISSING`); ``bind`` binds a constant (a string, a number, a set, a compiled pattern, a
matcher) in the namespace of the generated code and returns the name it is bound to, so no
user value is ever pasted into the source. The expressions mean exactly what the matchers of
`segmentd.engine.matchers` mean; the awkward cases (mixed-type ``IN`` lists, ``CONTAINS`` on a
list) call that very matcher, bound as a constant. ``cost`` is a rough relative price of one
evaluation, used to order a group's children cheapest first.

The generated code also reads these `HELPERS` by name.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final, NamedTuple, cast

import re2

from segmentd.engine import operators as op
from segmentd.engine.matchers import COMPARISONS_BY_OPERATOR, matcher_for, semver_of, time_of
from segmentd.engine.operators import Operator
from segmentd.engine.regex import RE2Pattern, compile_re2, effective_pattern
from segmentd.engine.rules import Condition, JsonValue
from segmentd.engine.semver import compare_semver, parse_semver
from segmentd.engine.split import bucket
from segmentd.engine.times import US_PER_DAY, parse_time_us
from segmentd.engine.traits import is_number

#: Binds a constant in the generated code's namespace and returns its name.
Bind = Callable[[object], str]

_Comparison = Callable[[Any, Any], bool]


class Inline(NamedTuple):
    """The expression of one condition and its relative cost."""

    text: str
    cost: int


#: The names the generated expressions use beside the bound constants.
HELPERS: Final[dict[str, object]] = {
    "NUMBER": (int, float),
    "LIST": (list, tuple),
    "time_of": time_of,
    "semver_of": semver_of,
    "compare_semver": compare_semver,
    "bucket": bucket,
}

_SYMBOLS: Final[dict[_Comparison, str]] = {
    operator.eq: "==",
    operator.ne: "!=",
    operator.lt: "<",
    operator.le: "<=",
    operator.gt: ">",
    operator.ge: ">=",
}
_FOLD_COST = 6  # a str.lower call


def re2_searcher(pattern: RE2Pattern) -> Callable[[str], bool]:
    """Return ``text -> does pattern match somewhere in text``, with RE2's own engine.

    ``re2``'s Python ``search`` builds a generator, offset tables and a match object for every
    call; this calls the compiled ``RE2`` object's ``Match`` directly (the same call ``search``
    ends in, so the same semantics), and answers only whether the overall match exists. A lone
    surrogate cannot be encoded to the UTF-8 RE2 reads: no match, as in the matcher.
    """
    match = cast("Any", pattern)._regexp.Match
    unanchored = re2._Anchor.UNANCHORED

    def search(text: str) -> bool:
        try:
            data = text.encode()
        except UnicodeEncodeError:
            return False
        return bool(match(unanchored, data, 0, len(data))[0][0] >= 0)

    return search


def _bool_guard(value: str, holds_for: Callable[[int], bool]) -> str:
    """Exclude booleans (``True == 1``) when the test could hold for 0 or 1, else nothing."""
    if holds_for(0) or holds_for(1):
        return f" and {value} is not True and {value} is not False"
    return ""


def _folded(value: str, ignore_case: bool) -> str:
    return f"{value}.lower()" if ignore_case else value


def _equals(condition: Condition, value: str, bind: Bind) -> Inline:
    expected = condition.value
    if isinstance(expected, str):
        if condition.ignore_case:
            return Inline(f"isinstance({value}, str) and {value}.lower() == {bind(expected.lower())}", 9)
        return Inline(f"{value} == {bind(expected)}", 2)
    if isinstance(expected, bool):
        return Inline(f"{value} is {expected}", 1)
    name = bind(expected)
    return Inline(f"{value} == {name}" + _bool_guard(value, lambda n: n == expected), 3)


def _in(condition: Condition, value: str, bind: Bind) -> Inline:
    items = cast("list[JsonValue]", condition.value)
    if not items:
        return Inline("False", 0)
    if all(isinstance(item, str) for item in items):
        keys = frozenset(cast("str", item).lower() if condition.ignore_case else item for item in items)
        text = f"isinstance({value}, str) and {_folded(value, condition.ignore_case)} in {bind(keys)}"
        return Inline(text, 4 + _FOLD_COST * condition.ignore_case)
    if all(is_number(item) for item in items):
        numbers = frozenset(cast("list[float]", items))
        guard = _bool_guard(value, numbers.__contains__)
        return Inline(f"isinstance({value}, NUMBER) and {value} in {bind(numbers)}{guard}", 5)
    return _matcher(condition, value, bind)


def _contains(condition: Condition, value: str, bind: Bind) -> Inline:
    in_list = f"isinstance({value}, LIST) and {bind(matcher_for(condition))}({value}, ctx)"
    needle = condition.value
    if not isinstance(needle, str):
        return Inline(in_list, 8)
    folded = needle.lower() if condition.ignore_case else needle
    substring = f"{bind(folded)} in {_folded(value, condition.ignore_case)}"
    return Inline(f"({substring} if isinstance({value}, str) else {in_list})", 8 + _FOLD_COST)


def _matcher(condition: Condition, value: str, bind: Bind) -> Inline:
    """Call the condition's own matcher (for present values only: it is false on a missing one)."""
    return Inline(f"{value} is not None and {bind(matcher_for(condition))}({value}, ctx)", 15)


def _negated(positive: Operator) -> Callable[[Condition, str, Bind], Inline]:
    """Negate the expression of ``positive`` for present traits only: a missing trait stays false."""

    def negated(condition: Condition, value: str, bind: Bind) -> Inline:
        # The positive condition, so a matcher bound by its expression is the positive one too.
        text, cost = EXPRESSIONS_BY_OPERATOR[positive](replace(condition, operator=positive), value, bind)
        return Inline(f"{value} is not None and not ({text})", cost + 1)

    return negated


def _ordering(comparison: _Comparison) -> Callable[[Condition, str, Bind], Inline]:
    symbol = _SYMBOLS[comparison]

    def ordering(condition: Condition, value: str, bind: Bind) -> Inline:
        bound = condition.value
        if isinstance(bound, str):
            folded = bound.lower() if condition.ignore_case else bound
            trait = _folded(value, condition.ignore_case)
            text = f"isinstance({value}, str) and {trait} {symbol} {bind(folded)}"
            return Inline(text, 4 + _FOLD_COST * condition.ignore_case)
        guard = _bool_guard(value, lambda n: comparison(n, bound))
        return Inline(f"isinstance({value}, NUMBER) and {value} {symbol} {bind(bound)}{guard}", 4)

    return ordering


def _affix(method: str) -> Callable[[Condition, str, Bind], Inline]:
    def affix(condition: Condition, value: str, bind: Bind) -> Inline:
        text = cast("str", condition.value)
        folded = text.lower() if condition.ignore_case else text
        expression = f"isinstance({value}, str) and {_folded(value, condition.ignore_case)}.{method}"
        return Inline(f"{expression}({bind(folded)})", 7 + _FOLD_COST * condition.ignore_case)

    return affix


def _matches_regex(condition: Condition, value: str, bind: Bind) -> Inline:
    pattern = effective_pattern(cast("str", condition.value), ignore_case=condition.ignore_case)
    search = bind(re2_searcher(compile_re2(pattern)))
    folded = _folded(value, condition.ignore_case)
    return Inline(f"isinstance({value}, str) and {search}({folded})", 30 + _FOLD_COST * condition.ignore_case)


def _between(condition: Condition, value: str, bind: Bind) -> Inline:
    low, high = cast("list[Any]", condition.value)
    if is_number(low):
        guard = _bool_guard(value, lambda n: low <= n <= high)
        return Inline(f"isinstance({value}, NUMBER) and {bind(low)} <= {value} <= {bind(high)}{guard}", 5)
    low_us, high_us = bind(parse_time_us(low)), bind(parse_time_us(high))
    return Inline(f"(w := time_of({value})) is not None and {low_us} <= w <= {high_us}", 12)


def _instant(comparison: _Comparison) -> Callable[[Condition, str, Bind], Inline]:
    symbol = _SYMBOLS[comparison]

    def instant(condition: Condition, value: str, bind: Bind) -> Inline:
        bound = bind(parse_time_us(cast("str", condition.value)))
        return Inline(f"(w := time_of({value})) is not None and w {symbol} {bound}", 12)

    return instant


def _relative(comparison: _Comparison) -> Callable[[Condition, str, Bind], Inline]:
    symbol = _SYMBOLS[comparison]

    def relative(condition: Condition, value: str, bind: Bind) -> Inline:
        span = bind(int(cast("float", condition.value)) * US_PER_DAY)
        return Inline(f"(w := time_of({value})) is not None and w {symbol} now_us - {span}", 13)

    return relative


def _semver(expected: int) -> Callable[[Condition, str, Bind], Inline]:
    def semver(condition: Condition, value: str, bind: Bind) -> Inline:
        version = bind(parse_semver(cast("str", condition.value)))
        return Inline(
            f"(w := semver_of({value})) is not None and compare_semver(w, {version}) == {expected}", 25
        )

    return semver


#: The inline expression of every operator but ``PERCENTILE_*`` (see `percentile_expression`).
EXPRESSIONS_BY_OPERATOR: Final[dict[Operator, Callable[[Condition, str, Bind], Inline]]] = {
    op.EQUALS: _equals,
    op.NOT_EQUALS: _negated(op.EQUALS),
    op.LESS_THAN: _ordering(operator.lt),
    op.LESS_THAN_OR_EQUALS: _ordering(operator.le),
    op.GREATER_THAN: _ordering(operator.gt),
    op.GREATER_THAN_OR_EQUALS: _ordering(operator.ge),
    op.IN: _in,
    op.NOT_IN: _negated(op.IN),
    op.CONTAINS: _contains,
    op.NOT_CONTAINS: _negated(op.CONTAINS),
    op.STARTS_WITH: _affix("startswith"),
    op.ENDS_WITH: _affix("endswith"),
    op.MATCHES_REGEX: _matches_regex,
    op.EXISTS: lambda _condition, value, _bind: Inline(f"{value} is not None", 1),
    op.NOT_EXISTS: lambda _condition, value, _bind: Inline(f"{value} is None", 1),
    op.BETWEEN: _between,
    op.BEFORE: _instant(operator.lt),
    op.AFTER: _instant(operator.gt),
    op.WITHIN_LAST_DAYS: _relative(operator.ge),
    op.NOT_WITHIN_LAST_DAYS: _relative(operator.lt),
    op.SEMVER_EQUALS: _semver(0),
    op.SEMVER_LESS_THAN: _semver(-1),
    op.SEMVER_GREATER_THAN: _semver(1),
}


def percentile_expression(condition: Condition, value: str, threshold: str) -> Inline:
    """Return a ``PERCENTILE_*`` condition, ``threshold`` reading its threshold (``None`` if unknown)."""
    symbol = "<=" if condition.operator == op.PERCENTILE_AT_MOST else ">="
    text = (
        f"{threshold} is not None and isinstance({value}, NUMBER)"
        f" and {value} is not True and {value} is not False and {value} {symbol} {threshold}"
    )
    return Inline(text, 6)


def count_expression(operator_name: str, count: str, bound: str) -> str:
    """Return an event condition: its ``count`` compared with the ``bound`` as the operator says."""
    return f"{count} {_SYMBOLS[COMPARISONS_BY_OPERATOR[cast('Operator', operator_name)]]} {bound}"
