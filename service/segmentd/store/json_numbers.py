"""Read JSON numbers back from PostgreSQL as the doubles that were written.

The API's numbers are doubles (``google.protobuf.Value``), written as their shortest
round-trip text (``1e+23``). PostgreSQL's ``jsonb`` keeps that as an exact decimal and
writes it back without an exponent: ``100000000000000000000000``. Parsed as a Python
``int``, that is not the double sent (``10**23 != 1e23``), so the Python evaluator and the
database would disagree (``x EQUALS 1e23``; a percentile threshold of ``-1e300``), while
SQLite, which keeps the text, agrees with both.

:func:`load_json` reads an integer literal of 2**53 or more in magnitude as the double whose
shortest text has exactly its value, when there is one: those are precisely the numbers a
double became on the way in. Any other integer (an exact integer no double equals, or one
beyond the double range) stays an ``int``, as written.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

#: Below this magnitude every integer is exactly a double: nothing to decide.
_EXACT_INTEGERS = 2**53


def _parse_int(text: str) -> int | float:
    number = int(text)
    if -_EXACT_INTEGERS < number < _EXACT_INTEGERS:
        return number
    try:
        double = float(number)
    except OverflowError:  # beyond the double range: it never was a double
        return number
    return double if Decimal(repr(double)) == number else number


def load_json(text: str | bytes) -> Any:
    """Parse a JSON document read from PostgreSQL, doubles restored (module docstring)."""
    return json.loads(text, parse_int=_parse_int)
