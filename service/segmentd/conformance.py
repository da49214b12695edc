"""The published conformance cases (``conformance/cases/*.json``): reading, and replaying them.

    load_case(data)                  a case file's JSON -> ConformanceCase (validated rules)
    evaluation_context(case)         what an evaluator sees: traits, event counts, thresholds
    shift_case(data, days)           the same case, every time in it ``days`` later
    replay_problem(case, now)        why a server with its own clock cannot replay it (or None)

A running server evaluates with its own clock and sets ``create_time`` itself when a profile
is first stored, so ``segmentd conformance --target`` replays a case on it only after moving
every time in the case (``now``, event days, RFC 3339 strings in traits and rule values) by
whole days to the server's date, and only when the reference evaluator gives the same
verdict at the server's ``now`` with a profile created then as at the case's own: the cases
whose edge is a time of day, a first-stored time or a population percentile are reported as
skipped, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from segmentd.engine.codec import rule_from_json
from segmentd.engine.compiler import Predicate, compile_rule
from segmentd.engine.context import EvaluationContext
from segmentd.engine.percentiles import threshold_from_values
from segmentd.engine.rules import Condition, EventCondition, Group, Rule, SegmentReference
from segmentd.engine.times import event_window_start, parse_time_us
from segmentd.engine.validation import validate_rule

#: An RFC 3339 time, as traits and rule values hold them (shifted with the case's ``now``).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ConformanceCase:
    """One case: a rule, the segments it references, a profile at a fixed ``now``, a verdict."""

    rule: Rule
    segments: dict[str, Rule]
    now: datetime
    user_id: str
    traits: dict[str, Any]
    created: datetime
    events: list[tuple[str, date, int]]
    thresholds: dict[tuple[str, float], float | None]
    lists: dict[str, frozenset[str]]
    expected: bool


def leaves(rule: Rule) -> list[Rule]:
    """The rule's conditions, events, references and splits, groups flattened."""
    return [leaf for child in rule.rules for leaf in leaves(child)] if isinstance(rule, Group) else [rule]


def instant(text: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=parse_time_us(text) or 0)


def load_case(data: Mapping[str, Any]) -> ConformanceCase:
    """Read a case file's JSON; its rules are validated as a segment write would."""
    rule = rule_from_json(data["rule"])
    validate_rule(rule)
    segments = {name: rule_from_json(body) for name, body in data.get("segments", {}).items()}
    profile = data["profile"]
    population = data.get("population", [])
    percentiles = [
        leaf
        for leaf in leaves(rule)
        if isinstance(leaf, Condition) and leaf.operator.startswith("PERCENTILE_")
    ]
    return ConformanceCase(
        rule=rule,
        segments=segments,
        now=instant(data["now"]),
        user_id=profile["user_id"],
        traits=profile["traits"],
        created=instant(profile["create_time"]),
        events=[(e["name"], date.fromisoformat(e["day"]), e["count"]) for e in profile["events"]],
        thresholds={
            (leaf.attribute, float(leaf.value)): threshold_from_values(population, float(leaf.value))  # type: ignore[arg-type]
            for leaf in percentiles
        },
        lists={name: frozenset(members) for name, members in data.get("lists", {}).items()},
        expected=data["expected"],
    )


def event_counts(case: ConformanceCase) -> dict[tuple[str, int], int]:
    """The counts of every event condition in the case, as the store would give them."""
    counts = {}
    every_rule = [case.rule, *case.segments.values()]
    for leaf in (leaf for rule in every_rule for leaf in leaves(rule)):
        if not isinstance(leaf, EventCondition):
            continue
        first = event_window_start(case.now, leaf.within_days)
        if leaf.name == "$created":
            count = int(first is None or case.created.date() >= first)
        else:
            count = sum(
                n
                for name, day, n in case.events
                if leaf.name in (name, "*") and (first is None or day >= first)
            )
        counts[leaf.name, leaf.within_days] = count
    return counts


def evaluation_context(case: ConformanceCase) -> EvaluationContext:
    """What an evaluator sees of the case's profile at the case's ``now``."""
    return EvaluationContext(
        traits=case.traits,
        user_id=case.user_id,
        now=case.now,
        event_counts=event_counts(case),
        percentile_thresholds=case.thresholds,
        lists=frozenset(name for name, members in case.lists.items() if case.user_id in members),
    )


def reference_verdict(case: ConformanceCase) -> bool:
    """The case's verdict by the interpreted closures (the reference evaluator)."""
    predicates: dict[str, Predicate] = {}

    def resolve(name: str) -> Predicate:
        if name not in predicates:
            predicates[name] = compile_rule(case.segments[name], resolve)
        return predicates[name]

    return compile_rule(case.rule, resolve)(evaluation_context(case))


def shift_case(data: Mapping[str, Any], days: int) -> dict[str, Any]:
    """Return the case's JSON with ``now``, event days and every RFC 3339 string ``days`` later."""
    shifted: dict[str, Any] = _shift_value(dict(data), timedelta(days=days))
    shifted["now"] = _shift_time(data["now"], timedelta(days=days))
    profile = shifted["profile"]
    profile["create_time"] = _shift_time(data["profile"]["create_time"], timedelta(days=days))
    profile["events"] = [
        {**event, "day": (date.fromisoformat(event["day"]) + timedelta(days=days)).isoformat()}
        for event in data["profile"]["events"]
    ]
    return shifted


def replay_problem(case: ConformanceCase, now: datetime) -> str | None:
    """Why a server whose clock reads ``now`` cannot replay ``case`` (None: it can)."""
    if case.thresholds:
        return "a percentile needs a store holding exactly the case's population"
    at_server = replace(case, now=now, created=now)
    if reference_verdict(at_server) is not reference_verdict(case):
        return "its verdict depends on the time of day or on when the profile was first stored"
    return None


def referenced_segments(rule: Rule) -> set[str]:
    """The names of the segments ``rule`` references directly."""
    return {leaf.name for leaf in leaves(rule) if isinstance(leaf, SegmentReference)}


def _shift_value(value: Any, delta: timedelta) -> Any:
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return _shift_time(value, delta)
    if isinstance(value, list):
        return [_shift_value(item, delta) for item in value]
    if isinstance(value, dict):
        return {key: _shift_value(item, delta) for key, item in value.items()}
    return value


def _shift_time(text: str, delta: timedelta) -> str:
    # Keeps the original offset and precision: only the calendar moves.
    parsed = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    shifted = (parsed + delta).isoformat()
    return shifted.replace("+00:00", "Z") if text.upper().endswith("Z") else shifted
