"""One SQL builder per operator: the meaning of a condition, as ``segmentd.engine.matchers`` has it.

    CONDITION_BUILDERS_BY_OPERATOR[operator](condition, value, scope) -> boolean expression

``value`` is the trait at the condition's path (`JsonValueSql`); ``scope`` carries ``now``
and the percentile thresholds. Every builder returns a two-valued expression (true or false,
never NULL), so groups may negate it. Constants are prepared in Python, once: lower-cased
with ``str.lower`` (which ``segmentd_lower`` reproduces in SQL), times turned into epoch
microseconds with the engine's own parser, regexes translated for PostgreSQL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import BigInteger, ColumnElement, Integer, Text, and_, exists, false, func, literal, not_

from segmentd.engine import operators as op
from segmentd.engine.matchers import percentile_key
from segmentd.engine.operators import Operator
from segmentd.engine.regex import effective_pattern
from segmentd.engine.rules import Condition
from segmentd.engine.times import US_PER_DAY, parse_time_us
from segmentd.engine.traits import is_number
from segmentd.sqlgen.functions import LOWER, SEMVER_CMP, TIME_US
from segmentd.sqlgen.json_values import Comparison, JsonValueSql, Scalar, any_of, two_valued, when


@dataclass(frozen=True, slots=True)
class Scope:
    """What conditions read besides the trait.

    Attributes:
        now_us: ``now`` in epoch microseconds, bound as a parameter (never the database clock).
        percentile_thresholds: ``(attribute, percent) -> threshold``, as the engine keys them.
    """

    now_us: int
    percentile_thresholds: Mapping[tuple[str, float], float | None]


#: Builds the SQL of one validated condition on the trait it reads.
ConditionBuilder = Callable[[Condition, JsonValueSql, Scope], ColumnElement[bool]]


def _lower(text: ColumnElement[str]) -> ColumnElement[str]:
    return cast("ColumnElement[str]", getattr(func, LOWER)(text, type_=Text))


def _folded(value: JsonValueSql, ignore_case: bool) -> ColumnElement[str]:
    return _lower(value.text()) if ignore_case else value.text()


def _fold(text: str, ignore_case: bool) -> str:
    return text.lower() if ignore_case else text


def _present_and_not(builder: ConditionBuilder) -> ConditionBuilder:
    """``NOT_*``: the trait is present and the positive operator does not hold."""

    def negated(condition: Condition, value: JsonValueSql, scope: Scope) -> ColumnElement[bool]:
        return and_(value.is_present(), not_(two_valued(builder(condition, value, scope))))

    return negated


def _equals_any(value: JsonValueSql, items: Sequence[Scalar], ignore_case: bool) -> ColumnElement[bool]:
    if not ignore_case:
        return value.equals_any_exact(items)
    # ignore_case folds strings only; numbers and booleans still compare as they are.
    strings = sorted({item.lower() for item in items if isinstance(item, str)})
    others = [item for item in items if not isinstance(item, str)]
    tests = [value.equals_any_exact(others)] if others else []
    if strings:
        tests.append(when(value.kind_is("string"), _folded(value, True).in_(strings)))
    return any_of(tests)


def _differs_from_all(value: JsonValueSql, items: Sequence[Scalar], ignore_case: bool) -> ColumnElement[bool]:
    if ignore_case:
        return not_(two_valued(_equals_any(value, items, ignore_case)))
    return value.differs_from_all(items)


def _equals(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    return _equals_any(value, [cast("Scalar", condition.value)], condition.ignore_case)


def _in(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    return _equals_any(value, cast("list[Scalar]", condition.value), condition.ignore_case)


def _not_equal(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    return _differs_from_all(value, [cast("Scalar", condition.value)], condition.ignore_case)


def _not_in(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    return _differs_from_all(value, cast("list[Scalar]", condition.value), condition.ignore_case)


def _present_and_differs(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    """``NOT_EQUALS``, ``NOT_IN``: the trait is present and equals none of the values."""
    items = condition.value if isinstance(condition.value, list) else [condition.value]
    if condition.ignore_case:
        return and_(value.is_present(), _differs_from_all(value, cast("list[Scalar]", items), True))
    return value.present_and_differs(cast("list[Scalar]", items))


def _list_contains(value: JsonValueSql, item: Scalar, ignore_case: bool) -> ColumnElement[bool]:
    if not (ignore_case and isinstance(item, str)):
        return value.contains_exact(item)
    table, element = value.elements()
    return exists().select_from(table).where(_equals_any(element, [item], ignore_case=True))


def _contains(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    item, ignore_case = cast("Scalar", condition.value), condition.ignore_case
    in_list = _list_contains(value, item, ignore_case)
    if not isinstance(item, str):
        return in_list
    substring = value.substring_test(_folded(value, ignore_case), _fold(item, ignore_case))
    return when(value.kind_is("string"), substring) | in_list


def _ordering(comparison: Comparison) -> ConditionBuilder:
    def build(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
        bound = condition.value
        if isinstance(bound, str):
            folded = value.ordered(_folded(value, condition.ignore_case))
            return when(value.kind_is("string"), comparison(folded, _fold(bound, condition.ignore_case)))
        number = cast("float", bound)
        return when(value.kind_is("number"), comparison(value.number(), value.number_literal(number)))

    return build


def _starts_with(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    prefix = _fold(cast("str", condition.value), condition.ignore_case)
    if not prefix:
        return two_valued(value.kind_is("string"))
    start = func.substr(_folded(value, condition.ignore_case), 1, len(prefix), type_=Text)
    return when(value.kind_is("string"), start == literal(prefix, Text))


def _ends_with(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    suffix = _fold(cast("str", condition.value), condition.ignore_case)
    if not suffix:
        return two_valued(value.kind_is("string"))
    end = value.suffix(_folded(value, condition.ignore_case), len(suffix))
    return when(value.kind_is("string"), end == literal(suffix, Text))


def _matches_regex(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    pattern = effective_pattern(cast("str", condition.value), ignore_case=condition.ignore_case)
    return when(value.kind_is("string"), value.regex_test(_folded(value, condition.ignore_case), pattern))


def _exists(_condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    return value.is_present()


def _not_exists(_condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    return not_(value.is_present())


def _time_us(value: JsonValueSql) -> ColumnElement[int]:
    return cast("ColumnElement[int]", getattr(func, TIME_US)(value.string_or_null(), type_=BigInteger))


def _between(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
    low, high = cast("list[Any]", condition.value)
    if is_number(low):
        return value.number_between(low, high)
    instant = _time_us(value)
    return two_valued(and_(instant >= parse_time_us(low), instant <= parse_time_us(high)))


def _instant(comparison: Comparison) -> ConditionBuilder:
    def build(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
        bound = parse_time_us(cast("str", condition.value))
        return two_valued(comparison(_time_us(value), literal(bound, BigInteger)))

    return build


def _relative(comparison: Comparison) -> ConditionBuilder:
    """Compare a time trait with ``now - n days``, computed here from the caller's ``now``."""

    def build(condition: Condition, value: JsonValueSql, scope: Scope) -> ColumnElement[bool]:
        bound = scope.now_us - int(cast("float", condition.value)) * US_PER_DAY
        return two_valued(comparison(_time_us(value), literal(bound, BigInteger)))

    return build


def _semver(expected: int) -> ConditionBuilder:
    def build(condition: Condition, value: JsonValueSql, _scope: Scope) -> ColumnElement[bool]:
        version = literal(cast("str", condition.value), Text)
        order = getattr(func, SEMVER_CMP)(value.string_or_null(), version, type_=Integer)
        return two_valued(order == expected)

    return build


def _percentile(comparison: Comparison) -> ConditionBuilder:
    def build(condition: Condition, value: JsonValueSql, scope: Scope) -> ColumnElement[bool]:
        threshold = scope.percentile_thresholds.get(percentile_key(condition))
        if threshold is None:  # no profile has a number there: nothing to be at or beyond
            return false()
        return when(value.kind_is("number"), comparison(value.number(), value.number_literal(threshold)))

    return build


#: The SQL builder of every operator.
CONDITION_BUILDERS_BY_OPERATOR: Final[dict[Operator, ConditionBuilder]] = {
    op.EQUALS: _equals,
    op.NOT_EQUALS: _present_and_differs,
    op.LESS_THAN: _ordering(operator.lt),
    op.LESS_THAN_OR_EQUALS: _ordering(operator.le),
    op.GREATER_THAN: _ordering(operator.gt),
    op.GREATER_THAN_OR_EQUALS: _ordering(operator.ge),
    op.IN: _in,
    op.NOT_IN: _present_and_differs,
    op.CONTAINS: _contains,
    op.NOT_CONTAINS: _present_and_not(_contains),
    op.STARTS_WITH: _starts_with,
    op.ENDS_WITH: _ends_with,
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

#: Two-valued SQL for "the condition does not hold", where it is cheaper than ``NOT`` of the
#: builder's (``none`` groups use it): equality tests negated without containment.
NEGATED_BUILDERS_BY_OPERATOR: Final[dict[Operator, ConditionBuilder]] = {
    op.EQUALS: _not_equal,
    op.IN: _not_in,
}
