"""Helpers shared by the engine tests: evaluate one condition on one trait."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentd.engine import operators as op
from segmentd.engine.compiler import CompiledSegments, Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.rules import Condition, JsonValue, Rule
from segmentd.engine.traits import MISSING, Missing
from segmentd.engine.validation import validate_rule
from tests.strategies import NOW

ATTRIBUTE = "a"

#: A valid value for every operator, for the tables that vary the trait only.
VALUE_BY_OPERATOR: dict[str, JsonValue] = {
    op.EQUALS: "x",
    op.NOT_EQUALS: "x",
    op.LESS_THAN: 5,
    op.LESS_THAN_OR_EQUALS: 5,
    op.GREATER_THAN: 5,
    op.GREATER_THAN_OR_EQUALS: 5,
    op.IN: ["x"],
    op.NOT_IN: [],
    op.CONTAINS: "x",
    op.NOT_CONTAINS: "x",
    op.STARTS_WITH: "",
    op.ENDS_WITH: "",
    op.MATCHES_REGEX: "",
    op.EXISTS: None,
    op.NOT_EXISTS: None,
    op.BETWEEN: [0, 10],
    op.BEFORE: "2026-01-01T00:00:00Z",
    op.AFTER: "2026-01-01T00:00:00Z",
    op.WITHIN_LAST_DAYS: 30,
    op.NOT_WITHIN_LAST_DAYS: 30,
    op.SEMVER_EQUALS: "1.0.0",
    op.SEMVER_LESS_THAN: "1.0.0",
    op.SEMVER_GREATER_THAN: "1.0.0",
    op.PERCENTILE_AT_MOST: 50,
    op.PERCENTILE_AT_LEAST: 50,
}


def no_segments(name: str) -> Predicate:
    raise AssertionError(f"unexpected reference to {name!r}")


def context(traits: Mapping[str, JsonValue] | None = None, **fields: Any) -> EvaluationContext:
    return EvaluationContext(traits=traits or {}, now=fields.pop("now", NOW), **fields)


def rule_holds(rule: Rule, ctx: EvaluationContext) -> bool:
    """Validate and evaluate ``rule`` with the closures, checking the generated code agrees."""
    validate_rule(rule)
    verdict = compile_rule(rule, no_segments)(ctx)
    assert CompiledSegments({"s": rule}).matches("s", ctx) is verdict
    return verdict


def holds(
    operator: str, value: JsonValue, trait: JsonValue | Missing, *, ignore_case: bool = False, **fields: Any
) -> bool:
    """Validate, compile and evaluate ``a <operator> value`` on the traits ``{"a": trait}``."""
    condition = Condition(ATTRIBUTE, operator, value, ignore_case)  # type: ignore[arg-type]
    traits = {} if trait is MISSING else {ATTRIBUTE: trait}
    return rule_holds(condition, context(traits, **fields))
