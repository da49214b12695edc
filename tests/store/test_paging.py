"""Page sizes and page tokens (no database)."""

from __future__ import annotations

import pytest

from segmentd.errors import InvalidArgument
from segmentd.store.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_page_token,
    effective_page_size,
    encode_page_token,
)


@pytest.mark.parametrize(
    ("requested", "used"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (1000, 1000), (1001, MAX_PAGE_SIZE), (10**9, 1000)],
)
def test_effective_page_size__zero_default_and_clamped(requested: int, used: int) -> None:
    assert effective_page_size(requested) == used


def test_page_token__round_trip__same_filter_in_any_order() -> None:
    token = encode_page_token("segment-é", {"b": "2", "a": "1"})
    assert "=" not in token
    assert decode_page_token(token, {"a": "1", "b": "2"}) == "segment-é"
    assert decode_page_token("", {"a": "1"}) == ""
    with pytest.raises(InvalidArgument, match="different labels"):
        decode_page_token(token, {"a": "1"})
