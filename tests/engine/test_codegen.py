"""Generated code: names only in the source, one line per leaf, cheapest first, tracebacks,
subsets, reference cycles and incremental recompilation."""

from __future__ import annotations

import gc
import linecache
import traceback
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import pytest

from segmentd.engine import compiler
from segmentd.engine import operators as op
from segmentd.engine.compiler import CompiledSegments
from segmentd.engine.inline import re2_searcher
from segmentd.engine.program import ReferenceCycle, evaluation_order
from segmentd.engine.regex import compile_re2
from segmentd.engine.rules import (
    Condition,
    EventCondition,
    Group,
    JsonValue,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.errors import SegmentNotFound
from tests.engine.support import context

FREE: Rule = Condition("plan", op.EQUALS, "free")


def test_source__user_values__are_bound_not_pasted() -> None:
    # Given
    sneaky = "x'); import os; ('"
    rules: dict[str, Rule] = {
        "odd\nname": Group(
            "all",
            (
                Condition("evil\nkey.sub", op.EQUALS, sneaky),
                Condition("score", op.GREATER_THAN, 12345.5),
                EventCondition("log\nin", op.GREATER_THAN, 7, 30),
                PercentageSplit("salt\n#", 0, 50),
            ),
        )
    }

    # When
    segments = CompiledSegments(rules)

    # Then
    for text in (sneaky, "evil", "12345", "log", "salt", "odd"):
        assert text not in segments.source
    traits: dict[str, JsonValue] = {"evil\nkey": {"sub": sneaky}, "score": 20000}
    ctx = context(traits, user_id="u1", event_counts={("log\nin", 30): 8})
    expected = compiler.compile_rule(rules["odd\nname"], _no_segments)(ctx)
    assert segments.matches("odd\nname", ctx) is expected


def _no_segments(name: str) -> compiler.Predicate:
    raise AssertionError(name)


def test_source__each_leaf__has_its_line_and_rule_path() -> None:
    # Given
    rule = Group(
        "any",
        (FREE, Group("none", (Condition("mrr", op.LESS_THAN, 10),)), SegmentReference("base")),
    )

    # When
    source = CompiledSegments({"upgrade": rule, "base": FREE}).source

    # Then
    assert "# segment #1 'upgrade'" in source
    lines = [line for line in source.splitlines() if "# rule.any.rules" in line]
    assert [line.split("# ")[-1] for line in lines] == [
        "rule.any.rules[2].segment",
        "rule.any.rules[0].condition: EQUALS",
        "rule.any.rules[1].none",
        "rule.any.rules[1].none.rules[0].condition: LESS_THAN",
    ]


@pytest.mark.parametrize(
    ("children", "expected_order"),
    [
        pytest.param(
            (Condition("email", op.MATCHES_REGEX, "@acme"), Condition("nps", op.EXISTS)),
            ["EXISTS", "MATCHES_REGEX"],
            id="exists-before-regex",
        ),
        pytest.param(
            (PercentageSplit("s", 0, 50), EventCondition("login", op.GREATER_THAN, 0)),
            ["GREATER_THAN", "split"],
            id="event-before-split",
        ),
        pytest.param(
            (Condition("a", op.EQUALS, "x"), Condition("b", op.EQUALS, "y")),
            ["a", "b"],
            id="equal-costs-keep-rule-order",
        ),
    ],
)
def test_group__children__are_ordered_cheapest_first(
    children: tuple[Rule, ...], expected_order: list[str]
) -> None:
    # Given
    segments = CompiledSegments({"s": Group("all", children)})

    # When
    lines = [line for line in segments.source.splitlines() if "# rule.all.rules" in line]

    # Then
    described = [line.rsplit(" ", 1)[-1] if "split" not in line else "split" for line in lines]
    if expected_order == ["a", "b"]:
        described = ["a" if "rules[0]" in line else "b" for line in lines]
    assert described == expected_order


class ExplodingTraits(Mapping[str, JsonValue]):
    """Traits whose every read fails, to look at the traceback."""

    def __getitem__(self, key: str) -> JsonValue:
        raise RuntimeError("store gone")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 1  # not empty: the helper would replace empty traits

    def get(self, key: str, default: object = None) -> JsonValue:
        raise RuntimeError("store gone")


def test_traceback__through_generated_code__shows_its_lines() -> None:
    # Given
    segments = CompiledSegments({"free": FREE})

    # When
    with pytest.raises(RuntimeError) as raised:
        segments.evaluate(context(ExplodingTraits()))

    # Then
    frames = [frame for frame in traceback.extract_tb(raised.tb) if frame.filename.startswith("<segmentd")]
    assert frames
    assert frames[0].line == "v1 = get(key1)"  # the line that read the trait, as generated


def test_generated_source__collected__leaves_linecache() -> None:
    # Given
    segments = CompiledSegments({"free": FREE})
    filename = next(name for name in linecache.cache if name.startswith("<segmentd-generated"))
    filenames = {name for name in linecache.cache if name.startswith("<segmentd-generated")}

    # When
    del segments
    gc.collect()

    # Then
    assert filename in filenames
    assert not {name for name in linecache.cache if name.startswith("<segmentd-generated")} >= filenames


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        pytest.param({"company": MappingProxyType({"size": 10})}, True, id="through-a-mapping"),
        pytest.param({"company": MappingProxyType({})}, False, id="mapping-without-key"),
        pytest.param({"company": "acme"}, False, id="through-a-string"),
        pytest.param({"company": None}, False, id="through-null"),
        pytest.param({"company": {"size": None}}, False, id="null-leaf"),
    ],
)
def test_nested_path__any_parent__reads_through_mappings_only(
    traits: dict[str, JsonValue], expected: bool
) -> None:
    # Given
    segments = CompiledSegments({"s": Condition("company.size", op.EQUALS, 10)})

    # When
    verdict = segments.matches("s", context(traits))

    # Then
    assert verdict is expected


def test_percentiles__same_threshold_twice__read_once() -> None:
    # Given
    rich = Condition("mrr", op.PERCENTILE_AT_LEAST, 90)
    segments = CompiledSegments({"a": rich, "b": Group("all", (rich, rich))})

    # When
    result = segments.evaluate(context({"mrr": 100}, percentile_thresholds={("mrr", 90.0): 50}))

    # Then
    assert result == ["a", "b"]
    assert segments.source.count("threshold(") == 1


def test_evaluate__reference_cycle__raises_reference_cycle() -> None:
    # Given
    segments = CompiledSegments({"a": SegmentReference("b"), "b": SegmentReference("a"), "c": FREE})

    # When / Then
    assert segments.evaluate(context({"plan": "free"}), ["c"]) == ["c"]
    with pytest.raises(ReferenceCycle):
        segments.evaluate(context())
    with pytest.raises(ReferenceCycle):
        _ = segments.source


def test_source__dangling_reference__raises_segment_not_found() -> None:
    # Given
    segments = CompiledSegments({"a": SegmentReference("gone")})

    # When / Then
    with pytest.raises(SegmentNotFound):
        _ = segments.source


@pytest.mark.parametrize(
    ("selected", "expected"),
    [
        pytest.param(["top"], ["base", "left", "right", "top"], id="diamond"),
        pytest.param(["left", "base"], ["base", "left"], id="shared"),
        pytest.param([], [], id="nothing"),
    ],
)
def test_evaluation_order__references__come_first(selected: list[str], expected: list[str]) -> None:
    # Given
    segments = CompiledSegments(
        {
            "top": Group("all", (SegmentReference("left"), SegmentReference("right"))),
            "left": SegmentReference("base"),
            "right": Group("any", (SegmentReference("base"), SegmentReference("base"))),
            "base": FREE,
        }
    )

    # When
    order = evaluation_order(segments._codes, selected)

    # Then
    assert order == expected


def test_resolve__asked_twice__gives_the_same_predicate() -> None:
    # Given
    segments = CompiledSegments({"free": FREE})

    # When
    first, second = segments.resolve("free"), segments.resolve("free")

    # Then
    assert first is second
    assert first(context({"plan": "free"})) is True
    assert second(context({"plan": "pro"})) is False


def test_evaluate__more_subsets_than_kept__still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given
    monkeypatch.setattr(compiler, "MAX_SUBSET_PROGRAMS", 1)
    segments = CompiledSegments({"a": FREE, "b": FREE, "c": Condition("plan", op.EQUALS, "pro")})
    ctx = context({"plan": "free"})

    # When
    results = [segments.evaluate(ctx, names) for names in (["a"], ["b"], ["c"], ["a", "c"], ["a"])]

    # Then
    assert results == [["a"], ["b"], [], ["a"], ["a"]]
    assert len(segments._programs) == 1
    assert segments._whole is not None  # the whole set's function is never forgotten


@pytest.mark.parametrize(
    ("old", "new", "regenerated"),
    [
        pytest.param(FREE, FREE, (), id="unchanged"),
        pytest.param(FREE, Condition("plan", op.EQUALS, "pro"), ("s",), id="changed"),
        pytest.param(
            Condition("n", op.EQUALS, 1), Condition("n", op.EQUALS, True), ("s",), id="one-is-not-true"
        ),
        pytest.param(
            Condition("n", op.IN, [1.0]), Condition("n", op.IN, [1]), ("s",), id="same-value-other-type"
        ),
    ],
)
def test_compiled_segments__previous__regenerates_only_changed_rules(
    old: Rule, new: Rule, regenerated: tuple[str, ...]
) -> None:
    # Given
    previous = CompiledSegments({"s": old, "other": FREE})

    # When
    recompiled = CompiledSegments({"s": new, "other": FREE, "added": FREE}, previous=previous)

    # Then
    assert recompiled.regenerated == tuple(sorted(("added", *regenerated)))
    for traits in ({"n": True}, {"n": 1}, {"plan": "free"}, {"plan": "pro"}):
        fresh = CompiledSegments({"s": new, "other": FREE, "added": FREE})
        assert recompiled.evaluate(context(traits)) == fresh.evaluate(context(traits))


def test_compiled_segments__previous_removed_and_readded__get_new_numbers() -> None:
    # Given
    first = CompiledSegments({"a": FREE, "b": FREE})
    second = CompiledSegments({"b": FREE}, previous=first)

    # When
    third = CompiledSegments({"a": FREE, "b": FREE}, previous=second)

    # Then
    assert third.regenerated == ("a",)
    assert third.evaluate(context({"plan": "free"})) == ["a", "b"]
    assert third._codes["a"].sid not in {first._codes["a"].sid, first._codes["b"].sid}


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        pytest.param("^fr", "free", True, id="anchored"),
        pytest.param("ee$", "free\n", False, id="dollar-is-the-very-end"),
        pytest.param("(a)(b)?", "xxab", True, id="groups"),
        pytest.param("é", "café", True, id="non-ascii"),
        pytest.param("", "", True, id="empty"),
        pytest.param("a", "\ud800a", False, id="lone-surrogate"),
    ],
)
def test_re2_searcher__text__answers_as_search(pattern: str, text: str, expected: bool) -> None:
    # Given
    search = re2_searcher(compile_re2(pattern))

    # When
    verdict = search(text)

    # Then
    assert verdict is expected


def test_resolve__unknown_name__raises_segment_not_found() -> None:
    # Given
    segments = CompiledSegments({"free": FREE})

    # When / Then
    with pytest.raises(SegmentNotFound):
        segments.resolve("nope")
