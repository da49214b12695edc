"""Pseudo-events: event names a rule may count that no one records.

    *          every recorded event of the user, whatever its name ("inactive for 14 days")
    $created   1 on the UTC day the profile was first stored, 0 on every other day
               ("new users" when no signup trait exists)

They are read like any event, by ``(name, within_days)`` from the evaluation context; the
store computes them. Names starting with ``$`` are reserved for pseudo-events, so neither ``*``
nor any ``$`` name can be recorded, and a rule may only count the ``$`` names listed here.
"""

from __future__ import annotations

from typing import Final

#: Counts every recorded event of the user in the window.
ANY_EVENT: Final = "*"
#: Counts 1 when the profile was first stored on a day of the window.
PROFILE_CREATED: Final = "$created"
#: The pseudo-events a rule may count.
PSEUDO_EVENTS: Final = frozenset({ANY_EVENT, PROFILE_CREATED})
#: The prefix of the names reserved for pseudo-events.
RESERVED_PREFIX: Final = "$"


def is_reserved_event_name(name: str) -> bool:
    """Tell whether ``name`` is reserved for pseudo-events, so cannot be recorded."""
    return name == ANY_EVENT or name.startswith(RESERVED_PREFIX)


def describe_event(name: str) -> str:
    """Return how an explanation names the events counted under ``name``."""
    if name == ANY_EVENT:
        return "events of any name"
    if name == PROFILE_CREATED:
        return "profile first stored"
    return f"{name!r} events"
