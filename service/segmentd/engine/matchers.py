"""One matcher per operator: the meaning of a condition, as specified in docs/semantics.md.

    MATCHERS_BY_OPERATOR[operator](condition) -> matcher     once, when a rule is compiled
    matcher(trait value or MISSING, context) -> bool         per evaluation

A factory precomputes everything the condition's value allows (lower-cased strings, parsed
times and versions, compiled RE2, sets of type-tagged keys) so a matcher only reads the trait.
Matchers take the context for the operators that need more than the trait: ``now`` for
``WITHIN_LAST_DAYS`` and the population thresholds for ``PERCENTILE_*``.
Factories assume a validated condition (`segmentd.engine.validation.validate_rule`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, Final, TypeAlias, cast

from segmentd.engine import operators as op
from segmentd.engine.context import EvaluationContext
from segmentd.engine.operators import Operator
from segmentd.engine.regex import compile_re2, effective_pattern
from segmentd.engine.rules import Condition, JsonValue
from segmentd.engine.semver import Semver, compare_semver, parse_semver
from segmentd.engine.times import MAX_TIME_LENGTH, US_PER_DAY, parse_time_us
from segmentd.engine.traits import MISSING, Missing, is_list, is_number

#: Decides whether a trait value (or `MISSING`) satisfies a compiled condition.
Matcher: TypeAlias = "Callable[[JsonValue | Missing, EvaluationContext], bool]"
#: Builds the matcher of one validated condition.
MatcherFactory = Callable[[Condition], Matcher]
#: A scalar tagged with its JSON type, so ``1``, ``True`` and ``"1"`` never compare equal.
ScalarKey = tuple[str, object]

_Comparison = Callable[[Any, Any], bool]

#: The comparisons of the ordering operators, also used for event counts.
COMPARISONS_BY_OPERATOR: Final[dict[Operator, _Comparison]] = {
    op.EQUALS: operator.eq,
    op.NOT_EQUALS: operator.ne,
    op.LESS_THAN: operator.lt,
    op.LESS_THAN_OR_EQUALS: operator.le,
    op.GREATER_THAN: operator.gt,
    op.GREATER_THAN_OR_EQUALS: operator.ge,
}


def scalar_key(value: object, ignore_case: bool) -> ScalarKey | None:
    """Tag a string, number or boolean with its type; ``None`` for anything else.

    Numbers share one tag, so ``1`` and ``1.0`` have equal (and equally hashed) keys.
    """
    if isinstance(value, str):
        return ("s", value.lower() if ignore_case else value)
    if isinstance(value, bool):
        return ("b", value)
    if is_number(value):
        return ("n", value)
    return None


def percentile_key(condition: Condition) -> tuple[str, float]:
    """Return the ``(attribute, percent)`` a ``PERCENTILE_*`` condition reads its threshold by."""
    return condition.attribute, float(cast("float", condition.value))


def time_of(value: JsonValue | Missing) -> int | None:
    """Return a trait as microseconds since the epoch, or ``None`` if it is not an RFC 3339 time."""
    if isinstance(value, str) and len(value) <= MAX_TIME_LENGTH:
        return _cached_time(value)
    return None


def semver_of(value: JsonValue | Missing) -> Semver | None:
    """Return a trait as a semantic version, or ``None`` if it is not one."""
    if not isinstance(value, str):
        return None
    return _cached_semver(value) if len(value) <= _MAX_CACHED_SEMVER_LENGTH else parse_semver(value)


# One user's segments often test the same trait many times (a signup time, an app version):
# parsing it once per process and value, not once per condition, is most of a time test's cost.
# Only short strings are cached, so a cache entry stays small.
_cached_time = functools.lru_cache(maxsize=4096)(parse_time_us)
_cached_semver = functools.lru_cache(maxsize=4096)(parse_semver)
_MAX_CACHED_SEMVER_LENGTH = 64


def _folder(ignore_case: bool) -> Callable[[str], str]:
    """Return how strings are compared: lower-cased, or as they are (``str`` of a str is itself)."""
    return str.lower if ignore_case else str


def _present_and_not(factory: MatcherFactory) -> MatcherFactory:
    """Negate a matcher for present traits only: a missing trait stays false."""

    def negated_factory(condition: Condition) -> Matcher:
        holds = factory(condition)
        return lambda value, ctx: value is not MISSING and not holds(value, ctx)

    return negated_factory


def _equals(condition: Condition) -> Matcher:
    expected = scalar_key(condition.value, condition.ignore_case)
    ignore_case = condition.ignore_case
    return lambda value, _ctx: scalar_key(value, ignore_case) == expected


def _in(condition: Condition) -> Matcher:
    ignore_case = condition.ignore_case
    keys = frozenset(scalar_key(item, ignore_case) for item in cast("list[JsonValue]", condition.value))
    return lambda value, _ctx: scalar_key(value, ignore_case) in keys


def _contains(condition: Condition) -> Matcher:
    ignore_case = condition.ignore_case
    expected = scalar_key(condition.value, ignore_case)

    def in_list(value: JsonValue | Missing) -> bool:
        return is_list(value) and any(scalar_key(item, ignore_case) == expected for item in value)

    if not isinstance(condition.value, str):
        return lambda value, _ctx: in_list(value)
    fold = _folder(ignore_case)
    needle = fold(condition.value)
    return lambda value, _ctx: needle in fold(value) if isinstance(value, str) else in_list(value)


def _ordering(comparison: _Comparison) -> MatcherFactory:
    def factory(condition: Condition) -> Matcher:
        bound = condition.value
        if isinstance(bound, str):
            fold = _folder(condition.ignore_case)
            folded = fold(bound)
            return lambda value, _ctx: isinstance(value, str) and comparison(fold(value), folded)
        return lambda value, _ctx: is_number(value) and comparison(value, bound)

    return factory


def _affix(method: Callable[[str, str], bool]) -> MatcherFactory:
    def factory(condition: Condition) -> Matcher:
        fold = _folder(condition.ignore_case)
        affix = fold(cast("str", condition.value))
        return lambda value, _ctx: isinstance(value, str) and method(fold(value), affix)

    return factory


def _matches_regex(condition: Condition) -> Matcher:
    fold = _folder(condition.ignore_case)
    pattern = compile_re2(effective_pattern(cast("str", condition.value), ignore_case=condition.ignore_case))

    def matches(value: JsonValue | Missing, _ctx: EvaluationContext) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return pattern.search(fold(value)) is not None
        except UnicodeEncodeError:  # a lone surrogate (from JSON text) cannot reach RE2's UTF-8
            return False

    return matches


def _exists(_condition: Condition) -> Matcher:
    return lambda value, _ctx: value is not MISSING


def _not_exists(_condition: Condition) -> Matcher:
    return lambda value, _ctx: value is MISSING


def _between(condition: Condition) -> Matcher:
    low, high = cast("list[Any]", condition.value)
    if is_number(low):
        return lambda value, _ctx: is_number(value) and low <= value <= high
    low_us, high_us = cast("int", parse_time_us(low)), cast("int", parse_time_us(high))
    return lambda value, _ctx: (instant := time_of(value)) is not None and low_us <= instant <= high_us


def _instant(comparison: _Comparison) -> MatcherFactory:
    def factory(condition: Condition) -> Matcher:
        bound = cast("int", parse_time_us(cast("str", condition.value)))
        return lambda value, _ctx: (instant := time_of(value)) is not None and comparison(instant, bound)

    return factory


def _relative(comparison: _Comparison) -> MatcherFactory:
    """Compare a time trait with ``now - n days``, ``now`` being the context's."""

    def factory(condition: Condition) -> Matcher:
        span = int(cast("float", condition.value)) * US_PER_DAY
        return lambda value, ctx: (
            (instant := time_of(value)) is not None and comparison(instant, ctx.now_us - span)
        )

    return factory


def _semver(expected: int) -> MatcherFactory:
    def factory(condition: Condition) -> Matcher:
        version = cast("Semver", parse_semver(cast("str", condition.value)))

        def matches(value: JsonValue | Missing, _ctx: EvaluationContext) -> bool:
            trait = semver_of(value)
            return trait is not None and compare_semver(trait, version) == expected

        return matches

    return factory


def _percentile(comparison: _Comparison) -> MatcherFactory:
    def factory(condition: Condition) -> Matcher:
        key = percentile_key(condition)

        def matches(value: JsonValue | Missing, ctx: EvaluationContext) -> bool:
            threshold = ctx.percentile_thresholds.get(key)
            return is_number(value) and threshold is not None and comparison(value, threshold)

        return matches

    return factory


#: The matcher factory of every operator.
MATCHERS_BY_OPERATOR: Final[dict[Operator, MatcherFactory]] = {
    op.EQUALS: _equals,
    op.NOT_EQUALS: _present_and_not(_equals),
    op.LESS_THAN: _ordering(operator.lt),
    op.LESS_THAN_OR_EQUALS: _ordering(operator.le),
    op.GREATER_THAN: _ordering(operator.gt),
    op.GREATER_THAN_OR_EQUALS: _ordering(operator.ge),
    op.IN: _in,
    op.NOT_IN: _present_and_not(_in),
    op.CONTAINS: _contains,
    op.NOT_CONTAINS: _present_and_not(_contains),
    op.STARTS_WITH: _affix(str.startswith),
    op.ENDS_WITH: _affix(str.endswith),
    op.MATCHES_REGEX: _matches_regex,
    op.EXISTS: _exists,
    op.NOT_EXISTS: _not_exists,
    op.BETWEEN: _between,
    op.BEFORE: _instant(operator.lt),
    op.AFTER: _instant(operator.gt),
    op.WITHIN_LAST_DAYS: _relative(operator.ge),
    op.NOT_WITHIN_LAST_DAYS: _relative(operator.lt),
    op.SEMVER_EQUALS: _semver(0),
    op.SEMVER_LESS_THAN: _semver(-1),
    op.SEMVER_GREATER_THAN: _semver(1),
    op.PERCENTILE_AT_MOST: _percentile(operator.le),
    op.PERCENTILE_AT_LEAST: _percentile(operator.ge),
}


def matcher_for(condition: Condition) -> Matcher:
    """Build the matcher of a validated condition."""
    return MATCHERS_BY_OPERATOR[cast("Operator", condition.operator)](condition)
