"""Rule tree helpers and the evaluation context's defaults."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segmentd.engine import operators as op
from segmentd.engine.context import EvaluationContext
from segmentd.engine.rules import Condition, Group, Rule, SegmentReference, referenced_segments


@pytest.mark.parametrize(
    ("rule", "names"),
    [
        pytest.param(Condition("a", op.EXISTS), set(), id="leaf"),
        pytest.param(SegmentReference("x"), {"x"}, id="reference"),
        pytest.param(
            Group(
                "all", (SegmentReference("x"), Group("none", (SegmentReference("y"), SegmentReference("x"))))
            ),
            {"x", "y"},
            id="nested",
        ),
        pytest.param(Group("any"), set(), id="empty-group"),
    ],
)
def test_referenced_segments__rule__lists_direct_references(rule: Rule, names: set[str]) -> None:
    # Given / When
    result = referenced_segments(rule)

    # Then
    assert result == names


def test_evaluation_context__defaults__are_anonymous_now_and_empty() -> None:
    # Given
    before = datetime.now(UTC)

    # When
    ctx = EvaluationContext(traits={})

    # Then
    assert ctx.user_id is None
    assert before <= ctx.now <= datetime.now(UTC)
    assert (ctx.event_counts, ctx.percentile_thresholds) == ({}, {})
