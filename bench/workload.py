"""A deterministic catalogue and population for the hot-path benchmarks.

segment_definitions(100)  -> segments in the segment-definition JSON form: ~5 conditions
                             each, nested groups, mixed operators, one event condition
population(1000)          -> (user_id, traits) pairs whose traits those segments test
events(users)             -> (user_id, name, days ago, count) to record
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

SEED: Final = 20_261_201
PLANS: Final = ("free", "trial", "starter", "pro", "enterprise")
COUNTRIES: Final = ("US", "DE", "FR", "GB", "BR", "IN", "JP", "ES")
EVENT_NAMES: Final = ("login", "invite_sent", "support_ticket")
WINDOWS: Final = (7, 14, 30)
EMAIL_DOMAINS: Final = ("example.com", "corp.io")
NOW: Final = datetime.now(UTC).replace(microsecond=0)

Condition = dict[str, Any]


def _condition(rng: random.Random) -> Condition:
    return rng.choice(_CONDITIONS)(rng)


_CONDITIONS: Final[Sequence[Callable[[random.Random], Condition]]] = (
    lambda rng: {"attribute": "plan", "operator": "EQUALS", "value": rng.choice(PLANS)},
    lambda rng: {"attribute": "plan", "operator": "IN", "value": rng.sample(PLANS, 2)},
    lambda rng: {"attribute": "mrr", "operator": "GREATER_THAN_OR_EQUALS", "value": rng.randrange(0, 500)},
    lambda rng: {"attribute": "mrr", "operator": "LESS_THAN", "value": rng.randrange(50, 1000)},
    lambda rng: {"attribute": "country", "operator": "IN", "value": rng.sample(COUNTRIES, 3)},
    lambda rng: {
        "attribute": "company.size",
        "operator": "BETWEEN",
        "value": sorted(rng.sample(range(1, 5000), 2)),
    },
    lambda rng: {"attribute": "seats_used_pct", "operator": "GREATER_THAN", "value": rng.randrange(10, 95)},
    lambda rng: {"attribute": "nps", "operator": "LESS_THAN_OR_EQUALS", "value": rng.randrange(0, 10)},
    lambda rng: {"attribute": "email", "operator": "ENDS_WITH", "value": rng.choice(("@example.com", ".io"))},
    lambda rng: {"attribute": "email", "operator": "CONTAINS", "value": "sales", "ignore_case": True},
    lambda rng: {"attribute": "tags", "operator": "CONTAINS", "value": rng.choice(("beta", "vip", "churn"))},
    lambda rng: {
        "attribute": "app_version",
        "operator": "SEMVER_LESS_THAN",
        "value": f"2.{rng.randrange(10)}.0",
    },
    lambda rng: {"attribute": "signup", "operator": "WITHIN_LAST_DAYS", "value": rng.choice((7, 30, 90))},
    lambda rng: {
        "attribute": "last_seen",
        "operator": "BEFORE",
        "value": (NOW - timedelta(days=14)).isoformat(),
    },
    lambda rng: {"attribute": "nps", "operator": "EXISTS"},
    lambda rng: {"attribute": "company.name", "operator": "MATCHES_REGEX", "value": "^(acme|globex)"},
)


def _leaf(rng: random.Random) -> dict[str, Any]:
    return {"condition": _condition(rng)}


def _rule(rng: random.Random, index: int) -> dict[str, Any]:
    """``all`` of a few conditions, a nested ``any`` (or ``none``) group and one event condition."""
    event = {
        "name": EVENT_NAMES[index % len(EVENT_NAMES)],
        "operator": "GREATER_THAN_OR_EQUALS",
        "count": rng.randrange(1, 4),
        "within_days": WINDOWS[index % len(WINDOWS)],
    }
    nested_kind = "none" if index % 4 == 0 else "any"
    nested = {nested_kind: {"rules": [_leaf(rng), _leaf(rng)]}}
    rules = [_leaf(rng), _leaf(rng), nested, {"event": event}]
    rng.shuffle(rules)
    return {"all": {"rules": rules}}


def segment_definitions(count: int = 100, seed: int = SEED) -> list[dict[str, Any]]:
    """Return ``count`` segments in the segment-definition JSON form."""
    rng = random.Random(seed)
    return [{"name": f"segment-{i:03}", "rule": _rule(rng, i)} for i in range(count)]


def traits(rng: random.Random) -> dict[str, Any]:
    """One synthetic profile's traits."""
    return {
        "plan": rng.choice(PLANS),
        "mrr": rng.randrange(0, 1000),
        "country": rng.choice(COUNTRIES),
        "company": {"size": rng.randrange(1, 5000), "name": rng.choice(("acme inc", "globex", "initech"))},
        "seats_used_pct": rng.randrange(0, 101),
        "nps": rng.randrange(0, 11),
        "email": f"{rng.choice(('sales', 'ops', 'dev'))}{rng.randrange(999)}@{rng.choice(EMAIL_DOMAINS)}",
        "tags": rng.sample(("beta", "vip", "churn", "new"), rng.randrange(0, 3)),
        "app_version": f"{rng.randrange(1, 4)}.{rng.randrange(10)}.{rng.randrange(5)}",
        "signup": (NOW - timedelta(days=rng.randrange(0, 400))).isoformat(),
        "last_seen": (NOW - timedelta(days=rng.randrange(0, 60))).isoformat(),
    }


def population(count: int = 1000, seed: int = SEED) -> list[tuple[str, dict[str, Any]]]:
    """Return ``count`` profiles as ``(user_id, traits)``."""
    rng = random.Random(seed + 1)
    return [(f"user-{i:07}", traits(rng)) for i in range(count)]


def events(user_ids: Sequence[str], seed: int = SEED) -> Iterator[tuple[str, str, int, int]]:
    """Yield ``(user_id, event name, days ago, count)`` for a few weeks of activity."""
    rng = random.Random(seed + 2)
    for user_id in user_ids:
        for name in EVENT_NAMES:
            for _ in range(rng.randrange(0, 4)):
                yield user_id, name, rng.randrange(0, 40), rng.randrange(1, 3)
