"""``import_decoding`` decides every import message as the generic path does.

The generic path is the decoding interceptor's NUL walk over the whole message, then
``struct_to_dict`` and the store's checks profile by profile: the same refusal of the
message (and its text), or for each profile the same traits or the same error.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmentd.api.import_decoding import decode_profiles
from segmentd.api.mappers import struct_to_dict
from segmentd.api.strings import NUL, NUL_MESSAGE, nul_field
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
    """What the generic path makes of the message: its refusal, or each profile's outcome."""
    field = nul_field(request)
    if field is not None:
        return ("refused", f"{field}: {NUL_MESSAGE}")
    outcomes: list[Any] = []
    for profile in request.profiles:
        try:
            outcomes.append(check_profile(profile.user_id, struct_to_dict(profile.traits)))
        except InvalidArgument as error:
            outcomes.append(("invalid", error.field, error.message))
    return outcomes


def _fused(request: profiles_pb2.ImportProfilesRequest) -> Any:
    try:
        profiles = decode_profiles(request)
    except InvalidArgument as refusal:
        return ("refused", str(refusal))
    outcomes: list[Any] = []
    for user_id, traits in profiles:
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


def test_decode_profiles__nul_after_an_invalid_profile__message_refused():
    # Given: a NaN in the first profile, a NUL in the second one's user id
    request = _message([("a", {"n": math.nan}), ("b\x00", {})])

    # When / Then
    with pytest.raises(InvalidArgument) as raised:
        decode_profiles(request)
    assert str(raised.value) == f"profiles[1].user_id: {NUL_MESSAGE}"


def test_decode_profiles__nul_beyond_an_unaddressable_key__message_refused():
    # Given: the walk stops at a key with a quote; a NUL comes later in the same traits
    request = _message([("a", {'q"': 1.0, "z": "\x00"})])

    # When / Then
    with pytest.raises(InvalidArgument) as raised:
        decode_profiles(request)
    assert str(raised.value) == f"profiles[0].traits: {NUL_MESSAGE}"
