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

gRPC also cancels a handler whose deadline passes, and where its cancellation reaches, it is
the one that stops the statement (the store's timer, a moment later, then stays silent: see
``GRACE_SECONDS``); the store's bound does not depend on it, answers a call that reaches the
store already late without touching the database, and tells an expiry apart from an outage.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from types import TracebackType
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


#: How long after the deadline the store's own bound fires. gRPC cancels a handler at its
#: deadline, and that one cancellation is what should stop the statement: a second one, landing
#: while the connection is still being cleaned up after the first, makes the pool close the
#: connection with the cancel request to PostgreSQL still unsent. The store's bound is for
#: work gRPC's cancellation does not reach, so it waits this long and never cancels twice.
GRACE_SECONDS = 0.25


class within_call_deadline:  # lower case: used as ``async with``, like asyncio.timeout
    """Bound the block by the current call's deadline (plus :data:`GRACE_SECONDS`).

    Raises:
        DeadlineExceeded: the deadline had passed, or passed during the block (whose
            statement is then cancelled).
    """

    __slots__ = ("_fired", "_handle", "_task")

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._fired = False

    async def __aenter__(self) -> None:
        deadline = _DEADLINE.get()
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            raise DeadlineExceeded("the call's deadline had passed before its database work began")
        self._task = asyncio.current_task()
        self._handle = loop.call_at(deadline + GRACE_SECONDS, self._expire)

    def _expire(self) -> None:
        if self._task is None or self._task.cancelling():
            return  # already being cancelled (gRPC's own deadline): one cancellation only
        self._fired = True
        self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        # Our cancellation, and no one else's: whatever it became on its way out (a driver may
        # wrap it), the answer is the deadline. A block that finished anyway keeps its result.
        if self._fired and self._task is not None and self._task.uncancel() == 0 and kind is not None:
            raise DeadlineExceeded("the call's deadline passed during its database work") from None


def detached(coroutine: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    """Run ``coroutine`` as a task free of the current call's deadline.

    A task copies its creator's context: work shared by every caller (a percentile scan, a
    catalogue version check) would otherwise stop at the deadline of whichever call started it.
    """
    context = contextvars.copy_context()
    context.run(_DEADLINE.set, None)
    return asyncio.get_running_loop().create_task(coroutine, context=context)
