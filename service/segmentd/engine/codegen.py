"""Generate one segment's rule as Python source: a fragment of the evaluation function.

    generate_segment(rule, sid) -> SegmentCode
        lines         one parenthesised expression, one line per leaf, the rule path in a comment
        bindings      the constants it reads, bound by name (c<sid>_<n>), never pasted in the source
        paths, events, thresholds, references, lists
                      what it reads, as placeholders ({p0}, {e0}, {t0}, {r0}) that
                      `segmentd.engine.program` replaces with the locals it hoists

A fragment depends on nothing but its own rule, so an unchanged segment's fragment is reused
as it is when the set is recompiled. Each group's children are ordered cheapest first (by
the cost model of `segmentd.engine.inline`): evaluation has no side effects, so the order
changes the time spent, never the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from segmentd.engine import operators as op
from segmentd.engine.inline import (
    EXPRESSIONS_BY_OPERATOR,
    count_expression,
    percentile_expression,
)
from segmentd.engine.matchers import percentile_key
from segmentd.engine.operators import Operator
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
from segmentd.engine.traits import split_path

INDENT = "    "
_JOINERS = {"all": "and", "any": "or", "none": "or"}
_EMPTY = {"all": "True", "any": "False", "none": "True"}
_SPLIT_COST = 40  # an md5 of salt and user id
_RELATIVE_TIME_OPERATORS = frozenset({op.WITHIN_LAST_DAYS, op.NOT_WITHIN_LAST_DAYS})


@dataclass(frozen=True, slots=True)
class SegmentCode:
    """The generated code of one segment's rule (see the module docstring).

    Attributes:
        rule: the rule it was generated from.
        sid: the segment's number, unique within a compiled set; its constants are named after it.
        lines: the rule as one expression over the placeholders, one line per leaf.
        bindings: constant name -> value, for the namespace of the generated code.
        paths: the attribute paths read, in the order of their placeholders ``{p0}, {p1}...``.
        events: the ``(event name, within_days)`` counts read (``{e0}...``).
        thresholds: the ``(attribute, percent)`` percentile thresholds read (``{t0}...``).
        references: the segments referenced (``{r0}...``), by name.
        lists: the user lists tested (``in_list``), by name; read from ``ctx.lists``.
        cost: the rule's relative cost, by the cost model.
        context_fields: the other context fields read (``now_us``, ``user_id``), as locals.
    """

    rule: Rule
    sid: int
    lines: tuple[str, ...]
    bindings: Mapping[str, object]
    paths: tuple[tuple[str, ...], ...] = ()
    events: tuple[tuple[str, int], ...] = ()
    thresholds: tuple[tuple[str, float], ...] = ()
    references: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    cost: int = 0
    context_fields: frozenset[str] = frozenset()


class _Node(NamedTuple):
    lines: tuple[str, ...]
    cost: int


@dataclass
class _SegmentGenerator:
    """Walks one rule tree, one visit method per node type, collecting names as it goes."""

    sid: int
    bindings: dict[str, object] = field(default_factory=dict)
    slots: dict[tuple[str, object], str] = field(default_factory=dict)
    paths: list[tuple[str, ...]] = field(default_factory=list)
    events: list[tuple[str, int]] = field(default_factory=list)
    thresholds: list[tuple[str, float]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    context_fields: set[str] = field(default_factory=set)

    def bind(self, value: object) -> str:
        name = f"c{self.sid}_{len(self.bindings)}"
        self.bindings[name] = value
        return name

    def slot(self, kind: str, key: object, keys: list[object]) -> str:
        """Return the placeholder of an input (``{p0}``...), the same one for the same input."""
        placeholder = self.slots.get((kind, key))
        if placeholder is None:
            placeholder = self.slots[(kind, key)] = "{%s%d}" % (kind, len(keys))  # noqa: UP031
            keys.append(key)
        return placeholder

    def visit(self, rule: Rule, path: str) -> _Node:
        if isinstance(rule, Group):
            return self.visit_group(rule, path)
        if isinstance(rule, Condition):
            return self.visit_condition(rule, f"{path}.condition")
        if isinstance(rule, EventCondition):
            return self.visit_event(rule, f"{path}.event")
        if isinstance(rule, SegmentReference):
            reference = self.slot("r", rule.name, cast("list[object]", self.references))
            return _Node((f"{reference}  # {path}.segment",), 1)
        if isinstance(rule, ListReference):
            return self.visit_list(rule, f"{path}.in_list")
        return self.visit_split(rule, f"{path}.split")

    def visit_group(self, group: Group, path: str) -> _Node:
        path = f"{path}.{group.kind}"
        if not group.rules:
            return _Node((f"{_EMPTY[group.kind]}  # {path}: empty",), 0)
        children = [self.visit(child, f"{path}.rules[{i}]") for i, child in enumerate(group.rules)]
        children.sort(key=lambda child: child.cost)  # stable: equal costs keep the rule's order
        lines = [f"{'not ' if group.kind == 'none' else ''}(  # {path}"]
        for i, child in enumerate(children):
            joiner = "" if i == 0 else f"{_JOINERS[group.kind]} "
            lines.append(f"{INDENT}{joiner}{child.lines[0]}")
            lines.extend(f"{INDENT}{line}" for line in child.lines[1:])
        lines.append(")")
        return _Node(tuple(lines), 1 + sum(child.cost for child in children))

    def visit_condition(self, condition: Condition, path: str) -> _Node:
        value = self.slot("p", split_path(condition.attribute), cast("list[object]", self.paths))
        operator = cast("Operator", condition.operator)
        if operator in op.PERCENTILE_OPERATORS:
            key = percentile_key(condition)
            threshold = self.slot("t", key, cast("list[object]", self.thresholds))
            text, cost = percentile_expression(condition, value, threshold)
        else:
            text, cost = EXPRESSIONS_BY_OPERATOR[operator](condition, value, self.bind)
            if operator in _RELATIVE_TIME_OPERATORS:
                self.context_fields.add("now_us")
        return _Node((f"({text})  # {path}: {operator}",), cost)

    def visit_event(self, event: EventCondition, path: str) -> _Node:
        count = self.slot("e", (event.name, event.within_days), cast("list[object]", self.events))
        text = count_expression(event.operator, count, self.bind(event.count))
        return _Node((f"({text})  # {path}: {event.operator}",), 2)

    def visit_list(self, reference: ListReference, path: str) -> _Node:
        self.context_fields.add("lists")
        if reference.name not in self.lists:
            self.lists.append(reference.name)
        # A set lookup of a name bound as a constant: as cheap as a comparison.
        return _Node((f"({self.bind(reference.name)} in lists)  # {path}",), 2)

    def visit_split(self, split: PercentageSplit, path: str) -> _Node:
        self.context_fields.add("user_id")
        low, high = (self.bind(bound) for bound in bucket_bounds(split.from_percent, split.to_percent))
        text = f"user_id is not None and {low} <= bucket({self.bind(split.salt)}, user_id) < {high}"
        return _Node((f"({text})  # {path}",), _SPLIT_COST)


def generate_segment(rule: Rule, sid: int) -> SegmentCode:
    """Generate the code of a validated rule; ``sid`` names its constants (``c<sid>_<n>``)."""
    generator = _SegmentGenerator(sid)
    node = generator.visit(rule, "rule")
    return SegmentCode(
        rule=rule,
        sid=sid,
        lines=node.lines,
        bindings=generator.bindings,
        paths=tuple(generator.paths),
        events=tuple(generator.events),
        thresholds=tuple(generator.thresholds),
        references=tuple(generator.references),
        lists=tuple(generator.lists),
        cost=node.cost,
        context_fields=frozenset(generator.context_fields),
    )
