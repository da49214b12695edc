"""Page sizes and page tokens of the listings by name (keyset pagination).

A page token is the urlsafe base64 of a small JSON object: the listing that issued it
(``ListSegments``, ``ListUserLists``), the last name of the page and the label filter it was
issued for. It is opaque to clients but not secret: forging one only moves the start of the
listing; a token given to another listing, or used with another filter, is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Final

from segmentd.errors import InvalidArgument
from segmentd.store.checks import is_storable_text

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000

_TOKEN_VERSION: Final = 2
#: Tokens of version 1 carried no listing: only ListSegments issued them.
_VERSION_1_LISTING: Final = "ListSegments"


def effective_page_size(page_size: int) -> int:
    """Return the page size to use: 0 means 50, and more than 1000 is clamped to 1000.

    Raises:
        InvalidArgument: ``page_size`` is negative.
    """
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    # Clamped rather than refused, as AIP-158 recommends: a client asking for more simply
    # gets full pages and follows next_page_token.
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(after: str, labels: Mapping[str, str], listing: str = "ListSegments") -> str:
    """Return the token of ``listing``'s page that starts after the name ``after``."""
    payload = {"v": _TOKEN_VERSION, "of": listing, "after": after, "labels": dict(sorted(labels.items()))}
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode_page_token(token: str, labels: Mapping[str, str], listing: str = "ListSegments") -> str:
    """Return the name after which ``listing``'s page of ``token`` starts ("" for no token).

    Raises:
        InvalidArgument: ``page_token`` was not issued by ``listing``, or for another filter.
    """
    if not token:
        return ""
    refused = InvalidArgument("page_token", f"is not a token issued by {listing}")
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError) as error:
        # RecursionError: a forged token of deeply nested JSON arrays.
        raise refused from error
    if (
        not isinstance(payload, dict)
        or _listing_of(payload) != listing
        or not isinstance(payload.get("after"), str)
        # Tokens are not signed: a forged one must not smuggle in text the driver refuses.
        or not is_storable_text(payload["after"])
    ):
        raise refused
    if payload.get("labels") != dict(labels):
        raise InvalidArgument("page_token", "was issued for a different labels filter")
    after: str = payload["after"]
    return after


def _listing_of(payload: dict[str, object]) -> object:
    version = payload.get("v")
    if version == 1:
        return _VERSION_1_LISTING
    return payload.get("of") if version == _TOKEN_VERSION else None
