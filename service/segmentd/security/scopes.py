"""Which scope each RPC needs: one table, keyed by full method name, denying what it lacks.

    evaluate         EvaluateUser, EvaluateProfile, BatchEvaluateUsers, ExplainEvaluation
    read             Get*/List*/Count*, ListSegmentMembers, GetSegmentStats, CompareSegments
    write:segments   CreateSegment, UpdateSegment, BatchUpdateSegments, DeleteSegment
    write:profiles   UpsertProfile, DeleteProfile, RecordEvents, ImportProfiles, user-list writes
    admin            every scope above (an operator's key)

A method missing from the table is refused to every key, ``admin`` included: a new RPC is
closed until someone decides who may call it. Health and reflection are open to everyone, so
orchestrators probe and tools discover without a key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

Scope = Literal["evaluate", "read", "write:segments", "write:profiles", "admin"]
EVALUATE: Final = "evaluate"
READ: Final = "read"
WRITE_SEGMENTS: Final = "write:segments"
WRITE_PROFILES: Final = "write:profiles"
ADMIN: Final = "admin"
#: Every scope a key may be given, in the order the README lists them.
SCOPES: Final[tuple[Scope, ...]] = (EVALUATE, READ, WRITE_SEGMENTS, WRITE_PROFILES, ADMIN)

_SEGMENTS = "/segmentd.v1.SegmentService/"
_PROFILES = "/segmentd.v1.ProfileService/"
_EVALUATION = "/segmentd.v1.EvaluationService/"
_USER_LISTS = "/segmentd.v1.UserListService/"

#: The scope each method needs. Statistics and user lists are named by DESIGN.md §3, so
#: their entries hold before their servicers exist. User-list writes take ``write:profiles``:
#: a list says which users are in it, data about users like their traits, and is filled by
#: the same jobs that import profiles; ``write:segments`` stays the right to change rules.
SCOPE_BY_METHOD: Final[dict[str, Scope]] = {
    f"{_SEGMENTS}CreateSegment": WRITE_SEGMENTS,
    f"{_SEGMENTS}GetSegment": READ,
    f"{_SEGMENTS}ListSegments": READ,
    f"{_SEGMENTS}UpdateSegment": WRITE_SEGMENTS,
    f"{_SEGMENTS}BatchUpdateSegments": WRITE_SEGMENTS,
    f"{_SEGMENTS}DeleteSegment": WRITE_SEGMENTS,
    f"{_PROFILES}UpsertProfile": WRITE_PROFILES,
    f"{_PROFILES}GetProfile": READ,
    f"{_PROFILES}DeleteProfile": WRITE_PROFILES,
    f"{_PROFILES}RecordEvents": WRITE_PROFILES,
    f"{_PROFILES}ImportProfiles": WRITE_PROFILES,
    f"{_EVALUATION}EvaluateUser": EVALUATE,
    f"{_EVALUATION}EvaluateProfile": EVALUATE,
    f"{_EVALUATION}BatchEvaluateUsers": EVALUATE,
    f"{_EVALUATION}ExplainEvaluation": EVALUATE,
    f"{_EVALUATION}ListSegmentMembers": READ,
    f"{_EVALUATION}CountSegmentMembers": READ,
    f"{_EVALUATION}GetSegmentStats": READ,
    f"{_EVALUATION}CompareSegments": READ,
    f"{_USER_LISTS}CreateUserList": WRITE_PROFILES,
    f"{_USER_LISTS}GetUserList": READ,
    f"{_USER_LISTS}ListUserLists": READ,
    f"{_USER_LISTS}DeleteUserList": WRITE_PROFILES,
    f"{_USER_LISTS}AddUserListMembers": WRITE_PROFILES,
    f"{_USER_LISTS}RemoveUserListMembers": WRITE_PROFILES,
    f"{_USER_LISTS}ReplaceUserListMembers": WRITE_PROFILES,
}

#: Services anyone may call without a key.
OPEN_SERVICES: Final = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


def is_open(full_method: str) -> bool:
    """Whether ``full_method`` (``/package.Service/Method``) may be called without a key."""
    service = full_method.lstrip("/").rpartition("/")[0]
    return service in OPEN_SERVICES


def required_scope(full_method: str) -> Scope | None:
    """Return the scope ``full_method`` needs, or ``None`` when no key may call it."""
    return SCOPE_BY_METHOD.get(full_method)


def grants(scopes: Iterable[str], full_method: str) -> bool:
    """Whether a key holding ``scopes`` may call ``full_method`` (``admin`` holds them all)."""
    needed = required_scope(full_method)
    if needed is None:
        return False
    held = frozenset(scopes)
    return needed in held or ADMIN in held


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    """Return the names in ``scopes`` that are not scopes, in their order."""
    return [scope for scope in scopes if scope not in SCOPES]
