"""Pseudo-events in both Python evaluators: read from the context like any event."""

from __future__ import annotations

import pytest

from segmentd.engine import operators as op
from segmentd.engine.compiler import compile_rule
from segmentd.engine.events import is_reserved_event_name
from segmentd.engine.rules import EventCondition
from tests.engine.support import context

INACTIVE = EventCondition("*", op.EQUALS, 0, 14)


@pytest.mark.parametrize(
    ("counts", "expected"), [({}, True), ({("*", 14): 1}, False), ({("login", 14): 1}, True)]
)
def test_inactive__any_event__reads_the_star_count(
    counts: dict[tuple[str, int], int], expected: bool
) -> None:
    predicate = compile_rule(INACTIVE, lambda name: compile_rule(INACTIVE, lambda _: predicate))
    assert predicate(context(event_counts=counts)) is expected


@pytest.mark.parametrize(
    ("name", "reserved"), [("*", True), ("$created", True), ("$x", True), ("login", False), ("a*", False)]
)
def test_is_reserved_event_name(name: str, reserved: bool) -> None:
    assert is_reserved_event_name(name) is reserved
