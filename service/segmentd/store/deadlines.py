"""A call's deadline, carried to its database work: the store stops when the caller has given up.

    call_deadline(remaining_s)     the gRPC layer, around each handler: "this call has N s left"
    within_call_deadline()         the store, around each operation: bounded by what is left
    detached(coroutine)            a task doing work for every caller, bounded by no one's deadline

The deadline travels in a context variable, so no signature between the servicer and the
repository changes, and reading it costs no round trip: the bound is a timer in the service,
not a ``SET LOCAL statement_timeout`` (which needs a transaction, and so two more round trips
on the one-statement, autocommit cache miss of ``EvaluateUser``). When the timer fires, the
statement's task is cancelled, asyncpg sends PostgreSQL a cancel request, the statement ends
there too, and the caller gets ``DeadlineExceeded``. PostgreSQL's own ``statement_timeout``
stays the net for calls without a deadline and for a service that cannot reach the database.

gRPC also cancels a handler whose deadline passes; this bound does not depend on it, and it
tells the expiry apart from an outage (a cancelled statement is SQLSTATE 57014, class 57,
which would otherwise read as "database unavailable").
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from segmentd.errors import DeadlineExceeded

_T = TypeVar("_T")

# The loop time (``loop.time()``) by which the current call must end; None: no deadline.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "segmentd_call_deadline", default=None
)


def call_deadline(remaining_s: float | None) -> float | None:
    """Make ``remaining_s`` from now the current call's deadline; return the previous one.

    Restore it with :func:`restore_deadline`. A plain value rather than a token: an async
    generator handler can be closed from another context, where a token would not reset.
    """
    previous = _DEADLINE.get()
    _DEADLINE.set(None if remaining_s is None else asyncio.get_running_loop().time() + remaining_s)
    return previous


def restore_deadline(previous: float | None) -> None:
    """Put back the deadline :func:`call_deadline` returned."""
    _DEADLINE.set(previous)


def remaining_seconds() -> float | None:
    """Return how long the current call has left (None: no deadline; may be negative)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


@asynccontextmanager
async def within_call_deadline() -> AsyncIterator[None]:
    """Bound the block by the current call's deadline.

    Raises:
        DeadlineExceeded: the deadline had passed, or passed during the block (whose
            statement is then cancelled).
    """
    deadline = _DEADLINE.get()
    if deadline is None:
        yield
        return
    if deadline <= asyncio.get_running_loop().time():
        raise DeadlineExceeded("the call's deadline had passed before its database work began")
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except TimeoutError:
        raise DeadlineExceeded("the call's deadline passed during its database work") from None


def detached(coroutine: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    """Run ``coroutine`` as a task free of the current call's deadline.

    A task copies its creator's context: work shared by every caller (a percentile scan, a
    catalogue version check) would otherwise stop at the deadline of whichever call started it.
    """
    context = contextvars.copy_context()
    context.run(_DEADLINE.set, None)
    return asyncio.get_running_loop().create_task(coroutine, context=context)
