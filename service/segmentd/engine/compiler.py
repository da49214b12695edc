"""Compile rule trees to Python predicates, once, and evaluate a set of segments.

    compile_rule(rule, resolve_segment) -> Predicate            the reference: closures over closures

        Group            -> loop over the children's predicates
        Condition        -> matcher(lookup(ctx.traits, path), ctx)
        EventCondition   -> compare(ctx.event_counts[(name, within_days)], count)
        PercentageSplit  -> lo <= bucket(salt, ctx.user_id) < hi
        SegmentReference -> resolve_segment(name)(ctx), resolved at call time
        ListReference    -> name in ctx.lists

    CompiledSegments(rules by segment name, previous=None)
        generates one Python function for the whole set (`segmentd.engine.codegen`,
        `segmentd.engine.program`), and one per subset asked for; evaluates some or all;
        says which inputs the store must prefetch; reuses the generated code of the segments
        that did not change since ``previous``

Nothing walks the tree at evaluation time. `compile_rule` is what the generated code must
agree with (a property test checks it on random rule trees); `explain` uses it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Final, cast

from segmentd.engine.codegen import SegmentCode, generate_segment
from segmentd.engine.context import EvaluationContext
from segmentd.engine.matchers import COMPARISONS_BY_OPERATOR, matcher_for
from segmentd.engine.operators import Operator
from segmentd.engine.program import Program, ReferenceCycle, build_program
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    ListReference,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.split import bucket, bucket_bounds
from segmentd.engine.traits import lookup, split_path
from segmentd.errors import SegmentNotFound

#: A compiled rule: does it hold in this context?
Predicate = Callable[[EvaluationContext], bool]
#: Gives the predicate of a segment, by name (raising ``SegmentNotFound`` for an unknown one).
SegmentResolver = Callable[[str], Predicate]

_Inputs = tuple[frozenset[tuple[str, int]], frozenset[tuple[str, float]], frozenset[str]]
#: How many subsets of the set keep their generated function (the callers ask for a few).
MAX_SUBSET_PROGRAMS: Final = 256


def compile_rule(rule: Rule, resolve_segment: SegmentResolver) -> Predicate:
    """Compile a validated rule into a predicate, building every closure once.

    Args:
        rule: the rule, already validated.
        resolve_segment: gives a referenced segment's predicate; called at evaluation time,
            so segments may be compiled in any order.
    """
    if isinstance(rule, Group):
        return _compile_group(rule, resolve_segment)
    if isinstance(rule, Condition):
        return _compile_condition(rule)
    if isinstance(rule, EventCondition):
        return _compile_event(rule)
    if isinstance(rule, SegmentReference):
        name = rule.name
        return lambda ctx: resolve_segment(name)(ctx)
    if isinstance(rule, ListReference):
        list_name = rule.name
        return lambda ctx: list_name in ctx.lists
    return _compile_split(rule)


def _compile_group(group: Group, resolve_segment: SegmentResolver) -> Predicate:
    children = tuple(compile_rule(child, resolve_segment) for child in group.rules)

    def holds_for_all(ctx: EvaluationContext) -> bool:
        return all(child(ctx) for child in children)

    def holds_for_any(ctx: EvaluationContext) -> bool:
        return any(child(ctx) for child in children)

    def holds_for_none(ctx: EvaluationContext) -> bool:
        return not any(child(ctx) for child in children)

    return {"all": holds_for_all, "any": holds_for_any, "none": holds_for_none}[group.kind]


def _compile_condition(condition: Condition) -> Predicate:
    path = split_path(condition.attribute)
    matcher = matcher_for(condition)
    return lambda ctx: matcher(lookup(ctx.traits, path), ctx)


def _compile_event(event: EventCondition) -> Predicate:
    key = (event.name, event.within_days)
    compare = COMPARISONS_BY_OPERATOR[cast("Operator", event.operator)]
    count = event.count
    return lambda ctx: bool(compare(ctx.event_counts.get(key, 0), count))


def _compile_split(split: PercentageSplit) -> Predicate:
    low, high = bucket_bounds(split.from_percent, split.to_percent)
    salt = split.salt
    return lambda ctx: ctx.user_id is not None and low <= bucket(salt, ctx.user_id) < high


class CompiledSegments:
    """The current rules of a set of segments, generated once into Python functions.

    Segment references resolve within the set. The rules are assumed validated and acyclic,
    as the store guarantees when segments are written; evaluating segments that reach a
    segment outside the set raises ``SegmentNotFound`` (whatever the other conditions say),
    and segments that reach a reference cycle raise `ReferenceCycle`.
    """

    def __init__(self, rules: Mapping[str, Rule], previous: CompiledSegments | None = None) -> None:
        """Compile every segment of ``rules`` (segment name -> current rule).

        Args:
            rules: segment name -> current rule, validated.
            previous: an earlier compilation; the generated code of every segment whose rule
                is unchanged (equal, with values of the same types) is reused, not generated.
        """
        self._rules: Final = dict(rules)
        self._names: Final = tuple(sorted(self._rules))
        self._codes: Final[dict[str, SegmentCode]] = {}
        self._next_sid: int = previous._next_sid if previous is not None else 0
        earlier = previous._codes if previous is not None else {}
        regenerated = []
        for name in self._names:
            rule, code = self._rules[name], earlier.get(name)
            if code is None or not _same_rule(code.rule, rule):
                code, self._next_sid = generate_segment(rule, self._next_sid), self._next_sid + 1
                regenerated.append(name)
            self._codes[name] = code
        self._regenerated: Final = tuple(regenerated)
        self._whole: Program | None = None
        self._programs: Final[dict[frozenset[str], Program]] = {}
        self._predicates: Final[dict[str, Predicate]] = {}
        # Filled on first use: the set is immutable, and the store asks on every evaluation.
        self._inputs_by_name: Final[dict[str, _Inputs]] = {}
        with contextlib.suppress(SegmentNotFound, ReferenceCycle):  # raised again when evaluated
            self._program(None)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the segments in the set, sorted."""
        return self._names

    @property
    def regenerated(self) -> tuple[str, ...]:
        """The segments whose code this compilation generated (the others came from ``previous``)."""
        return self._regenerated

    @property
    def source(self) -> str:
        """The generated source of the function that evaluates the whole set, for debugging.

        Raises:
            SegmentNotFound: a segment references one outside the set.
            ReferenceCycle: segments reference each other in a cycle.
        """
        return self._program(None).source

    def resolve(self, name: str) -> Predicate:
        """Return the predicate of segment ``name`` (a `SegmentResolver` for `compile_rule`).

        Raises:
            SegmentNotFound: no segment of the set has this name.
        """
        predicate = self._predicates.get(name)
        if predicate is None:
            if name not in self._codes:
                raise SegmentNotFound(f"segment {name!r} does not exist")
            key = frozenset((name,))
            predicate = self._predicates[name] = lambda ctx: bool(self._program(key).function(ctx))
        return predicate

    def evaluate(self, ctx: EvaluationContext, names: Iterable[str] | None = None) -> list[str]:
        """Return the sorted names of the segments among ``names`` (default: all) that hold.

        Raises:
            SegmentNotFound: a name is not a segment of the set, or one they reference is not.
            ReferenceCycle: the segments reach a reference cycle.
        """
        if names is None:
            program = self._whole or self._program(None)
        else:
            key = frozenset(names)
            program = self._programs.get(key) or self._program(key)
        return program.function(ctx)

    def matches(self, name: str, ctx: EvaluationContext) -> bool:
        """Tell whether segment ``name`` holds in ``ctx``.

        Raises:
            SegmentNotFound: ``name`` is not a segment of the set.
        """
        return bool(self.evaluate(ctx, (name,)))

    def required_events(self, names: Iterable[str] | None = None) -> frozenset[tuple[str, int]]:
        """Return the ``(event name, within_days)`` counts the segments read, references included.

        Raises:
            SegmentNotFound: a name is not a segment of the set.
        """
        return frozenset().union(*(self._inputs(name)[0] for name in self._selected(names)))

    def required_percentiles(self, names: Iterable[str] | None = None) -> frozenset[tuple[str, float]]:
        """Return the ``(attribute, percent)`` thresholds the segments read, references included.

        Raises:
            SegmentNotFound: a name is not a segment of the set.
        """
        return frozenset().union(*(self._inputs(name)[1] for name in self._selected(names)))

    def required_lists(self, names: Iterable[str] | None = None) -> frozenset[str]:
        """Return the names of the user lists the segments test (``in_list``), references included.

        Raises:
            SegmentNotFound: a name is not a segment of the set.
        """
        return frozenset().union(*(self._inputs(name)[2] for name in self._selected(names)))

    def _program(self, key: frozenset[str] | None) -> Program:
        """Return the generated function of a subset (``None``: the whole set), generating it once."""
        if key is None:
            if self._whole is None:
                self._whole = build_program(self._codes, self._names)
            return self._whole
        program = self._programs.get(key)
        if program is None:
            program = build_program(self._codes, key)
            if len(self._programs) >= MAX_SUBSET_PROGRAMS:  # forget the oldest subset
                self._programs.pop(next(iter(self._programs)), None)
            self._programs[key] = program
        return program

    def _selected(self, names: Iterable[str] | None) -> Iterable[str]:
        return self._names if names is None else set(names)

    def _inputs(self, name: str) -> _Inputs:
        """Return the events, percentiles and lists segment ``name`` reads, following references."""
        inputs = self._inputs_by_name.get(name)
        if inputs is None:
            reached = [self._codes[other] for other in self._closure(name)]
            inputs = self._inputs_by_name[name] = (
                frozenset(event for code in reached for event in code.events),
                frozenset(threshold for code in reached for threshold in code.thresholds),
                frozenset(list_name for code in reached for list_name in code.lists),
            )
        return inputs

    def _closure(self, name: str) -> set[str]:
        """Return ``name`` and every segment it references, transitively."""
        pending, reached = [name], set()
        while pending:
            current = pending.pop()
            if current in reached:
                continue
            if current not in self._codes:
                raise SegmentNotFound(f"segment {current!r} does not exist")
            reached.add(current)
            pending.extend(self._codes[current].references)
        return reached


def _same_rule(old: Rule, new: Rule) -> bool:
    """Tell whether a rule is unchanged: equal, and with values of the same types.

    ``==`` alone would take ``EQUALS 1`` for ``EQUALS true`` (``1 == True``), which are
    different conditions; their representations differ.
    """
    return old == new and repr(old) == repr(new)
