"""The reference graph helpers (no database)."""

from __future__ import annotations

import pytest

from segmentd.engine.rules import Condition, Group, SegmentReference
from segmentd.store.references import edges_by_name, find_cycle, reference_paths


def test_reference_paths__nested__field_paths_in_json_form() -> None:
    rule = Group(
        "all",
        (
            Condition("plan", "EXISTS"),
            Group("none", (SegmentReference("a"),)),
            SegmentReference("b"),
        ),
    )
    assert list(reference_paths(rule, "segment.rule")) == [
        ("segment.rule.all.rules[1].none.rules[0].segment.name", "a"),
        ("segment.rule.all.rules[2].segment.name", "b"),
    ]
    assert list(reference_paths(SegmentReference("x"), "r")) == [("r.segment.name", "x")]


GRAPH = edges_by_name([("a", "b"), ("b", "c"), ("c", "d"), ("x", "a"), ("s", "a")])


@pytest.mark.parametrize(
    ("name", "referenced", "cycle"),
    [
        ("d", "a", ["d", "a", "b", "c", "d"]),
        ("c", "c", ["c", "c"]),
        ("a", "c", None),  # a's own edges are replaced by the write
        ("d", "x", ["d", "x", "a", "b", "c", "d"]),
        ("new", "a", None),
        ("s", "d", None),
    ],
)
def test_find_cycle(name: str, referenced: str, cycle: list[str] | None) -> None:
    assert find_cycle(name, referenced, GRAPH) == cycle
