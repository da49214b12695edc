"""Opaque, signed page tokens for member listings.

A token names the segment, the segment version and the last user id already sent. It is
signed (HMAC-SHA256, truncated to 128 bits) with the server's page-token secret, so a
token that was edited, or that belongs to another segment or version, is refused instead
of silently resuming somewhere else.

    token = base64url( mac[16] || json([segment, version, after_user_id]) )
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from segmentd.errors import InvalidArgument
from segmentd.store.checks import is_storable_text

_MAC_BYTES = 16


@dataclass(frozen=True, slots=True)
class MemberCursor:
    """Where a member listing resumes: after ``after_user_id`` in ``segment`` at ``version``."""

    segment: str
    version: int
    after_user_id: str


def encode_page_token(cursor: MemberCursor, secret: bytes) -> str:
    """Return the opaque token for ``cursor``."""
    payload = json.dumps(
        [cursor.segment, cursor.version, cursor.after_user_id], separators=(",", ":"), ensure_ascii=False
    ).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


def decode_page_token(token: str, secret: bytes, field: str = "page_token") -> MemberCursor:
    """Return the cursor in ``token``.

    Raises:
        InvalidArgument: the token is malformed, its signature does not match, or its signed
            payload is not three well-typed fields.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(field, "is not a page token issued by this service") from exc
    mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise InvalidArgument(field, "is not a page token issued by this service (or was altered)")
    cursor = _cursor(payload)
    if cursor is None:
        # Signed yet malformed: forged with a known secret (the built-in default), or a bug.
        raise InvalidArgument(field, "is not a page token issued by this service")
    return cursor


def _cursor(payload: bytes) -> MemberCursor | None:
    try:
        decoded = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: nesting
        return None
    if not isinstance(decoded, list) or len(decoded) != 3:
        return None
    segment, version, after_user_id = decoded
    if not (
        isinstance(segment, str)
        and type(version) is int  # bool is an int to isinstance
        and version > 0
        and _is_storable(segment)
        and _is_storable(after_user_id)
    ):
        return None
    return MemberCursor(segment, version, after_user_id)


def _is_storable(text: object) -> bool:
    """A non-empty string both stores can hold."""
    return isinstance(text, str) and bool(text) and is_storable_text(text)
