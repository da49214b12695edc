"""Compile a rule tree to one SQLAlchemy Core boolean expression over the ``profiles`` table.

    compile_rule_sql(rule, dialect=..., profiles=..., events=..., now=..., ...) -> expression
        Group            -> AND / OR / NOT (OR ...) of the children; empty: true, false, true
        Condition        -> CONDITION_BUILDERS_BY_OPERATOR[operator] on the trait at the path
        EventCondition   -> (SELECT COALESCE(SUM(count), 0) FROM events WHERE user_id = ...
                             AND name = ... [AND day >= ...]) <op> count
                            (``*``: no name filter; ``$created``: CASE on create_time)
        PercentageSplit  -> segmentd_bucket(salt, user_id) BETWEEN lo AND hi - 1
        SegmentReference -> the referenced segment's rule, inlined (compiled once per call)
        ListReference    -> user_id IN (SELECT user_id FROM user_list_members
                                        WHERE list_name = ...)       a semi-join on the members' key

The expression is true for the members and false or NULL for the others: NULL arises only
where a guarded trait is missing or of another type, and every negation (``none``, the
``NOT_*`` operators) makes its operand two-valued first, so NULL always means "not a member".
``select(profiles.c.user_id).where(expression)`` lists exactly the members;
``two_valued(expression)`` (``COALESCE(expression, false)``) gives a strict true/false, e.g.
to select the verdict as a column or to negate it. Guards stay plain ``AND`` terms so the
planner can estimate and index each of them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    FromClause,
    Text,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from segmentd.engine.events import ANY_EVENT, PROFILE_CREATED
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    ListReference,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.split import bucket_bounds
from segmentd.engine.times import datetime_to_us, day_start, event_window_start
from segmentd.engine.traits import split_path
from segmentd.errors import InvalidRule
from segmentd.sqlgen.conditions import CONDITION_BUILDERS_BY_OPERATOR, NEGATED_BUILDERS_BY_OPERATOR, Scope
from segmentd.sqlgen.functions import BUCKET
from segmentd.sqlgen.json_values import JsonValueSql, postgres_trait, sqlite_trait, two_valued

#: The databases the compiler writes SQL for (SQLAlchemy dialect names).
Dialect = Literal["postgresql", "sqlite"]

_TRAITS_BY_DIALECT: Final[Mapping[str, Callable[[FromClause, tuple[str, ...]], JsonValueSql]]] = {
    "postgresql": postgres_trait,
    "sqlite": sqlite_trait,
}

_COUNT_COMPARISONS: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "EQUALS": operator.eq,
    "NOT_EQUALS": operator.ne,
    "LESS_THAN": operator.lt,
    "LESS_THAN_OR_EQUALS": operator.le,
    "GREATER_THAN": operator.gt,
    "GREATER_THAN_OR_EQUALS": operator.ge,
}


def compile_rule_sql(  # noqa: PLR0913 - the signature is the contract the membership queries call
    rule: Rule,
    *,
    dialect: str,
    profiles: FromClause,
    events: FromClause,
    now: datetime,
    percentile_thresholds: Mapping[tuple[str, float], float | None],
    resolve_rule: Callable[[str], Rule],
    list_members: FromClause | None = None,
) -> ColumnElement[bool]:
    """Compile a validated rule into a boolean SQL expression over one ``profiles`` row.

    Use it as the WHERE clause of ``select(profiles.c.user_id)`` (or of a count). Event
    conditions become correlated subqueries on ``events``.

    Args:
        rule: the rule, already validated (``segmentd.engine.validation.validate_rule``).
        dialect: ``"postgresql"`` or ``"sqlite"``; the expression uses that database's JSON
            functions and the ``segmentd_*`` helper functions (``segmentd.sqlgen.functions``).
        profiles: the profiles table (or an alias of it): ``user_id``, ``traits``.
        events: the events table: ``user_id``, ``name``, ``day``, ``count``.
        now: the instant ``WITHIN_LAST_DAYS`` and event windows measure from (naive = UTC);
            bound as a parameter so SQL and Python see the same instant.
        percentile_thresholds: ``(attribute, percent) -> threshold`` for every
            ``PERCENTILE_*`` condition; missing or ``None`` makes the condition false.
        resolve_rule: gives the current rule of a referenced segment, by name.
        list_members: the user-list members table (``list_name``, ``user_id``), which
            ``in_list`` conditions read; required when the rule (or a segment it
            references) has one.

    Raises:
        ValueError: ``dialect`` is not supported, or ``list_members`` is missing.
        InvalidRule: a rule references itself, directly or not, or has no operator.
    """
    if dialect not in _TRAITS_BY_DIALECT:
        raise ValueError(f"unsupported dialect {dialect!r}; expected postgresql or sqlite")
    compilation = _Compilation(
        trait_at=_TRAITS_BY_DIALECT[dialect],
        profiles=profiles,
        events=events,
        now=now if now.tzinfo is not None else now.replace(tzinfo=UTC),
        scope=Scope(now_us=datetime_to_us(now), percentile_thresholds=percentile_thresholds),
        resolve_rule=resolve_rule,
        list_members=list_members,
    )
    return compilation.compile(rule)


@dataclass
class _Compilation:
    """One call's inputs, and the segments compiled so far (each is inlined, compiled once)."""

    trait_at: Callable[[FromClause, tuple[str, ...]], JsonValueSql]
    profiles: FromClause
    events: FromClause
    now: datetime
    scope: Scope
    resolve_rule: Callable[[str], Rule]
    list_members: FromClause | None
    segments: dict[str, ColumnElement[bool]] = field(default_factory=dict)
    expanding: list[str] = field(default_factory=list)

    def compile(self, rule: Rule) -> ColumnElement[bool]:
        if isinstance(rule, Group):
            return self._group(rule)
        if isinstance(rule, Condition):
            return self._condition(rule)
        if isinstance(rule, EventCondition):
            return self._event(rule)
        if isinstance(rule, SegmentReference):
            return self._segment(rule.name)
        if isinstance(rule, ListReference):
            return self._in_list(rule.name)
        return self._split(rule)

    def _group(self, group: Group) -> ColumnElement[bool]:
        children = [self.compile(child) for child in group.rules]
        if group.kind == "all":
            return and_(*children) if children else true()
        if group.kind == "any":
            return or_(*children) if children else false()
        # none: NOT c1 AND NOT c2 ..., separate terms the planner can estimate and order.
        negated = [self._negated(child, sql) for child, sql in zip(group.rules, children, strict=True)]
        return and_(*negated) if negated else true()

    def _negated(self, rule: Rule, compiled: ColumnElement[bool]) -> ColumnElement[bool]:
        """Two-valued "``rule`` does not hold"; ``compiled`` is ``rule``'s expression."""
        if isinstance(rule, Condition) and rule.operator in NEGATED_BUILDERS_BY_OPERATOR:
            value = self.trait_at(self.profiles, split_path(rule.attribute))
            return NEGATED_BUILDERS_BY_OPERATOR[rule.operator](rule, value, self.scope)
        # A child may be NULL (= false); NOT needs a two-valued operand.
        return not_(two_valued(compiled))

    def _condition(self, condition: Condition) -> ColumnElement[bool]:
        if condition.operator not in CONDITION_BUILDERS_BY_OPERATOR:
            raise InvalidRule(
                "condition.operator", f"a condition needs an operator; got {condition.operator!r}"
            )
        builder = CONDITION_BUILDERS_BY_OPERATOR[condition.operator]
        value = self.trait_at(self.profiles, split_path(condition.attribute))
        return builder(condition, value, self.scope)

    def _event(self, event: EventCondition) -> ColumnElement[bool]:
        compare = _COUNT_COMPARISONS.get(event.operator)
        if compare is None:
            raise InvalidRule("event.operator", f"an event count needs a comparison; got {event.operator!r}")
        first_day = event_window_start(self.now, event.within_days)
        if event.name == PROFILE_CREATED:
            total = self._created(first_day)
        else:
            total = self._count(event.name, first_day)
        return cast("ColumnElement[bool]", compare(total, literal(event.count, BigInteger)))

    def _count(self, name: str, first_day: date | None) -> ColumnElement[int]:
        events = self.events
        filters = [events.c.user_id == self.profiles.c.user_id]
        if name != ANY_EVENT:
            filters.append(events.c.name == literal(name, Text))
        if first_day is not None:
            filters.append(events.c.day >= first_day)
        return (
            select(func.coalesce(func.sum(events.c.count), 0, type_=BigInteger))
            .where(*filters)
            .correlate(self.profiles)
            .scalar_subquery()
        )

    def _created(self, first_day: date | None) -> ColumnElement[int]:
        if first_day is None:
            return literal(1, BigInteger)
        since = literal(day_start(first_day), DateTime(timezone=True))
        return case((self.profiles.c.create_time >= since, 1), else_=0)

    def _segment(self, name: str) -> ColumnElement[bool]:
        if name in self.expanding:
            cycle = " -> ".join([*self.expanding, name])
            raise InvalidRule("segment.name", f"segment references form a cycle: {cycle}")
        if name not in self.segments:
            self.expanding.append(name)
            try:
                self.segments[name] = self.compile(self.resolve_rule(name))
            finally:
                self.expanding.pop()
        return self.segments[name]

    def _in_list(self, name: str) -> ColumnElement[bool]:
        members = self.list_members
        if members is None:
            raise ValueError("an in_list condition needs the list_members table")
        # Uncorrelated: the planner hashes the list's members once (or probes the members'
        # primary key (list_name, user_id) per profile). Never NULL: user ids are not null.
        # The name is a constant in the SQL text, not a parameter, so that even a generic plan
        # is pruned to this list's partition and locks no other list's tables.
        listed = select(members.c.user_id).where(
            members.c.list_name == literal(name, Text, literal_execute=True)
        )
        return self.profiles.c.user_id.in_(listed)

    def _split(self, split: PercentageSplit) -> ColumnElement[bool]:
        low, high = bucket_bounds(split.from_percent, split.to_percent)
        if high <= low:
            return false()
        bucket = getattr(func, BUCKET)(literal(split.salt, Text), self.profiles.c.user_id, type_=BigInteger)
        return cast(
            "ColumnElement[bool]", bucket.between(literal(low, BigInteger), literal(high - 1, BigInteger))
        )
