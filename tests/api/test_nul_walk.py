"""``strings.nul_field`` finds a NUL anywhere in a Struct, as deep as it is, and only then."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from segmentd.api.strings import NUL, nul_field
from segmentd_client.v1 import profiles_pb2

_text = st.text(alphabet=st.sampled_from(["a", "é", NUL, "\x01"]), max_size=3)
_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=10,
)


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(NUL in key or _holds_nul(item) for key, item in value.items())
    return False


@given(traits=st.dictionaries(_text, _json, max_size=4), position=st.integers(0, 2))
def test_nul_field__traits_of_an_imported_profile__found_exactly_when_present(traits, position):
    # Given: the traits in one profile of an import request
    request = profiles_pb2.ImportProfilesRequest()
    for index in range(3):
        profile = request.profiles.add(user_id=f"u{index}")
        if index == position:
            profile.traits.update(traits)

    # When
    field = nul_field(request)

    # Then
    assert field == (f"profiles[{position}].traits" if _holds_nul(traits) else None)
