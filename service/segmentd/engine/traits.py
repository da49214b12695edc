"""Reading a profile's traits: attribute paths, the missing sentinel and JSON type tests.

A trait is looked up by a dotted path; anything that stops the walk (a key that is not
there, a step through a non-object) and a JSON ``null`` all give the one sentinel `MISSING`,
so operators only ever test ``value is MISSING``.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Final, TypeGuard

from segmentd.engine.rules import JsonValue


class Missing(enum.Enum):
    """The type of `MISSING`; a one-member enum so type checkers narrow ``is MISSING``."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        """Return ``MISSING``."""
        return "MISSING"


#: The value of an attribute that is absent or JSON ``null``.
MISSING: Final = Missing.MISSING


def split_path(attribute: str) -> tuple[str, ...]:
    """Split a dotted attribute path into its steps: ``"company.size"`` -> ``("company", "size")``."""
    return tuple(attribute.split("."))


def lookup(traits: Mapping[str, JsonValue], path_parts: Sequence[str]) -> JsonValue | Missing:
    """Return the trait at ``path_parts``, or `MISSING` if it is absent or ``null``."""
    value: JsonValue | Missing = traits
    for part in path_parts:
        if not isinstance(value, Mapping):
            return MISSING
        value = value.get(part, MISSING)
    return MISSING if value is None else value


def is_number(value: object) -> TypeGuard[int | float]:
    """Tell whether ``value`` is a JSON number; ``True`` and ``False`` are not numbers."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """Tell whether ``value`` is a number a double can hold: not NaN, not infinite, not too large."""
    if isinstance(value, int) and not isinstance(value, bool):
        # Compared as an exact integer: math.isfinite would overflow on a huge int.
        return abs(value) <= sys.float_info.max
    return isinstance(value, float) and math.isfinite(value)


def is_scalar(value: object) -> TypeGuard[str | int | float | bool]:
    """Tell whether ``value`` is a string, a number or a boolean."""
    return isinstance(value, str | int | float)


def is_list(value: object) -> TypeGuard[Sequence[JsonValue]]:
    """Tell whether ``value`` is a JSON list (a ``list`` or ``tuple``, never a string)."""
    return isinstance(value, list | tuple)


def describe_type(value: object) -> str:
    """Name the JSON type of ``value`` for error messages: ``"a string"``, ``"null"``..."""
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number" if is_finite_number(value) else "a non-finite number"
    if isinstance(value, str):
        return "a string"
    if is_list(value):
        return "a list"
    return "an object"
