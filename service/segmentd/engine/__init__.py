"""The rule engine: pure functions of a rule tree and one user's data; no I/O.

    rules.py        Rule = Group | Condition | EventCondition | SegmentReference | PercentageSplit
                         | ListReference
    operators.py    operator names and families
    codec.py        the canonical JSON form  <->  Rule
    limits.py       RuleLimits
    validation.py   validate_rule(rule, limits) -> None | InvalidRule     (values.py: per operator)
    context.py      EvaluationContext: traits, user id, now, event counts, percentile thresholds,
                    user-list memberships
    traits.py       attribute paths, MISSING, JSON type tests
    matchers.py     MATCHERS_BY_OPERATOR: the meaning of each operator
      times.py      RFC 3339 -> epoch microseconds
      semver.py     semantic versions and their precedence
      regex.py      the RE2 subset accepted, and its PostgreSQL translation
    split.py        percentage-split buckets
    percentiles.py  nearest-rank percentiles
    compiler.py     compile_rule -> Predicate (the reference closures); CompiledSegments
      codegen.py    generate_segment -> SegmentCode: one segment's generated source fragment
      inline.py     each operator as an inline Python expression, and its cost
      program.py    build_program: one generated function for a set of segments
    explain.py      explain -> Explanation (per-node verdicts and the values seen)

The exact semantics are specified in ``docs/semantics.md``; ``segmentd.sqlgen`` implements the
same semantics in SQL.
"""

from segmentd.engine.compiler import CompiledSegments, Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.explain import Explanation, explain
from segmentd.engine.limits import DEFAULT_LIMITS, RuleLimits
from segmentd.engine.validation import validate_rule

__all__ = [
    "DEFAULT_LIMITS",
    "CompiledSegments",
    "EvaluationContext",
    "Explanation",
    "Predicate",
    "RuleLimits",
    "compile_rule",
    "explain",
    "validate_rule",
]
