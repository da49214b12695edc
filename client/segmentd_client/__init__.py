"""Python client for segmentd, the service that answers which segments a user belongs to.

    Client / AsyncClient     typed calls, deadlines, retries, errors as exceptions
    segmentd_client.types    the plain values they return (Segment, Profile, Evaluation, ...)
    segmentd_client.errors   SegmentdError and its subclasses, one per kind of failure
    segmentd_client.definitions  segment definition files (JSON, YAML), dependency order
    segmentd_client.openfeature  an OpenFeature hook (extra ``segmentd-client[openfeature]``)
    segmentd_client.v1       the generated stubs, for anything the typed client lacks

``segmentd_client.v1`` holds the stubs generated from ``proto/segmentd/v1`` (messages,
gRPC stubs and servicer bases, with typed ``.pyi`` stubs); regenerate them with
``uv run python scripts/gen_protos.py``, never edit them by hand.
"""

from segmentd_client._channel import DEFAULT_TARGET, TLS
from segmentd_client.aio import AsyncClient
from segmentd_client.client import Client
from segmentd_client.errors import (
    Aborted,
    AlreadyExists,
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SegmentdError,
    Unauthenticated,
    Unavailable,
)
from segmentd_client.stats import Comparison, GroupStats, SegmentOverlap, SegmentStats, TraitStats
from segmentd_client.types import (
    ApplyResult,
    Evaluation,
    Event,
    Explanation,
    ExplanationNode,
    ImportProblem,
    ImportResult,
    MemberChunk,
    Profile,
    Segment,
)
from segmentd_client.user_lists import UserList

__all__ = [
    "Comparison",
    "GroupStats",
    "SegmentOverlap",
    "SegmentStats",
    "TraitStats",
    "UserList",
    "DEFAULT_TARGET",
    "TLS",
    "Aborted",
    "AlreadyExists",
    "ApplyResult",
    "AsyncClient",
    "Client",
    "Conflict",
    "DeadlineExceeded",
    "Evaluation",
    "Event",
    "Explanation",
    "ExplanationNode",
    "FailedPrecondition",
    "ImportProblem",
    "ImportResult",
    "InvalidArgument",
    "MemberChunk",
    "NotFound",
    "PermissionDenied",
    "Profile",
    "Segment",
    "SegmentdError",
    "Unauthenticated",
    "Unavailable",
]
