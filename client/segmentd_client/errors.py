"""Errors the client raises: one class per kind of failure, mapped from gRPC status codes.

    SegmentdError                 any call that failed; ``code`` and ``details`` from the server
    ├── InvalidArgument           INVALID_ARGUMENT: ``field`` names the offending request field
    ├── NotFound                  NOT_FOUND: no such segment, user or segment version
    ├── Conflict                  the resource changed or exists: read it again, then retry
    │   ├── AlreadyExists         ALREADY_EXISTS: a segment with this name exists
    │   └── Aborted               ABORTED: the etag sent is not the current one
    ├── FailedPrecondition        FAILED_PRECONDITION: e.g. deleting a segment others reference
    ├── ResourceExhausted         RESOURCE_EXHAUSTED: a message over the size limit
    ├── Unauthenticated           UNAUTHENTICATED: no API key, or an unknown one
    ├── PermissionDenied          PERMISSION_DENIED: the key may not do this
    ├── Unavailable               UNAVAILABLE: the server (or its database) does not answer
    ├── DeadlineExceeded          DEADLINE_EXCEEDED: the call's deadline passed
    ├── Cancelled                 CANCELLED: the call was cancelled
    └── ServerError               INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS, ...: a server bug

:func:`exception_class_for_grpc_status` is the table, as google-api-core's function of that
name; :func:`from_grpc_error` turns a ``grpc.RpcError`` into the matching exception, which keeps
the original as ``__cause__``.
"""

from __future__ import annotations

import re
from typing import Final

import grpc
from grpc import aio

# The server's INVALID_ARGUMENT messages read "<field path>: <why>", the path in the
# request's own terms: "segment.rule.all.rules[2].condition.value: must be a number".
_FIELD_AND_REASON: Final = re.compile(
    r"(?P<field>[A-Za-z_][\w]*(?:\[\d+\]|\.[A-Za-z_]\w*)*): (?P<reason>.*)", re.S
)


class SegmentdError(Exception):
    """A call to segmentd failed.

    Attributes:
        code: the gRPC status code of the failure.
        details: the server's message, for people.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, details: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(details)
        self.details = details
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.details}"


class InvalidArgument(SegmentdError):
    """The request was refused as malformed or over a server limit.

    Attributes:
        field: the path of the offending field (``segment.rule.all.rules[2].condition.value``),
            or ``""`` when the server named none.
        reason: what is wrong with it.
    """

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, details: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(details, code)
        match = _FIELD_AND_REASON.fullmatch(details)
        self.field = match["field"] if match else ""
        self.reason = match["reason"] if match else details


class NotFound(SegmentdError):
    """The named segment, user or version does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class Conflict(SegmentdError):
    """The resource exists already or changed meanwhile: read it again, then retry."""

    code = grpc.StatusCode.ABORTED


class AlreadyExists(Conflict):
    """A segment with this name exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(Conflict):
    """The etag sent is not the current one: someone else changed the segment."""

    code = grpc.StatusCode.ABORTED


class FailedPrecondition(SegmentdError):
    """The system is not in the state the call requires (a referenced segment, ...)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(SegmentdError):
    """A limit was hit, such as the largest message the server accepts."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthenticated(SegmentdError):
    """The call carried no valid credentials (API key)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(SegmentdError):
    """The credentials are valid but do not allow this call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(SegmentdError):
    """The server, or its database, does not answer; the call may be retried."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(SegmentdError):
    """The call's deadline passed before the server answered."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(SegmentdError):
    """The call was cancelled before it completed."""

    code = grpc.StatusCode.CANCELLED


class ServerError(SegmentdError):
    """The server failed in a way the caller cannot fix (a bug, an unimplemented call)."""

    code = grpc.StatusCode.INTERNAL


_EXCEPTION_CLASS_BY_CODE: Final[dict[grpc.StatusCode, type[SegmentdError]]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
}


def exception_class_for_grpc_status(code: grpc.StatusCode) -> type[SegmentdError]:
    """Return the exception class for a gRPC status code (``ServerError`` for the rest)."""
    return _EXCEPTION_CLASS_BY_CODE.get(code, ServerError)


def from_grpc_error(error: grpc.RpcError) -> SegmentdError:
    """Return the exception matching a failed call's status, its cause set to ``error``."""
    # A failed call raises an RpcError that is also a grpc.Call (sync) or an AioRpcError,
    # both of which carry the status; a bare RpcError says nothing more.
    code, details = grpc.StatusCode.UNKNOWN, ""
    if isinstance(error, grpc.Call | aio.AioRpcError):
        code, details = error.code(), error.details() or ""
    details = details or code.name
    exception = exception_class_for_grpc_status(code)(details, code)
    exception.__cause__ = error
    return exception


__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "Conflict",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "SegmentdError",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "exception_class_for_grpc_status",
    "from_grpc_error",
]
