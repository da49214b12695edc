"""Compiled rules: groups, paths, events, references, and sets of segments."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from segmentd.engine import operators as op
from segmentd.engine.compiler import CompiledSegments, Predicate, compile_rule
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    GroupKind,
    JsonValue,
    Rule,
    SegmentReference,
)
from segmentd.errors import SegmentNotFound
from tests.engine.support import context, rule_holds

TRUE: Rule = Condition("plan", op.EQUALS, "free")
FALSE: Rule = Condition("plan", op.EQUALS, "pro")
MISSING_ATTRIBUTE: Rule = Condition("absent", op.EQUALS, "x")
TRAITS: dict[str, JsonValue] = {"plan": "free"}


@pytest.mark.parametrize(
    ("kind", "children", "expected"),
    [
        pytest.param("all", (), True, id="all-of-nothing"),
        pytest.param("any", (), False, id="any-of-nothing"),
        pytest.param("none", (), True, id="none-of-nothing"),
        pytest.param("all", (TRUE, TRUE), True, id="all-true"),
        pytest.param("all", (TRUE, FALSE), False, id="all-one-false"),
        pytest.param("any", (FALSE, TRUE), True, id="any-one-true"),
        pytest.param("any", (FALSE, FALSE), False, id="any-all-false"),
        pytest.param("none", (FALSE, FALSE), True, id="none-all-false"),
        pytest.param("none", (FALSE, TRUE), False, id="none-one-true"),
        pytest.param("none", (MISSING_ATTRIBUTE,), True, id="none-of-missing-is-true"),
        pytest.param("any", (Group("all"), FALSE), True, id="nested-empty-all"),
        pytest.param("all", (Group("none", (Group("none", (TRUE,)),)),), True, id="double-negation"),
    ],
)
def test_group__children__combine_as_tabled(
    kind: GroupKind, children: tuple[Rule, ...], expected: bool
) -> None:
    # Given
    group = Group(kind, children)

    # When
    verdict = rule_holds(group, context(TRAITS))

    # Then
    assert verdict is expected


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        pytest.param({"company": {"size": 10}}, True, id="nested-object"),
        pytest.param({"company": {"size": "10"}}, False, id="nested-wrong-type"),
        pytest.param({"company": "acme"}, False, id="through-a-string"),
        pytest.param({"company": [{"size": 10}]}, False, id="through-a-list"),
        pytest.param({"company": None}, False, id="through-null"),
        pytest.param({"company.size": 10}, False, id="dotted-key"),
        pytest.param({}, False, id="absent"),
    ],
)
def test_condition__nested_path__reads_through_objects_only(
    traits: dict[str, JsonValue], expected: bool
) -> None:
    # Given
    rule = Condition("company.size", op.EQUALS, 10)

    # When
    verdict = rule_holds(rule, context(traits))

    # Then
    assert verdict is expected


def test_condition__missing_nested_path_negated__holds() -> None:
    # Given
    rule = Group("none", (Condition("company.size", op.GREATER_THAN, 5),))

    # When
    verdict = rule_holds(rule, context({"company": "acme"}))

    # Then
    assert verdict is True


@pytest.mark.parametrize(
    ("operator", "count", "within_days", "expected"),
    [
        pytest.param(op.GREATER_THAN_OR_EQUALS, 3, 30, True, id="ge-equal"),
        pytest.param(op.GREATER_THAN, 3, 30, False, id="gt-equal"),
        pytest.param(op.EQUALS, 3, 30, True, id="eq"),
        pytest.param(op.NOT_EQUALS, 3, 30, False, id="ne"),
        pytest.param(op.LESS_THAN, 4, 30, True, id="lt"),
        pytest.param(op.LESS_THAN_OR_EQUALS, 2, 30, False, id="le"),
        pytest.param(op.GREATER_THAN, 5, 0, True, id="ever-is-its-own-window"),
        pytest.param(op.EQUALS, 0, 7, True, id="no-events-in-window-count-zero"),
        pytest.param(op.LESS_THAN, 1, 7, True, id="never-did-it"),
        pytest.param(op.GREATER_THAN_OR_EQUALS, 0, 1, True, id="zero-is-always-reached"),
    ],
)
def test_event__count_in_window__compares_with_count(
    operator: str, count: int, within_days: int, expected: bool
) -> None:
    # Given
    rule = EventCondition("login", operator, count, within_days)  # type: ignore[arg-type]
    counts = {("login", 30): 3, ("login", 0): 10, ("purchase", 7): 2}

    # When
    verdict = rule_holds(rule, context(event_counts=counts))

    # Then
    assert verdict is expected


def test_compile_rule__segment_reference__resolves_at_call_time() -> None:
    # Given
    predicates: dict[str, Predicate] = {}
    predicate = compile_rule(SegmentReference("later"), lambda name: predicates[name])
    predicates["later"] = compile_rule(TRUE, lambda name: predicates[name])

    # When
    verdict = predicate(context(TRAITS))

    # Then
    assert verdict is True


SEGMENTS: dict[str, Rule] = {
    # References before their targets: compilation order does not matter.
    "free-and-active": Group("all", (SegmentReference("free"), SegmentReference("active"))),
    "free": TRUE,
    "active": EventCondition("login", op.GREATER_THAN, 0, 30),
    "pro": FALSE,
    "not-pro": Group("none", (SegmentReference("pro"),)),
    "rich": Condition("mrr", op.PERCENTILE_AT_LEAST, 90),
    "rich-or-free": Group("any", (SegmentReference("rich"), SegmentReference("free-and-active"))),
    "buyers": EventCondition("purchase", op.GREATER_THAN, 0, 0),
}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(
            None, ["active", "free", "free-and-active", "not-pro", "rich-or-free"], id="all-segments"
        ),
        pytest.param(["pro", "free"], ["free"], id="some-sorted"),
        pytest.param(["free", "free"], ["free"], id="duplicates"),
        pytest.param([], [], id="none-asked"),
        pytest.param(iter(["not-pro"]), ["not-pro"], id="any-iterable"),
    ],
)
def test_compiled_segments_evaluate__names__returns_sorted_matches(
    names: Iterator[str] | None, expected: list[str]
) -> None:
    # Given
    segments = CompiledSegments(SEGMENTS)
    ctx = context(TRAITS, event_counts={("login", 30): 1}, percentile_thresholds={("mrr", 90.0): 1000})

    # When
    result = segments.evaluate(ctx, names)

    # Then
    assert result == expected


def test_compiled_segments__unknown_name__raises_segment_not_found() -> None:
    # Given
    segments = CompiledSegments(SEGMENTS)

    # When / Then
    with pytest.raises(SegmentNotFound):
        segments.evaluate(context(), ["free", "nope"])
    with pytest.raises(SegmentNotFound):
        segments.matches("nope", context())
    with pytest.raises(SegmentNotFound):
        segments.required_events(["nope"])


def test_compiled_segments__dangling_reference__raises_when_reached() -> None:
    # Given
    segments = CompiledSegments({"a": SegmentReference("gone"), "b": TRUE})

    # When / Then
    assert segments.evaluate(context(TRAITS), ["b"]) == ["b"]
    with pytest.raises(SegmentNotFound):
        segments.evaluate(context(TRAITS))


@pytest.mark.parametrize(("name", "expected"), [("free", True), ("pro", False), ("free-and-active", False)])
def test_compiled_segments_matches__name__gives_its_verdict(name: str, expected: bool) -> None:
    # Given
    segments = CompiledSegments(SEGMENTS)

    # When
    verdict = segments.matches(name, context(TRAITS))

    # Then
    assert verdict is expected


def test_compiled_segments__names__are_sorted() -> None:
    # Given / When
    segments = CompiledSegments({"b": TRUE, "a": FALSE})

    # Then
    assert segments.names == ("a", "b")


def test_compiled_segments_resolve__outside_evaluate__evaluates_directly() -> None:
    # Given
    segments = CompiledSegments(SEGMENTS)
    ad_hoc = compile_rule(
        Group("all", (SegmentReference("free"), SegmentReference("not-pro"))), segments.resolve
    )

    # When
    verdict = ad_hoc(context(TRAITS))

    # Then
    assert verdict is True


class CountingTraits(Mapping[str, JsonValue]):
    """Traits that count how often each key is read."""

    def __init__(self, data: dict[str, JsonValue]) -> None:
        self.data = data
        self.reads: dict[str, int] = {}

    def __getitem__(self, key: str) -> JsonValue:
        self.reads[key] = self.reads.get(key, 0) + 1
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_compiled_segments_evaluate__shared_reference__is_evaluated_once_per_call() -> None:
    # Given
    segments = CompiledSegments(
        {
            "base": Condition("plan", op.EQUALS, "free"),
            "x": Group("all", (SegmentReference("base"), SegmentReference("base"))),
            "y": Group("any", (SegmentReference("base"),)),
        }
    )
    traits = CountingTraits({"plan": "free"})

    # When
    first = segments.evaluate(context(traits))
    second = segments.evaluate(context(traits))

    # Then
    assert first == second == ["base", "x", "y"]
    assert traits.reads == {"plan": 2}


@pytest.mark.parametrize(
    ("names", "events", "percentiles"),
    [
        pytest.param(None, {("login", 30), ("purchase", 0)}, {("mrr", 90.0)}, id="all"),
        pytest.param(["free"], set(), set(), id="no-inputs"),
        pytest.param(["free-and-active"], {("login", 30)}, set(), id="through-a-reference"),
        pytest.param(["rich-or-free"], {("login", 30)}, {("mrr", 90.0)}, id="transitively"),
        pytest.param(["buyers", "rich"], {("purchase", 0)}, {("mrr", 90.0)}, id="union"),
    ],
)
def test_compiled_segments__required_inputs__follow_references(
    names: list[str] | None, events: set[tuple[str, int]], percentiles: set[tuple[str, float]]
) -> None:
    # Given
    segments = CompiledSegments(SEGMENTS)

    # When
    required_events = segments.required_events(names)
    required_percentiles = segments.required_percentiles(names)

    # Then
    assert required_events == events
    assert required_percentiles == percentiles


def test_compiled_segments__required_inputs_of_a_cycle__terminate() -> None:
    # Given: cycles are refused when written; the closure must not loop on one anyway.
    segments = CompiledSegments(
        {
            "a": Group("all", (SegmentReference("b"), EventCondition("e", op.EQUALS, 1))),
            "b": SegmentReference("a"),
        }
    )

    # When
    events = segments.required_events(["a"])

    # Then
    assert events == {("e", 0)}
