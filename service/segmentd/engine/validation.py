"""Validation of a rule tree before it is stored or evaluated.

    validate_rule(rule)
      1. size: node count <= max_nodes, depth <= max_depth     (one bounded walk, before anything else)
      2. every node: its fields, and a condition's value against its operator's shape
         (VALUE_CHECKS_BY_OPERATOR), raising InvalidRule(field path, reason)

Field paths follow the JSON form with the proto field names, e.g.
``rule.all.rules[2].condition.value`` or ``rule.split.to_percent``. Which segments a reference
may name (existence, cycles), and which user lists an ``in_list`` may name, is the store's to
check: it needs the other segments and the lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from typing import Final

from segmentd.engine import operators as op
from segmentd.engine.events import PSEUDO_EVENTS, RESERVED_PREFIX, is_reserved_event_name
from segmentd.engine.limits import DEFAULT_LIMITS, RuleLimits
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    ListReference,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.engine.traits import is_finite_number
from segmentd.engine.values import MAX_DAYS, VALUE_CHECKS_BY_OPERATOR
from segmentd.errors import InvalidRule

#: The form of a segment name (for PostgreSQL ``~`` and Python ``re.fullmatch`` alike).
SEGMENT_NAME_PATTERN: Final = "^[a-z0-9-]{1,63}$"
_SEGMENT_NAME: Final = re.compile(SEGMENT_NAME_PATTERN)
#: The largest event count a rule may compare with (the proto field is an int32).
MAX_EVENT_COUNT: Final = 2**31 - 1


def is_valid_segment_name(name: str) -> bool:
    """Tell whether ``name`` is a valid segment name: 1-63 of ``a-z``, ``0-9`` and ``-``."""
    return _SEGMENT_NAME.fullmatch(name) is not None


def validate_rule(rule: Rule, limits: RuleLimits = DEFAULT_LIMITS, path: str = "rule") -> None:
    """Check that ``rule`` is well-formed and within ``limits``.

    Args:
        rule: the rule tree to check.
        limits: the bounds on its size, regexes, lists and attribute paths.
        path: the field path of ``rule`` itself, prefixed to the fields named in errors.

    Raises:
        InvalidRule: naming the first offending field found.
    """
    _check_size(rule, limits, path)
    for node, node_path in _nodes(rule, path):
        if isinstance(node, Condition):
            _check_condition(node, limits, f"{node_path}.condition")
        elif isinstance(node, EventCondition):
            _check_event(node, f"{node_path}.event")
        elif isinstance(node, SegmentReference):
            _check_reference(node, f"{node_path}.segment")
        elif isinstance(node, PercentageSplit):
            _check_split(node, f"{node_path}.split")
        elif isinstance(node, ListReference):
            _check_list_reference(node, f"{node_path}.in_list")


def _nodes(rule: Rule, path: str) -> Iterator[tuple[Rule, str]]:
    """Yield every node with its field path, in document order, without recursion."""
    pending = [(rule, path)]
    while pending:
        node, node_path = pending.pop()
        yield node, node_path
        if isinstance(node, Group):
            prefix = f"{node_path}.{node.kind}.rules"
            pending.extend((child, f"{prefix}[{i}]") for i, child in reversed(list(enumerate(node.rules))))


def _check_size(rule: Rule, limits: RuleLimits, path: str) -> None:
    """Refuse a tree over the node or depth limit, looking at no more than max_nodes + 1 nodes."""
    pending = [(rule, 1, path)]
    count, deepest, deepest_path = 0, 0, path
    while pending:
        node, depth, node_path = pending.pop()
        count += 1
        if count > limits.max_nodes:
            raise InvalidRule(path, f"a rule may have at most {limits.max_nodes} nodes")
        if depth > deepest:
            deepest, deepest_path = depth, node_path
        if isinstance(node, Group):
            # A group wider than the node limit fails anyway: don't queue all its children.
            children = list(islice(enumerate(node.rules), limits.max_nodes))
            prefix = f"{node_path}.{node.kind}.rules"
            pending.extend((child, depth + 1, f"{prefix}[{i}]") for i, child in reversed(children))
    if deepest > limits.max_depth:
        raise InvalidRule(
            deepest_path, f"a rule may be at most {limits.max_depth} levels deep (this node is at {deepest})"
        )


def _check_condition(condition: Condition, limits: RuleLimits, path: str) -> None:
    _check_attribute(condition.attribute, limits, f"{path}.attribute")
    operator = condition.operator
    if operator == "OPERATOR_UNSPECIFIED" or operator not in VALUE_CHECKS_BY_OPERATOR:
        raise InvalidRule(f"{path}.operator", f"a condition needs an operator; got {operator!r}")
    if condition.ignore_case and operator not in op.CASE_FOLDING_OPERATORS:
        raise InvalidRule(
            f"{path}.ignore_case", f"{operator} does not compare strings: ignore_case is not allowed"
        )
    VALUE_CHECKS_BY_OPERATOR[operator](condition, limits, f"{path}.value")


def _check_attribute(attribute: str, limits: RuleLimits, path: str) -> None:
    if not attribute:
        raise InvalidRule(path, "an attribute path is required")
    if len(attribute) > limits.max_attribute_length:
        raise InvalidRule(path, f"an attribute path has at most {limits.max_attribute_length} characters")
    if "" in attribute.split("."):
        raise InvalidRule(path, f"empty step in attribute path {attribute!r}")


def _check_event(event: EventCondition, path: str) -> None:
    if not event.name:
        raise InvalidRule(f"{path}.name", "an event name is required")
    if is_reserved_event_name(event.name) and event.name not in PSEUDO_EVENTS:
        raise InvalidRule(
            f"{path}.name",
            f"names starting with {RESERVED_PREFIX!r} are pseudo-events; "
            f"known: {', '.join(sorted(PSEUDO_EVENTS))}",
        )
    if event.operator not in op.COUNT_OPERATORS:
        raise InvalidRule(
            f"{path}.operator",
            f"an event count compares with {', '.join(sorted(op.COUNT_OPERATORS))}; got {event.operator!r}",
        )
    if not 0 <= event.count <= MAX_EVENT_COUNT:
        raise InvalidRule(f"{path}.count", f"must be between 0 and {MAX_EVENT_COUNT}; got {event.count}")
    if not 0 <= event.within_days <= MAX_DAYS:
        raise InvalidRule(
            f"{path}.within_days", f"must be between 0 (ever) and {MAX_DAYS}; got {event.within_days}"
        )


def _check_reference(reference: SegmentReference, path: str) -> None:
    if not is_valid_segment_name(reference.name):
        raise InvalidRule(f"{path}.name", f"not a segment name (1-63 of a-z, 0-9 and -): {reference.name!r}")


def _check_list_reference(reference: ListReference, path: str) -> None:
    # User lists are named like segments (the same slug), so a name is checked here, and its
    # existence by the store, as for segment references.
    if not is_valid_segment_name(reference.name):
        raise InvalidRule(
            f"{path}.name", f"not a user list name (1-63 of a-z, 0-9 and -): {reference.name!r}"
        )


def _check_split(split: PercentageSplit, path: str) -> None:
    if not _is_unicode(split.salt):
        raise InvalidRule(f"{path}.salt", "the salt is not valid Unicode text")
    for name, percent in (("from_percent", split.from_percent), ("to_percent", split.to_percent)):
        if not (is_finite_number(percent) and 0 <= percent <= 100):
            raise InvalidRule(f"{path}.{name}", f"must be a percentage between 0 and 100; got {percent!r}")
    if split.from_percent > split.to_percent:
        raise InvalidRule(f"{path}.to_percent", f"must be at least from_percent ({split.from_percent!r})")


def _is_unicode(text: str) -> bool:
    """Tell whether ``text`` encodes to UTF-8 (no lone surrogate, which JSON text can carry)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
