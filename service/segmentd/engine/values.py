"""The value each operator takes: one check per operator, as tabled in docs/semantics.md.

    VALUE_CHECKS_BY_OPERATOR[condition.operator](condition, limits, "rule...condition.value")

A check raises ``InvalidRule`` naming the value (or one element, ``value[1]``) when the value
does not have the operator's shape; it never raises anything else, whatever the value holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from segmentd.engine import operators as op
from segmentd.engine.limits import RuleLimits
from segmentd.engine.operators import Operator
from segmentd.engine.regex import UnsupportedPattern, check_pattern
from segmentd.engine.rules import Condition, JsonValue
from segmentd.engine.semver import parse_semver
from segmentd.engine.times import parse_time_us
from segmentd.engine.traits import describe_type, is_finite_number, is_list
from segmentd.errors import InvalidRule

#: The longest window, in days, of ``WITHIN_LAST_DAYS`` and of event conditions (100 years):
#: ``now - n days`` then stays a representable date in Python, PostgreSQL and SQLite.
MAX_DAYS: Final = 36_500

#: Checks a condition's value; raises ``InvalidRule(path, reason)`` when it does not fit.
ValueCheck = Callable[[Condition, RuleLimits, str], None]


def _refuse(path: str, operator: str, expected: str, value: JsonValue) -> InvalidRule:
    return InvalidRule(path, f"{operator} needs {expected}; got {describe_type(value)}")


def _is_scalar(value: JsonValue) -> bool:
    return isinstance(value, str | bool) or is_finite_number(value)


def _scalar(condition: Condition, _limits: RuleLimits, path: str) -> None:
    if not _is_scalar(condition.value):
        raise _refuse(path, condition.operator, "a string, number or boolean", condition.value)


def _number_or_string(condition: Condition, _limits: RuleLimits, path: str) -> None:
    if not (isinstance(condition.value, str) or is_finite_number(condition.value)):
        raise _refuse(path, condition.operator, "a number or a string", condition.value)


def _scalar_list(condition: Condition, limits: RuleLimits, path: str) -> None:
    values = condition.value
    if not is_list(values):
        raise _refuse(path, condition.operator, "a list of strings, numbers or booleans", values)
    if len(values) > limits.max_list_values:
        raise InvalidRule(path, f"a list may have at most {limits.max_list_values} values; got {len(values)}")
    for i, item in enumerate(values):
        if not _is_scalar(item):
            raise _refuse(f"{path}[{i}]", condition.operator, "a string, number or boolean", item)


def _string(condition: Condition, _limits: RuleLimits, path: str) -> None:
    if not isinstance(condition.value, str):
        raise _refuse(path, condition.operator, "a string", condition.value)


def _pattern(condition: Condition, limits: RuleLimits, path: str) -> None:
    pattern = condition.value
    if not isinstance(pattern, str):
        raise _refuse(path, condition.operator, "a regular expression (a string)", pattern)
    if len(pattern) > limits.max_regex_length:
        raise InvalidRule(path, f"a regular expression has at most {limits.max_regex_length} characters")
    try:
        check_pattern(pattern, ignore_case=condition.ignore_case)
    except UnsupportedPattern as exc:
        raise InvalidRule(path, str(exc)) from None


def _no_value(condition: Condition, _limits: RuleLimits, path: str) -> None:
    if condition.value is not None:
        raise InvalidRule(path, f"{condition.operator} takes no value; got {describe_type(condition.value)}")


def _is_time(value: JsonValue) -> bool:
    return isinstance(value, str) and parse_time_us(value) is not None


def _as_number(value: JsonValue) -> int | float | None:
    return value if is_finite_number(value) else None


def _as_time(value: JsonValue) -> int | None:
    return parse_time_us(value) if isinstance(value, str) else None


def _range(condition: Condition, _limits: RuleLimits, path: str) -> None:
    bounds = condition.value
    expected = "a list [low, high] of two numbers or of two RFC 3339 times"
    if not (is_list(bounds) and len(bounds) == 2):
        raise _refuse(path, condition.operator, expected, bounds)
    # The low bound decides the kind of range; the high bound must be of the same kind.
    as_key = _as_number if is_finite_number(bounds[0]) else _as_time
    low, high = as_key(bounds[0]), as_key(bounds[1])
    if low is None:
        raise _refuse(f"{path}[0]", condition.operator, expected, bounds[0])
    if high is None:
        raise _refuse(f"{path}[1]", condition.operator, expected, bounds[1])
    if low > high:
        raise InvalidRule(f"{path}[1]", f"the high bound must not be below the low bound {bounds[0]!r}")


def _time(condition: Condition, _limits: RuleLimits, path: str) -> None:
    if not _is_time(condition.value):
        raise _refuse(
            path, condition.operator, "an RFC 3339 time such as 2026-03-01T09:30:00Z", condition.value
        )


def _days(condition: Condition, _limits: RuleLimits, path: str) -> None:
    days = condition.value
    # Proto Values carry numbers as doubles: 30.0 is a whole number of days, 1.5 is not.
    if not (is_finite_number(days) and float(days).is_integer() and 0 <= days <= MAX_DAYS):
        raise InvalidRule(
            path, f"{condition.operator} needs a whole number of days from 0 to {MAX_DAYS}; got {days!r}"
        )


def _semver(condition: Condition, _limits: RuleLimits, path: str) -> None:
    version = condition.value
    if not (isinstance(version, str) and parse_semver(version) is not None):
        raise InvalidRule(
            path, f"{condition.operator} needs a semantic version such as 1.4.0; got {version!r}"
        )


def _percent(condition: Condition, _limits: RuleLimits, path: str) -> None:
    percent = condition.value
    if not (is_finite_number(percent) and 0 <= percent <= 100):
        raise InvalidRule(path, f"{condition.operator} needs a percentile from 0 to 100; got {percent!r}")


#: The check of every operator's value.
VALUE_CHECKS_BY_OPERATOR: Final[dict[Operator, ValueCheck]] = {
    **dict.fromkeys((op.EQUALS, op.NOT_EQUALS, op.CONTAINS, op.NOT_CONTAINS), _scalar),
    **dict.fromkeys(
        (op.LESS_THAN, op.LESS_THAN_OR_EQUALS, op.GREATER_THAN, op.GREATER_THAN_OR_EQUALS), _number_or_string
    ),
    **dict.fromkeys((op.IN, op.NOT_IN), _scalar_list),
    **dict.fromkeys((op.STARTS_WITH, op.ENDS_WITH), _string),
    op.MATCHES_REGEX: _pattern,
    **dict.fromkeys((op.EXISTS, op.NOT_EXISTS), _no_value),
    op.BETWEEN: _range,
    **dict.fromkeys((op.BEFORE, op.AFTER), _time),
    **dict.fromkeys((op.WITHIN_LAST_DAYS, op.NOT_WITHIN_LAST_DAYS), _days),
    **dict.fromkeys((op.SEMVER_EQUALS, op.SEMVER_LESS_THAN, op.SEMVER_GREATER_THAN), _semver),
    **dict.fromkeys((op.PERCENTILE_AT_MOST, op.PERCENTILE_AT_LEAST), _percent),
}
