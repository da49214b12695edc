"""Explain an evaluation: the rule tree with each node's verdict and the data it looked at.

    explain(rule, ctx, resolve_rule) -> Explanation(rule node, matched, children, ...)
        group      children explained (every one: no short-circuit), verdict combined
        leaf       verdict from the leaf's compiled predicate, so it always agrees with compile
        reference  one child: the referenced segment's rule, explained
        in_list    whether the user id is in the list (no value shown: the list is not a trait)

Leaves are compiled with `segmentd.engine.compiler.compile_rule`, so the operators' meaning
lives in one place (`segmentd.engine.matchers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from segmentd.engine.compiler import Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.events import describe_event
from segmentd.engine.matchers import percentile_key
from segmentd.engine.operators import PERCENTILE_OPERATORS
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    JsonValue,
    ListReference,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.split import bucket, bucket_percent
from segmentd.engine.traits import MISSING, lookup, split_path
from segmentd.errors import SegmentNotFound

#: Gives the current rule of a segment, by name.
RuleResolver = Callable[[str], Rule]

_MAX_SHOWN = 80  # characters of a value quoted in a detail sentence
_GROUP_VERDICTS: Final[dict[str, Callable[[list[bool]], bool]]] = {
    "all": all,
    "any": any,
    "none": lambda verdicts: not any(verdicts),
}


@dataclass(frozen=True)
class Explanation:
    """The evaluation of one rule node for one user (``segmentd.v1.Explanation``).

    Attributes:
        rule: the node; a group comes without its children, which are explained in
            ``children``, as in the proto message.
        matched: the node's verdict, equal to its compiled predicate's.
        children: a group's children's explanations, in order; for a segment reference,
            the referenced segment's explanation; empty for the other leaves.
        attribute_present: for a condition, whether the attribute was present and not null;
            always true for an event; for a split, whether a user id was known.
        actual_value: a condition's trait value (``None`` when missing), an event count,
            or a split's bucket as a percentage in ``[0, 100)``.
        detail: a short human sentence; its wording may change.
    """

    rule: Rule
    matched: bool
    children: tuple[Explanation, ...] = ()
    attribute_present: bool = False
    actual_value: JsonValue = None
    detail: str = ""


def explain(rule: Rule, ctx: EvaluationContext, resolve_rule: RuleResolver) -> Explanation:
    """Evaluate ``rule`` in ``ctx`` and explain every node's verdict.

    Args:
        rule: a validated rule.
        ctx: the user's data at one instant.
        resolve_rule: gives the current rule of a referenced segment.

    Raises:
        SegmentNotFound: as raised by ``resolve_rule``.
    """
    if isinstance(rule, Group):
        return _explain_group(rule, ctx, resolve_rule)
    if isinstance(rule, SegmentReference):
        child = explain(resolve_rule(rule.name), ctx, resolve_rule)
        member = "a member" if child.matched else "not a member"
        return Explanation(rule, child.matched, (child,), detail=f"{member} of segment {rule.name!r}")
    matched = compile_rule(rule, _no_segments)(ctx)
    if isinstance(rule, Condition):
        return _explain_condition(rule, ctx, matched)
    if isinstance(rule, EventCondition):
        return _explain_event(rule, ctx, matched)
    if isinstance(rule, ListReference):
        member = "in" if matched else "not in"
        return Explanation(rule, matched, detail=f"{member} user list {rule.name!r} {_verdict(matched)}")
    return _explain_split(rule, ctx, matched)


def _no_segments(name: str) -> Predicate:  # pragma: no cover - leaves reference no segment
    raise SegmentNotFound(name)


def _explain_group(group: Group, ctx: EvaluationContext, resolve_rule: RuleResolver) -> Explanation:
    children = tuple(explain(child, ctx, resolve_rule) for child in group.rules)
    verdicts = [child.matched for child in children]
    matched = _GROUP_VERDICTS[group.kind](verdicts)
    detail = f"{group.kind}: {sum(verdicts)} of {len(verdicts)} rules hold"
    return Explanation(Group(group.kind), matched, children, detail=detail)


def _explain_condition(condition: Condition, ctx: EvaluationContext, matched: bool) -> Explanation:
    value = lookup(ctx.traits, split_path(condition.attribute))
    seen = "is missing" if value is MISSING else f"= {_shown(value)}"
    test = (
        condition.operator if condition.value is None else f"{condition.operator} {_shown(condition.value)}"
    )
    if condition.ignore_case:
        test += " (ignoring case)"
    if condition.operator in PERCENTILE_OPERATORS:
        threshold = ctx.percentile_thresholds.get(percentile_key(condition))
        test += (
            " (no profile has a number there)" if threshold is None else f" (threshold {_shown(threshold)})"
        )
    detail = f"{condition.attribute} {seen}: {test} {_verdict(matched)}"
    if value is MISSING:
        return Explanation(condition, matched, detail=detail)
    return Explanation(condition, matched, attribute_present=True, actual_value=value, detail=detail)


def _explain_event(event: EventCondition, ctx: EvaluationContext, matched: bool) -> Explanation:
    count = ctx.event_counts.get((event.name, event.within_days), 0)
    window = f"in the last {event.within_days} days" if event.within_days else "ever"
    counted = f"{describe_event(event.name)} {window}: {count}"
    detail = f"{counted}; {event.operator} {event.count} {_verdict(matched)}"
    return Explanation(event, matched, attribute_present=True, actual_value=count, detail=detail)


def _explain_split(split: PercentageSplit, ctx: EvaluationContext, matched: bool) -> Explanation:
    span = f"[{split.from_percent:g}%, {split.to_percent:g}%)"
    if ctx.user_id is None:
        return Explanation(split, matched, detail=f"no user id: in no split; {span} {_verdict(matched)}")
    percent = bucket_percent(bucket(split.salt, ctx.user_id))
    detail = f"bucket {percent:.4f}% for salt {split.salt!r}: in {span} {_verdict(matched)}"
    return Explanation(split, matched, attribute_present=True, actual_value=percent, detail=detail)


def _verdict(matched: bool) -> str:
    return "holds" if matched else "does not hold"


def _shown(value: object) -> str:
    """Quote a JSON value for a sentence, shortened if long."""
    # Numbers arrive as doubles over the API: show 92.0 as the 92 the user wrote.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
