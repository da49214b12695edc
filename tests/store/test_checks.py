"""Input checks: the fast paths mean exactly what the definitions say."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from segmentd.errors import InvalidArgument
from segmentd.store.checks import _has_control, _is_clean, check_traits


def test_has_control__every_code_point__exactly_category_cc():
    # The regular expression stands for unicodedata.category(char) == "Cc".
    mismatches = [
        code
        for code in range(sys.maxunicode + 1)
        if _has_control(chr(code)) != (unicodedata.category(chr(code)) == "Cc")
    ]
    assert mismatches == []


def test_is_clean__every_ascii_character__clean_exactly_when_not_a_control():
    # The ASCII fast path (str.isprintable) stands for the regular expression.
    mismatches = [code for code in range(128) if _is_clean(f"a{chr(code)}b") == _has_control(chr(code))]
    assert mismatches == []


class _Mapping(dict[str, object]):  # a subclass: the exact-type fast paths do not apply
    pass


class _List(list[object]):
    pass


@pytest.mark.parametrize(
    ("traits", "field"),
    [
        pytest.param(_Mapping({"a": _List([1, "\x00"])}), "traits.a[1]", id="subclasses-still-checked"),
        pytest.param({"a": ("x", {"b\x01": 1})}, "traits.a[1]", id="tuple-and-control-key"),
        pytest.param({"a": {1, 2}}, "traits.a", id="set-is-not-json"),
        pytest.param({"a": float("nan")}, "traits.a", id="nan"),
        pytest.param({"a": "\ud800"}, "traits.a", id="lone-surrogate"),
    ],
)
def test_check_traits__invalid_nested_values__named(traits, field):
    with pytest.raises(InvalidArgument) as raised:
        check_traits(traits, "traits")
    assert raised.value.field == field
