"""``mappers.struct_to_dict`` decodes a Struct exactly as ``json_format.MessageToDict`` does."""

from __future__ import annotations

import math

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from segmentd.api.mappers import struct_to_dict
from segmentd.errors import InvalidArgument

_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(document=st.dictionaries(st.text(max_size=5), _json, max_size=6))
def test_struct_to_dict__any_document__same_as_message_to_dict(document):
    # Given
    message = struct_pb2.Struct()
    message.update(document)

    # When
    decoded = struct_to_dict(message)

    # Then
    expected = json_format.MessageToDict(message)
    assert decoded == expected
    assert repr(decoded) == repr(expected)  # same types too: numbers are floats


def test_struct_to_dict__value_without_kind__null():
    message = struct_pb2.Struct()
    message.fields["unset"].Clear()
    assert struct_to_dict(message) == {"unset": None}


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_struct_to_dict__not_finite_number_nested__invalid_argument_naming_field(number):
    message = struct_pb2.Struct()
    message.update({"a": [{"b": 1.0}]})
    message.fields["a"].list_value.values[0].struct_value.fields["b"].number_value = number

    with pytest.raises(InvalidArgument) as raised:
        struct_to_dict(message, "profile.traits")

    assert raised.value.field == "profile.traits"
