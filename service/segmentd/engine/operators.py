"""Operator names and the families they belong to.

The names are those of the ``Condition.Operator`` enum in ``proto/segmentd/v1/rules.proto``
and of the JSON form; the engine speaks these strings, never enum numbers.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Operator = Literal[
    "EQUALS",
    "NOT_EQUALS",
    "LESS_THAN",
    "LESS_THAN_OR_EQUALS",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUALS",
    "IN",
    "NOT_IN",
    "CONTAINS",
    "NOT_CONTAINS",
    "STARTS_WITH",
    "ENDS_WITH",
    "MATCHES_REGEX",
    "EXISTS",
    "NOT_EXISTS",
    "BETWEEN",
    "BEFORE",
    "AFTER",
    "WITHIN_LAST_DAYS",
    "NOT_WITHIN_LAST_DAYS",
    "SEMVER_EQUALS",
    "SEMVER_LESS_THAN",
    "SEMVER_GREATER_THAN",
    "PERCENTILE_AT_MOST",
    "PERCENTILE_AT_LEAST",
]

OPERATORS: Final[tuple[Operator, ...]] = get_args(Operator)

EQUALS: Final = "EQUALS"
NOT_EQUALS: Final = "NOT_EQUALS"
LESS_THAN: Final = "LESS_THAN"
LESS_THAN_OR_EQUALS: Final = "LESS_THAN_OR_EQUALS"
GREATER_THAN: Final = "GREATER_THAN"
GREATER_THAN_OR_EQUALS: Final = "GREATER_THAN_OR_EQUALS"
IN: Final = "IN"
NOT_IN: Final = "NOT_IN"
CONTAINS: Final = "CONTAINS"
NOT_CONTAINS: Final = "NOT_CONTAINS"
STARTS_WITH: Final = "STARTS_WITH"
ENDS_WITH: Final = "ENDS_WITH"
MATCHES_REGEX: Final = "MATCHES_REGEX"
EXISTS: Final = "EXISTS"
NOT_EXISTS: Final = "NOT_EXISTS"
BETWEEN: Final = "BETWEEN"
BEFORE: Final = "BEFORE"
AFTER: Final = "AFTER"
WITHIN_LAST_DAYS: Final = "WITHIN_LAST_DAYS"
NOT_WITHIN_LAST_DAYS: Final = "NOT_WITHIN_LAST_DAYS"
SEMVER_EQUALS: Final = "SEMVER_EQUALS"
SEMVER_LESS_THAN: Final = "SEMVER_LESS_THAN"
SEMVER_GREATER_THAN: Final = "SEMVER_GREATER_THAN"
PERCENTILE_AT_MOST: Final = "PERCENTILE_AT_MOST"
PERCENTILE_AT_LEAST: Final = "PERCENTILE_AT_LEAST"

#: Operators an ``EventCondition`` may use to compare its event count.
COUNT_OPERATORS: Final[frozenset[Operator]] = frozenset(
    {
        EQUALS,
        NOT_EQUALS,
        LESS_THAN,
        LESS_THAN_OR_EQUALS,
        GREATER_THAN,
        GREATER_THAN_OR_EQUALS,
    }
)

#: Operators for which ``ignore_case`` has a meaning (they compare strings).
CASE_FOLDING_OPERATORS: Final[frozenset[Operator]] = frozenset(
    {
        EQUALS,
        NOT_EQUALS,
        LESS_THAN,
        LESS_THAN_OR_EQUALS,
        GREATER_THAN,
        GREATER_THAN_OR_EQUALS,
        IN,
        NOT_IN,
        CONTAINS,
        NOT_CONTAINS,
        STARTS_WITH,
        ENDS_WITH,
        MATCHES_REGEX,
    }
)

#: Operators that need population statistics from the store.
PERCENTILE_OPERATORS: Final[frozenset[Operator]] = frozenset({PERCENTILE_AT_MOST, PERCENTILE_AT_LEAST})
