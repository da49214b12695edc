"""Running the store-side commands' work: an unreachable database is one line, never a traceback.

``migrate``, ``serve``, ``demo`` and ``events prune`` then print one line on stderr and exit
with status 3, as the client commands do when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from segmentd.cli.common import EXIT_UNREACHABLE, fail
from segmentd.errors import StoreUnavailable

_T = TypeVar("_T")


def run_on_store(work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` to its end; exit 3 naming the failure when the database cannot be reached."""
    try:
        return asyncio.run(work)
    except StoreUnavailable as exc:
        fail(EXIT_UNREACHABLE, f"cannot reach the database: {exc}")
