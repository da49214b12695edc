"""Rule-engine benchmark: segmentd's EvaluateUser hot path against hand-written code and two SDKs.

    uv run --group bench python bench/engine.py [--segments 100] [--rounds 15] [--seconds 0.2]

One run, in this process:

1. generates 100 segments (fixed seed) of about five conditions each: mixed operators (EQUALS,
   NOT_EQUALS, IN, numeric comparisons, STARTS_WITH, ENDS_WITH, MATCHES_REGEX, EXISTS,
   NOT_EXISTS), nested any/none groups, a nested attribute (``company.size``) and one event
   count per segment; and three profiles;
2. writes the same segments for each engine:
   (a) segmentd: ``CompiledSegments.evaluate`` with a fresh ``EvaluationContext`` per call,
       and (a') the same with the context built once;
   (b) one hand-written function per segment, as a careful engineer writes them for this fixed
       set (literals, direct dict gets, type checks, short-circuit; Python's ``re``), shown
       with ``--show-hand-written``;
   (c) flagsmith-flag-engine's ``is_context_in_segment`` per segment (flat traits; the event
       count as a trait);
   (d) GrowthBook's ``evalCondition`` per segment (the event count as an attribute);
3. checks that every engine returns the same segments for every profile (and stops otherwise);
4. times them interleaved, ``--rounds`` rounds of about ``--seconds`` each, and prints the
   median calls per second (one call: the three profiles' evaluations / 3) and the ratio to (b);
5. times compiling the 100 segments, fresh and recompiled from the previous compilation with
   one segment changed (medians of 20).

See docs/engine.md for the figures.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from segmentd.engine import operators as op
from segmentd.engine.compiler import CompiledSegments
from segmentd.engine.context import EvaluationContext
from segmentd.engine.operators import Operator
from segmentd.engine.rules import Condition, EventCondition, Group, Rule
from segmentd.engine.validation import validate_rule

# The engine-neutral form of a rule: ("all" | "any" | "none", [children]) or a leaf
# (kind, attribute, value); an event is ("event", name, within_days, bound).
Node = tuple[Any, ...]
Evaluate = Callable[[int], list[str]]

PLANS = ("free", "pro", "team", "enterprise")
COUNTRIES = ("US", "CA", "FR", "DE", "GB", "BR", "IN", "JP")
INDUSTRIES = ("saas", "retail", "finance", "health")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PROFILES: list[dict[str, Any]] = [
    {
        "plan": "free",
        "country": "FR",
        "mrr": 0.0,
        "seats_used_pct": 85,
        "company": {"size": 12, "industry": "retail"},
        "email": "ana@shop.example",
    },
    {
        "plan": "team",
        "country": "US",
        "mrr": 420.0,
        "seats_used_pct": 40,
        "company": {"size": 180, "industry": "saas"},
        "email": "bob@acme.com",
        "nps": 9,
    },
    {
        "plan": "enterprise",
        "country": "DE",
        "mrr": 2600.0,
        "seats_used_pct": 65,
        "company": {"size": 2400, "industry": "finance"},
        "email": "carla@bank.example",
        "nps": 4,
    },
]
EVENT_COUNTS: list[dict[tuple[str, int], int]] = [
    {("login", 30): 2, ("invite_sent", 7): 0},
    {("login", 30): 14, ("invite_sent", 7): 3, ("purchase", 0): 2},
    {("login", 30): 6, ("purchase", 0): 9},
]
EVENTS = (("login", 30), ("invite_sent", 7), ("purchase", 0))


# --- generating the segments ---------------------------------------------------------------


def _leaf(rng: random.Random) -> Node:
    kind = rng.choice(
        ("eq", "eq", "ne", "in", "in", "num", "num", "num", "starts", "ends", "regex", "exists")
    )
    if kind == "eq":
        return (
            ("eq", "plan", rng.choice(PLANS))
            if rng.random() < 0.6
            else ("eq", "country", rng.choice(COUNTRIES))
        )
    if kind == "ne":
        return ("ne", "plan", rng.choice(PLANS))
    if kind == "in":
        attribute, pool = rng.choice(
            (("country", COUNTRIES), ("plan", PLANS), ("company.industry", INDUSTRIES))
        )
        return ("in", attribute, sorted(rng.sample(pool, rng.randint(2, 4))))
    if kind == "num":
        attribute, low, high = rng.choice(
            (("mrr", 0, 3000), ("seats_used_pct", 0, 100), ("company.size", 1, 3000))
        )
        return (rng.choice(("gt", "ge", "lt", "le")), attribute, rng.randint(low, high))
    if kind == "starts":
        return ("starts", "email", rng.choice(("ana", "bob", "carla", "dan")))
    if kind == "ends":
        return ("ends", "email", rng.choice(("@acme.com", ".example", "@bank.example")))
    if kind == "regex":
        return ("regex", "country", rng.choice(("^(US|CA|MX)$", "^[A-F]", "^(FR|DE|GB)$")))
    return (rng.choice(("exists", "not_exists")), "nps", None)


def _segment(rng: random.Random) -> Node:
    """An ``all`` of two or three conditions, a nested ``any`` or ``none`` group and an event."""
    children: list[Node] = [_leaf(rng) for _ in range(rng.randint(2, 3))]
    children.append((rng.choice(("any", "any", "none")), [_leaf(rng) for _ in range(2)]))
    name, days = rng.choice(EVENTS)
    children.insert(rng.randint(0, len(children)), ("event", name, days, rng.randint(0, 10)))
    return ("all", children)


def generate_segments(count: int, seed: int = 20261201) -> dict[str, Node]:
    rng = random.Random(seed)
    return {f"segment-{i:03d}": _segment(rng) for i in range(count)}


# --- (a) segmentd ----------------------------------------------------------------------------

_OPERATORS: dict[str, Operator] = {
    "eq": op.EQUALS,
    "ne": op.NOT_EQUALS,
    "in": op.IN,
    "gt": op.GREATER_THAN,
    "ge": op.GREATER_THAN_OR_EQUALS,
    "lt": op.LESS_THAN,
    "le": op.LESS_THAN_OR_EQUALS,
    "starts": op.STARTS_WITH,
    "ends": op.ENDS_WITH,
    "regex": op.MATCHES_REGEX,
    "exists": op.EXISTS,
    "not_exists": op.NOT_EXISTS,
}


def to_rule(node: Node) -> Rule:
    if node[0] in ("all", "any", "none"):
        return Group(node[0], tuple(to_rule(child) for child in node[1]))
    if node[0] == "event":
        return EventCondition(node[1], op.GREATER_THAN_OR_EQUALS, node[3], node[2])
    return Condition(node[1], _OPERATORS[node[0]], node[2])


# --- (b) hand-written ------------------------------------------------------------------------

_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _read(attribute: str) -> str:
    """The expression a careful engineer writes to read a trait into ``v``."""
    if "." in attribute:
        parent, key = attribute.split(".")
        return f"(v := c.get({key!r}) if isinstance(c := t.get({parent!r}), dict) else None)"
    return f"(v := t.get({attribute!r}))"


def hand_written(node: Node) -> str:
    kind = node[0]
    if kind in ("all", "any"):
        return (
            "(" + f" {'and' if kind == 'all' else 'or'} ".join(hand_written(child) for child in node[1]) + ")"
        )
    if kind == "none":
        return "not (" + " or ".join(hand_written(child) for child in node[1]) + ")"
    if kind == "event":
        return f"e.get({(node[1], node[2])!r}, 0) >= {node[3]}"
    read, value = _read(node[1]), node[2]
    if kind == "eq":
        return f"{read} == {value!r}"
    if kind == "ne":
        return f"{read} is not None and v != {value!r}"
    if kind == "in":
        return f"isinstance({read}, str) and v in {set(value)!r}"
    if kind in _SYMBOLS:
        return f"type({read}) in (int, float) and v {_SYMBOLS[kind]} {value!r}"
    if kind in ("starts", "ends"):
        method = "startswith" if kind == "starts" else "endswith"
        return f"isinstance({read}, str) and v.{method}({value!r})"
    if kind == "regex":
        return f"isinstance({read}, str) and re.search({value!r}, v) is not None"
    return f"{read} is {'not ' if kind == 'exists' else ''}None"


def hand_written_module(segments: dict[str, Node]) -> str:
    lines = ["import re", ""]
    for i, node in enumerate(segments.values()):
        lines += [f"def segment_{i}(t, e):", f"    return {hand_written(node)}", ""]
    return "\n".join(lines)


def _hand_written_functions(segments: dict[str, Node]) -> list[tuple[str, Callable[..., bool]]]:
    # re.search(pattern, text) goes through re's own cache; bind the compiled patterns instead,
    # as a careful engineer would.
    source = hand_written_module(segments)
    patterns: dict[str, str] = {}

    def compiled(match: re.Match[str]) -> str:
        name = patterns.setdefault(match.group(1), f"RX{len(patterns)}")
        return f"{name}.search("

    source = re.sub(r"re\.search\(('[^']*'), ", compiled, source)
    namespace: dict[str, Any] = {name: re.compile(eval(text)) for text, name in patterns.items()}
    exec(compile(source, "<hand-written>", "exec"), namespace)
    return [(name, namespace[f"segment_{i}"]) for i, name in enumerate(segments)]


# --- (c) flagsmith-flag-engine and (d) GrowthBook ----------------------------------------------

_FLAGSMITH = {
    "eq": "EQUAL",
    "ne": "NOT_EQUAL",
    "in": "IN",
    "gt": "GREATER_THAN",
    "ge": "GREATER_THAN_INCLUSIVE",
    "lt": "LESS_THAN",
    "le": "LESS_THAN_INCLUSIVE",
    "exists": "IS_SET",
    "not_exists": "IS_NOT_SET",
}


def _event_trait(name: str, days: int) -> str:
    return f"{name}_{days}d"


def _flagsmith_condition(node: Node) -> dict[str, Any]:
    kind = node[0]
    if kind == "event":
        return {
            "property": _event_trait(node[1], node[2]),
            "operator": "GREATER_THAN_INCLUSIVE",
            "value": str(node[3]),
        }
    if kind in ("starts", "ends", "regex"):
        # Flagsmith's REGEX is re.match, anchored at the start.
        pattern = {"starts": f"^{re.escape(node[2])}", "ends": f".*{re.escape(node[2])}$"}.get(kind, node[2])
        return {"property": node[1], "operator": "REGEX", "value": pattern}
    value = node[2] if kind == "in" else ("" if node[2] is None else str(node[2]))
    return {"property": node[1], "operator": _FLAGSMITH[kind], "value": value}


def to_flagsmith(name: str, node: Node) -> dict[str, Any]:
    """A Flagsmith segment: the leaves in one ALL rule, each nested group a rule of its own."""
    leaves = [child for child in node[1] if child[0] not in ("any", "none")]
    rules: list[dict[str, Any]] = [{"type": "ALL", "conditions": [_flagsmith_condition(c) for c in leaves]}]
    for group in (child for child in node[1] if child[0] in ("any", "none")):
        rules.append({"type": group[0].upper(), "conditions": [_flagsmith_condition(c) for c in group[1]]})
    return {"key": name, "name": name, "rules": rules}


def _flat_traits(traits: dict[str, Any], counts: dict[tuple[str, int], int]) -> dict[str, Any]:
    flat = {key: value for key, value in traits.items() if key != "company"}
    flat.update({f"company.{key}": value for key, value in traits["company"].items()})
    flat.update({_event_trait(name, days): counts.get((name, days), 0) for name, days in EVENTS})
    return flat


_GROWTHBOOK = {"gt": "$gt", "ge": "$gte", "lt": "$lt", "le": "$lte", "ne": "$ne", "in": "$in"}


def to_growthbook(node: Node) -> dict[str, Any]:
    kind = node[0]
    if kind in ("all", "any", "none"):
        return {{"all": "$and", "any": "$or", "none": "$nor"}[kind]: [to_growthbook(c) for c in node[1]]}
    if kind == "event":
        return {_event_trait(node[1], node[2]): {"$gte": node[3]}}
    if kind == "eq":
        return {node[1]: node[2]}
    if kind in _GROWTHBOOK:
        return {node[1]: {_GROWTHBOOK[kind]: node[2]}}
    if kind in ("starts", "ends", "regex"):
        pattern = {"starts": f"^{re.escape(node[2])}", "ends": f"{re.escape(node[2])}$"}.get(kind, node[2])
        return {node[1]: {"$regex": pattern}}
    return {node[1]: {"$exists": kind == "exists"}}


# --- the engines -----------------------------------------------------------------------------


def engines(segments: dict[str, Node]) -> dict[str, Evaluate]:
    compiled = CompiledSegments({name: to_rule(node) for name, node in segments.items()})
    contexts = [
        EvaluationContext(t, f"user-{i}", NOW, c)
        for i, (t, c) in enumerate(zip(PROFILES, EVENT_COUNTS, strict=True))
    ]
    functions = _hand_written_functions(segments)
    flagsmith: Any = importlib.import_module("flag_engine.segments.evaluator")
    flagsmith_segments = [to_flagsmith(name, node) for name, node in segments.items()]
    flagsmith_contexts = [
        {
            "environment": {"key": "bench", "name": "bench"},
            "identity": {"identifier": f"user-{i}", "key": f"bench_user-{i}", "traits": _flat_traits(t, c)},
        }
        for i, (t, c) in enumerate(zip(PROFILES, EVENT_COUNTS, strict=True))
    ]
    growthbook: Any = importlib.import_module("growthbook.core")
    conditions = [(name, to_growthbook(node)) for name, node in segments.items()]
    attributes = [
        {**t, **{_event_trait(n, d): c.get((n, d), 0) for n, d in EVENTS}}
        for t, c in zip(PROFILES, EVENT_COUNTS, strict=True)
    ]
    is_in = flagsmith.is_context_in_segment
    eval_condition = growthbook.evalCondition

    def segmentd(i: int) -> list[str]:
        ctx = EvaluationContext(PROFILES[i], f"user-{i}", NOW, EVENT_COUNTS[i], {})
        return compiled.evaluate(ctx)

    return {
        "segmentd (context per call)": segmentd,
        "segmentd (context reused)": lambda i: compiled.evaluate(contexts[i]),
        "hand-written closures": lambda i: [n for n, f in functions if f(PROFILES[i], EVENT_COUNTS[i])],
        "flagsmith-flag-engine": lambda i: [
            s["name"] for s in flagsmith_segments if is_in(flagsmith_contexts[i], s)
        ],
        "growthbook evalCondition": lambda i: [n for n, c in conditions if eval_condition(attributes[i], c)],
    }


def check_agreement(evaluators: dict[str, Evaluate]) -> list[list[str]]:
    expected = [evaluators["hand-written closures"](i) for i in range(len(PROFILES))]
    for name, evaluate in evaluators.items():
        got = [evaluate(i) for i in range(len(PROFILES))]
        if got != expected:
            raise SystemExit(f"{name} disagrees with the hand-written closures:\n{got}\n{expected}")
    return expected


def _calls_per_second(evaluate: Evaluate, seconds: float) -> float:
    profiles = range(len(PROFILES))
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            for i in profiles:
                evaluate(i)
        calls += 20 * len(PROFILES)
    return calls / elapsed


def time_engines(evaluators: dict[str, Evaluate], rounds: int, seconds: float) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in evaluators}
    order = list(evaluators)
    for round_number in range(rounds):
        for name in order[round_number % len(order) :] + order[: round_number % len(order)]:
            samples[name].append(_calls_per_second(evaluators[name], seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def compile_times(segments: dict[str, Node], repeats: int = 20) -> tuple[float, float]:
    rules = {name: to_rule(node) for name, node in segments.items()}
    for rule in rules.values():
        validate_rule(rule)
    changed_name, first = next(iter(rules.items()))
    assert isinstance(first, Group)
    changed = {**rules, changed_name: Group("any", first.rules)}
    fresh, incremental = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        previous = CompiledSegments(rules)
        fresh.append(time.perf_counter() - start)
        start = time.perf_counter()
        recompiled = CompiledSegments(changed, previous=previous)
        incremental.append(time.perf_counter() - start)
        assert recompiled.regenerated == (changed_name,)
    return statistics.median(fresh) * 1000, statistics.median(incremental) * 1000


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--show-hand-written", action="store_true")
    args = parser.parse_args(argv)
    segments = generate_segments(args.segments)
    if args.show_hand_written:
        print(hand_written_module(segments))
        return
    evaluators = engines(segments)
    members = check_agreement(evaluators)
    print(
        f"python {platform.python_version()}, {args.segments} segments, {len(PROFILES)} profiles,"
        f" members per profile {[len(m) for m in members]}; all engines agree"
    )
    medians = time_engines(evaluators, args.rounds, args.seconds)
    baseline = medians["hand-written closures"]
    print(f"{'engine':<28} {'calls/s':>10} {'vs hand-written':>16}")
    for name, rate in medians.items():
        print(f"{name:<28} {rate:>10,.0f} {rate / baseline:>15.2f}x")
    fresh, incremental = compile_times(segments)
    print(
        f"compile {args.segments} segments: fresh {fresh:.1f} ms, recompiled (1 changed) {incremental:.1f} ms"
    )


if __name__ == "__main__":
    main()
