"""Domain errors to gRPC status codes, in one place at the transport boundary.

Every handler runs inside :func:`abort_on_domain_error`: a ``SegmentError`` becomes the
status code of its class (the nearest entry of ``_STATUS_BY_ERROR`` along the MRO), and
anything unexpected becomes ``INTERNAL`` with a generic message and is logged — a client
never sees ``UNKNOWN`` or a stack trace.
"""

from __future__ import annotations

import logging
from types import TracebackType

import grpc
from grpc import aio

from segmentd import errors
from segmentd.store.deadlines import call_deadline, restore_deadline

log = logging.getLogger(__name__)

_STATUS_BY_ERROR: dict[type[errors.SegmentError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


#: Longest status message sent: gRPC clients refuse trailers over 8-16 KiB (the caller would
#: see RESOURCE_EXHAUSTED instead of the real code), and no message needs more.
MAX_DETAILS_LENGTH = 1000


def bounded(details: str) -> str:
    """Return ``details`` cut to ``MAX_DETAILS_LENGTH`` characters (echoed input can be huge)."""
    if len(details) <= MAX_DETAILS_LENGTH:
        return details
    return details[: MAX_DETAILS_LENGTH - 13] + "… (truncated)"


def status_for(error: errors.SegmentError) -> grpc.StatusCode:
    """Return the status code for ``error``: that of its nearest mapped base class."""
    for cls in type(error).__mro__:
        status = _STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return grpc.StatusCode.INTERNAL


class abort_on_domain_error:  # lower case: used as ``async with``, like contextlib.suppress
    """Turn exceptions raised inside an ``async with`` block into a status on ``context``.

    A class rather than an ``@asynccontextmanager`` generator: it wraps every call, the hot
    path included, and entering it this way costs no generator and no task machinery.
    Inside the block the call's remaining deadline is the store's (``store.deadlines``).
    """

    __slots__ = ("_context", "_previous_deadline")

    def __init__(self, context: aio.ServicerContext[object, object]) -> None:
        self._context = context
        self._previous_deadline: float | None = None

    async def __aenter__(self) -> None:
        self._previous_deadline = call_deadline(self._context.time_remaining())

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        restore_deadline(self._previous_deadline)
        # Returns None, so nothing is ever suppressed (and type checkers know it).
        if error is None or isinstance(error, aio.AbortError) or not isinstance(error, Exception):
            return  # no error, a status the handler already set, or a cancellation
        if isinstance(error, errors.SegmentError):
            await self._context.abort(status_for(error), bounded(str(error)))  # raises AbortError
        else:
            log.error("unhandled error in a gRPC handler", exc_info=(kind, error, traceback))  # type: ignore[arg-type]
            await self._context.abort(grpc.StatusCode.INTERNAL, "internal error")
