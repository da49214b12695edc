"""Rule tree types: the domain form of ``segmentd.v1.Rule``.

    Rule = Group(all | any | none, rules)      boolean combination of child rules
         | Condition(attribute, operator, value, ignore_case)   test on one trait
         | EventCondition(name, operator, count, within_days)   behavioural count
         | SegmentReference(name)                               another segment's verdict
         | PercentageSplit(salt, from_percent, to_percent)      deterministic user bucket
         | ListReference(name)                                  the user id is in a user list

Instances are immutable; `Condition.value` holds the JSON value as decoded (lists stay lists).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from segmentd.engine.operators import Operator

#: A JSON value as decoded by ``json.loads`` or ``google.protobuf.Struct``.
JsonValue: TypeAlias = "None | bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue]"

GroupKind = Literal["all", "any", "none"]
GROUP_KINDS: tuple[GroupKind, ...] = ("all", "any", "none")


@dataclass(frozen=True, slots=True)
class Group:
    """``all`` (every child holds), ``any`` (one holds) or ``none`` (no child holds)."""

    kind: GroupKind
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """A test on the trait at the dotted path ``attribute``."""

    attribute: str
    operator: Operator | Literal["OPERATOR_UNSPECIFIED"]
    value: JsonValue = None
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class EventCondition:
    """The user's count of event ``name`` in the last ``within_days`` days (0 = ever)."""

    name: str
    operator: Operator | Literal["OPERATOR_UNSPECIFIED"]
    count: int
    within_days: int = 0


@dataclass(frozen=True, slots=True)
class SegmentReference:
    """Holds when the user is a member of the segment called ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class PercentageSplit:
    """Holds when the user's bucket for ``salt`` lies in ``[from_percent, to_percent)``."""

    salt: str
    from_percent: float
    to_percent: float


@dataclass(frozen=True, slots=True)
class ListReference:
    """Holds when the user's id is a member of the user list called ``name`` (``in_list``)."""

    name: str


Rule: TypeAlias = Group | Condition | EventCondition | SegmentReference | PercentageSplit | ListReference


def referenced_segments(rule: Rule) -> frozenset[str]:
    """Return the names of the segments ``rule`` references directly."""
    if isinstance(rule, SegmentReference):
        return frozenset({rule.name})
    if isinstance(rule, Group):
        return frozenset().union(*(referenced_segments(child) for child in rule.rules))
    return frozenset()
