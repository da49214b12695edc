"""API keys: how one is made, what is stored of it, and how a presented one is read.

A key reads ``sdk_<id>_<secret>``: the id (12 hex digits) names the key in listings, logs and
``segmentd keys revoke``; the secret is 32 random bytes (256 bits), URL-safe base64. The store
keeps the SHA-256 of the whole key, never the key.

Why a plain SHA-256 and not a slow password hash (bcrypt, scrypt, argon2): those exist to
make guessing a *low-entropy* password expensive. A 256-bit random secret cannot be guessed
whatever the hash costs, so a slow hash would only add its tens of milliseconds to every
call the cache misses; one SHA-256 keeps the check at microseconds, and a leaked table still
yields no key. A keyed hash (HMAC with a server-side secret) would add nothing but one more
secret to distribute to every replica and to the ``segmentd keys`` command.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

PREFIX: Final = "sdk_"
_ID_BYTES = 6
_SECRET_BYTES = 32
_KEY_PATTERN = re.compile(r"sdk_(?P<id>[0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_BEARER = re.compile(r"[Bb]earer +(?P<key>\S+)")


def new_key() -> tuple[str, str]:
    """Return a new ``(key_id, key)``; the key is shown once and never stored."""
    key_id = secrets.token_hex(_ID_BYTES)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def key_hash(key: str) -> str:
    """Return the hex SHA-256 of ``key``: what the store keeps."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """Return the id of a well-formed key, or ``None`` when ``key`` is no key of ours."""
    match = _KEY_PATTERN.fullmatch(key)
    return match["id"] if match else None


def hash_matches(key: str, stored_hash: str) -> bool:
    """Whether ``key`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(key_hash(key), stored_hash)


def bearer_key(authorization: str | bytes | None) -> str | None:
    """Return the key of an ``authorization: Bearer <key>`` value, or ``None``."""
    if not isinstance(authorization, str):
        return None
    match = _BEARER.fullmatch(authorization.strip())
    return match["key"] if match else None
