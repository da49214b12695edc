"""What a server says at start when a setting leaves it unprotected."""

from __future__ import annotations

import ipaddress

from segmentd.config import DEFAULT_PAGE_TOKEN_SECRET, Settings

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})

DEFAULT_SECRET_WARNING = (
    "the page-token secret is the built-in default, so anyone can forge member page tokens: "
    "set SEGMENTD_PAGE_TOKEN_SECRET (--page-token-secret) to a random value, the same on every replica"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name, an address, or ``[v6]``) only accepts this machine's calls."""
    name = host.strip().removeprefix("[").removesuffix("]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def exposure_warnings(settings: Settings) -> list[str]:
    """Return one sentence per protection missing on a server others can reach."""
    if is_loopback(settings.host):
        return []
    warnings = []
    if not settings.require_auth:
        warnings.append(
            f"access control is OFF on {settings.host}: anyone who reaches the port can read and "
            "change every profile and segment; switch it on with --require-auth "
            "(SEGMENTD_REQUIRE_AUTH=1) and issue keys with 'segmentd keys create'"
        )
    if not settings.tls_cert:
        warnings.append(
            f"TLS is off on {settings.host}: calls, profiles and API keys travel in plaintext; "
            "serve TLS with --tls-cert and --tls-key"
        )
    return warnings


def startup_warnings(settings: Settings) -> list[str]:
    """Every warning the server logs at start: a forgeable page-token secret, then exposure."""
    secret = [DEFAULT_SECRET_WARNING] if settings.page_token_secret == DEFAULT_PAGE_TOKEN_SECRET else []
    return [*secret, *exposure_warnings(settings)]
