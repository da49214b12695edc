"""``import_decoding`` decides every import message as the generic path does.

The generic path is, profile by profile, a NUL walk over the traits (``struct_holds_nul``: a
NUL makes the profile invalid), then ``struct_to_dict`` and the store's checks: for each
profile the same traits or the same error.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmentd.api.import_decoding import decode_profiles
from segmentd.api.mappers import struct_to_dict
from segmentd.api.strings import NUL, NUL_MESSAGE, struct_holds_nul
from segmentd.errors import InvalidArgument
from segmentd.importer import check_profile
from segmentd.store.checks import MAX_TRAITS_DEPTH
from segmentd_client.v1 import profiles_pb2

_text = st.text(alphabet=st.sampled_from(["a", "é", NUL, "\x01", '"', "\\", "."]), max_size=3)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()  # NaN and infinities too: Structs can hold them, JSON cannot
    | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=10,
)


def _nested(depth: int, leaf: Any) -> dict[str, Any]:
    """Traits whose innermost container is at ``depth`` (the traits object is depth 1)."""
    value: Any = leaf
    for level in range(depth - 1):
        value = {"k": value} if level % 2 else [value]
    return {"k": value}


def _message(profiles: list[tuple[str, dict[str, Any]]]) -> profiles_pb2.ImportProfilesRequest:
    request = profiles_pb2.ImportProfilesRequest()
    for user_id, traits in profiles:
        request.profiles.add(user_id=user_id).traits.update(traits)
    return request


def _generic(request: profiles_pb2.ImportProfilesRequest) -> Any:
    """What the generic path makes of each profile of the message."""
    outcomes: list[Any] = []
    for profile in request.profiles:
        try:
            if struct_holds_nul(profile.traits):
                raise InvalidArgument("traits", NUL_MESSAGE)
            outcomes.append(check_profile(profile.user_id, struct_to_dict(profile.traits)))
        except InvalidArgument as error:
            outcomes.append(("invalid", error.field, error.message))
    return outcomes


def _fused(request: profiles_pb2.ImportProfilesRequest) -> Any:
    outcomes: list[Any] = []
    for user_id, traits in decode_profiles(request):
        try:
            outcomes.append(check_profile(user_id, traits))
        except InvalidArgument as error:
            outcomes.append(("invalid", error.field, error.message))
    return outcomes


def _same(generic: Any, fused: Any) -> bool:
    # repr: NaN never equals itself, and numbers must stay floats
    return repr(generic) == repr(fused)


@given(
    profiles=st.lists(
        st.tuples(
            st.sampled_from(["u1", "u2", "", "u\x00", "u\x01"]), st.dictionaries(_text, _json, max_size=4)
        ),
        max_size=4,
    )
)
def test_decode_profiles__any_message__decided_as_the_generic_path(profiles):
    # Given
    request = _message(profiles)

    # When
    fused = _fused(request)

    # Then
    assert _same(_generic(request), fused)


@pytest.mark.parametrize("depth", [MAX_TRAITS_DEPTH - 1, MAX_TRAITS_DEPTH, MAX_TRAITS_DEPTH + 1])
@pytest.mark.parametrize("leaf", [1.0, "x", NUL, math.nan, {}, []])
def test_decode_profiles__deep_traits__decided_as_the_generic_path(depth, leaf):
    # Given: NUL, NaN or a container at the depth limit, after a profile that is fine
    request = _message([("ok", {"a": 1.0}), ("deep", _nested(depth, leaf))])

    # When
    fused = _fused(request)

    # Then
    assert _same(_generic(request), fused)


def test_decode_profiles__nul__that_profile_invalid_the_others_kept():
    # Given: a NUL in a user id, and in traits beyond a key with a quote (where the walk stops)
    request = _message([("a", {"n": 1.0}), ("b\x00", {}), ("c", {'q"': 1.0, "z": "\x00"})])

    # When
    outcomes = _fused(request)

    # Then
    assert outcomes[0] == check_profile("a", {"n": 1.0})
    assert outcomes[1][:2] == ("invalid", "user_id")
    assert outcomes[2] == ("invalid", "traits", NUL_MESSAGE)
