"""Domain errors to gRPC status codes, in one place at the transport boundary.

Every handler runs inside :func:`abort_on_domain_error`: a ``SegmentError`` becomes the
status code of its class (the nearest entry of ``_STATUS_BY_ERROR`` along the MRO), and
anything unexpected becomes ``INTERNAL`` with a generic message and is logged — a client
never sees ``UNKNOWN`` or a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from grpc import aio

from segmentd import errors

log = logging.getLogger(__name__)

_STATUS_BY_ERROR: dict[type[errors.SegmentError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: errors.SegmentError) -> grpc.StatusCode:
    """Return the status code for ``error``: that of its nearest mapped base class."""
    for cls in type(error).__mro__:
        status = _STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return grpc.StatusCode.INTERNAL


@asynccontextmanager
async def abort_on_domain_error(context: aio.ServicerContext[object, object]) -> AsyncIterator[None]:
    """Turn exceptions raised inside the block into a status on ``context``."""
    try:
        yield
    except aio.AbortError:
        raise  # the handler already set a status
    except errors.SegmentError as exc:
        await context.abort(status_for(exc), str(exc))
    except Exception:
        log.exception("unhandled error in a gRPC handler")
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
