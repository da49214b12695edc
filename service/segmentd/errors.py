"""Domain errors of segmentd.

Every error the service raises on purpose is a ``SegmentError``; the gRPC layer maps
each class to one status code (``service/segmentd/api/errors.py``), so nothing here knows grpc.

    SegmentError
    ├── InvalidArgument          a request field is malformed      -> INVALID_ARGUMENT
    │   └── InvalidRule          a rule tree is invalid            -> INVALID_ARGUMENT
    ├── NotFound                                                   -> NOT_FOUND
    │   ├── SegmentNotFound
    │   ├── UserNotFound
    │   └── UserListNotFound
    ├── AlreadyExists                                              -> ALREADY_EXISTS
    │   ├── SegmentAlreadyExists
    │   └── UserListAlreadyExists
    ├── FailedPrecondition                                         -> FAILED_PRECONDITION
    │   ├── SegmentInUse         other segments still reference it
    │   └── UserListInUse        segments still test it (in_list)
    ├── Aborted                                                    -> ABORTED
    │   ├── EtagMismatch         optimistic-concurrency conflict
    │   └── UserListBusy         long readers kept a list's tables locked
    ├── StoreUnavailable         the database does not answer      -> UNAVAILABLE
    ├── DeadlineExceeded         the call's deadline passed        -> DEADLINE_EXCEEDED
    └── ResourceExhausted        no connection free in time        -> RESOURCE_EXHAUSTED
"""

from __future__ import annotations

from collections.abc import Iterable


class SegmentError(Exception):
    """Base class of every error segmentd raises on purpose."""


class InvalidArgument(SegmentError):
    """A request field is malformed; ``field`` names it (e.g. ``segment.name``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidRule(InvalidArgument):
    """A rule tree is invalid; ``field`` is the path of the offending node."""


class NotFound(SegmentError):
    """The named resource does not exist."""


class SegmentNotFound(NotFound):
    """No segment has this name (or this version)."""


class UserNotFound(NotFound):
    """No profile has this user id."""


class UserListNotFound(NotFound):
    """No user list has this name."""


class AlreadyExists(SegmentError):
    """The resource to create exists already."""


class SegmentAlreadyExists(AlreadyExists):
    """A segment with this name exists already."""


class UserListAlreadyExists(AlreadyExists):
    """A user list with this name exists already."""


class FailedPrecondition(SegmentError):
    """The system is not in the state the operation requires."""


class SegmentInUse(FailedPrecondition):
    """The segment is still referenced by other segments; ``referrers`` names them."""

    def __init__(self, name: str, referrers: Iterable[str]) -> None:
        self.name = name
        self.referrers = tuple(sorted(referrers))
        super().__init__(f"segment {name!r} is referenced by {', '.join(map(repr, self.referrers))}")


class UserListInUse(FailedPrecondition):
    """The user list is tested by segments (``in_list``); ``referrers`` names them."""

    def __init__(self, name: str, referrers: Iterable[str]) -> None:
        self.name = name
        self.referrers = tuple(sorted(referrers))
        super().__init__(
            f"user list {name!r} is referenced by segments {', '.join(map(repr, self.referrers))}"
        )


class Aborted(SegmentError):
    """The operation lost a concurrency race and may be retried."""


class EtagMismatch(Aborted):
    """The etag sent is not the current one: someone else changed the resource."""


class UserListBusy(Aborted):
    """Readers kept a list's tables locked for as long as a change may wait to swap them."""


class StoreUnavailable(SegmentError):
    """The database does not answer; the verdict is unknown, never "not a member"."""


class DeadlineExceeded(SegmentError):
    """The call's deadline passed before its database work could end; that work was cancelled.

    As with any cancelled call, a write may still have committed just before.
    """


class ResourceExhausted(SegmentError):
    """Every connection this kind of call may use stayed busy for the acquire timeout.

    The database is fine; the service is at capacity. Retrying later (with backoff) is safe.
    """
