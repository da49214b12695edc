"""Deterministic synthetic profiles and events for ``segmentd demo``.

Every trait and event name the starter library (``examples/segments/starter/``) reads is
generated, with shares chosen so that every starter segment has members and none has all:

    traits   plan, mrr, seats_used_pct, nps, onboarding_completed, margin, signup_time, company.size
    events   login, report_created, invite_sent, support_ticket, payment   (the last 28 UTC days)
    created  when the profile was first stored: 0 to 400 days ago (the ``$created`` pseudo-event)

The same seed and the same ``today`` give the same data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

#: Days of events generated, ending today.
EVENT_DAYS: Final = 28
#: The prefix of every demo user id, which is how the demo recognises its own data.
USER_PREFIX: Final = "demo-"

_PLANS: Final = (("trial", 15), ("free", 35), ("starter", 20), ("pro", 20), ("enterprise", 10))
_MRR_BY_PLAN: Final = {"starter": (20, 49), "pro": (50, 300), "enterprise": (500, 3000)}
# Activity levels: (share %, logins per day, reports per day)
_LEVELS: Final = {
    "inactive": (15, 0.0, 0.0),
    "light": (40, 0.15, 0.05),
    "regular": (38, 0.6, 0.4),
    "power": (7, 1.5, 1.2),
}


@dataclass(frozen=True, slots=True)
class DemoProfile:
    """One synthetic user: traits, first-stored time and per-day event counts."""

    user_id: str
    traits: dict[str, Any]
    create_time: datetime
    events: dict[tuple[str, date], int]


def demo_profiles(count: int, seed: int, today: date) -> list[DemoProfile]:
    """Return ``count`` synthetic profiles, the same for the same ``seed`` and ``today``."""
    rng = random.Random(seed)
    return [_profile(rng, f"{USER_PREFIX}{index:05d}", today) for index in range(1, count + 1)]


def _profile(rng: random.Random, user_id: str, today: date) -> DemoProfile:
    plan = rng.choices([name for name, _ in _PLANS], [weight for _, weight in _PLANS])[0]
    age_days = rng.randrange(0, 15) if rng.random() < 0.12 else rng.randrange(15, 400)
    created = datetime.combine(today - timedelta(days=age_days), datetime.min.time(), tzinfo=UTC)
    created += timedelta(seconds=rng.randrange(86_400))
    traits: dict[str, Any] = {
        "plan": plan.upper() if rng.random() < 0.05 else plan,  # some systems shout
        "seats_used_pct": rng.randrange(0, 101),
        "onboarding_completed": rng.random() < 0.75,
        "signup_time": created.isoformat().replace("+00:00", "Z"),
        "company": {"size": rng.choice((1, 5, 12, 40, 150, 800, 5000))},
    }
    if plan in _MRR_BY_PLAN:
        traits["mrr"] = rng.randrange(*_MRR_BY_PLAN[plan])
    if rng.random() < 0.7:
        traits["nps"] = rng.choices(range(11), [3, 2, 2, 3, 3, 5, 6, 10, 14, 16, 12])[0]
    level = rng.choices(list(_LEVELS), [share for share, _, _ in _LEVELS.values()])[0]
    events = _events(rng, level, plan, age_days, today)
    tickets = sum(count for (name, _), count in events.items() if name == "support_ticket")
    traits["margin"] = round(traits.get("mrr", 0) * rng.uniform(0.3, 0.8) - 15 * tickets, 2)
    return DemoProfile(user_id, traits, created, events)


def _events(
    rng: random.Random, level: str, plan: str, age_days: int, today: date
) -> dict[tuple[str, date], int]:
    _, logins, reports = _LEVELS[level]
    events: dict[tuple[str, date], int] = {}
    # An inactive user was last seen more than 14 days ago, if ever.
    first_quiet_day = 14 if level == "inactive" else 0
    for days_ago in range(first_quiet_day, min(EVENT_DAYS, age_days + 1)):
        day = today - timedelta(days=days_ago)
        daily = {
            "login": _poisson(rng, logins * (0.3 if level == "inactive" else 1)),
            "report_created": _poisson(rng, reports),
            "invite_sent": _poisson(rng, 0.15 if level in ("regular", "power") else 0.02),
            "support_ticket": _poisson(rng, 0.12 if rng.random() < 0.2 else 0.01),
            "payment": int(plan in _MRR_BY_PLAN and days_ago == age_days % 30),
        }
        events.update(((name, day), count) for name, count in daily.items() if count)
    return events


def _poisson(rng: random.Random, mean: float) -> int:
    """A small Poisson draw (Knuth's method), so counts vary like real activity does."""
    if mean <= 0:
        return 0
    limit, product, count = pow(2.718281828459045, -mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count
