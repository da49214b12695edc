"""Compile rule trees to Python predicates, once, and evaluate a set of segments.

    compile_rule(rule, resolve_segment) -> Predicate            closures over closures:
        Group            -> loop over the children's predicates
        Condition        -> matcher(lookup(ctx.traits, path), ctx)
        EventCondition   -> compare(ctx.event_counts[(name, within_days)], count)
        PercentageSplit  -> lo <= bucket(salt, ctx.user_id) < hi
        SegmentReference -> resolve_segment(name)(ctx), resolved at call time

    CompiledSegments(rules by segment name)   compiles every segment, evaluates some or all,
                                              and says which inputs the store must prefetch

Nothing walks the tree at evaluation time: each call runs the prebuilt closures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Final, cast

from segmentd.engine import operators as op
from segmentd.engine.context import EvaluationContext
from segmentd.engine.matchers import COMPARISONS_BY_OPERATOR, matcher_for, percentile_key
from segmentd.engine.operators import Operator
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
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

# The verdicts of the segments evaluated so far in the current `CompiledSegments` call, so a
# segment referenced by several others is evaluated once. A context variable, not an
# attribute, keeps concurrent calls (threads, tasks) apart.
_Inputs = tuple[frozenset[tuple[str, int]], frozenset[tuple[str, float]]]

_VERDICTS: ContextVar[dict[str, bool] | None] = ContextVar("segment_verdicts", default=None)


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
    """The current rules of a set of segments, each compiled once.

    Segment references resolve within the set. The rules are assumed validated and
    acyclic, as the store guarantees when segments are written; a reference to a segment
    outside the set raises ``SegmentNotFound`` when it is evaluated.
    """

    def __init__(self, rules: Mapping[str, Rule]) -> None:
        """Compile every segment of ``rules`` (segment name -> current rule)."""
        self._rules: Final = dict(rules)
        self._names: Final = tuple(sorted(self._rules))
        self._predicates: Final = {
            name: self._memoised(name, compile_rule(rule, self.resolve)) for name, rule in self._rules.items()
        }
        # Filled on first use: the set is immutable, and the store asks on every evaluation.
        self._inputs_by_name: Final[dict[str, _Inputs]] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the segments in the set, sorted."""
        return self._names

    def resolve(self, name: str) -> Predicate:
        """Return the predicate of segment ``name`` (a `SegmentResolver` for `compile_rule`).

        Raises:
            SegmentNotFound: no segment of the set has this name.
        """
        try:
            return self._predicates[name]
        except KeyError:
            raise SegmentNotFound(f"segment {name!r} does not exist") from None

    def evaluate(self, ctx: EvaluationContext, names: Iterable[str] | None = None) -> list[str]:
        """Return the sorted names of the segments among ``names`` (default: all) that hold.

        Raises:
            SegmentNotFound: a name is not a segment of the set.
        """
        selected = self._names if names is None else sorted(set(names))
        predicates = [(name, self.resolve(name)) for name in selected]
        token = _VERDICTS.set({})
        try:
            return [name for name, predicate in predicates if predicate(ctx)]
        finally:
            _VERDICTS.reset(token)

    def matches(self, name: str, ctx: EvaluationContext) -> bool:
        """Tell whether segment ``name`` holds in ``ctx``.

        Raises:
            SegmentNotFound: ``name`` is not a segment of the set.
        """
        return bool(self.evaluate(ctx, [name]))

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

    def _selected(self, names: Iterable[str] | None) -> Iterable[str]:
        return self._names if names is None else set(names)

    def _inputs(self, name: str) -> _Inputs:
        """Return the events and percentiles segment ``name`` reads, following references."""
        inputs = self._inputs_by_name.get(name)
        if inputs is None:
            reached = self._closure(name)
            inputs = self._inputs_by_name[name] = (
                frozenset().union(*(_direct_events(self._rules[other]) for other in reached)),
                frozenset().union(*(_direct_percentiles(self._rules[other]) for other in reached)),
            )
        return inputs

    def _closure(self, name: str) -> set[str]:
        """Return ``name`` and every segment it references, transitively."""
        pending, reached = [name], set()
        while pending:
            current = pending.pop()
            if current in reached:
                continue
            if current not in self._rules:
                raise SegmentNotFound(f"segment {current!r} does not exist")
            reached.add(current)
            pending.extend(_references(self._rules[current]))
        return reached

    @staticmethod
    def _memoised(name: str, predicate: Predicate) -> Predicate:
        def member(ctx: EvaluationContext) -> bool:
            verdicts = _VERDICTS.get()
            if verdicts is None:  # called outside evaluate(), e.g. through resolve()
                return predicate(ctx)
            verdict = verdicts.get(name)
            if verdict is None:
                verdict = verdicts[name] = predicate(ctx)
            return verdict

        return member


def _leaves(rule: Rule) -> Iterator[Rule]:
    """Yield the leaves of ``rule`` (its nodes that are not groups)."""
    pending = [rule]
    while pending:
        node = pending.pop()
        if isinstance(node, Group):
            pending.extend(node.rules)
        else:
            yield node


def _references(rule: Rule) -> Iterator[str]:
    return (leaf.name for leaf in _leaves(rule) if isinstance(leaf, SegmentReference))


def _direct_events(rule: Rule) -> frozenset[tuple[str, int]]:
    return frozenset(
        (leaf.name, leaf.within_days) for leaf in _leaves(rule) if isinstance(leaf, EventCondition)
    )


def _direct_percentiles(rule: Rule) -> frozenset[tuple[str, float]]:
    return frozenset(
        percentile_key(leaf)
        for leaf in _leaves(rule)
        if isinstance(leaf, Condition) and leaf.operator in op.PERCENTILE_OPERATORS
    )
