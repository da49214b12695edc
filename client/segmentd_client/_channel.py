"""How the clients reach the server: target, TLS, API key, deadlines and the retry policy.

Retries are gRPC's own (a service config with a ``retryPolicy``), not a loop of ours, and
only for calls that are safe to repeat: reads, evaluations and ``UpsertProfile`` (merging the
same traits twice stores the same profile). ``CreateSegment``, ``UpdateSegment``,
``DeleteSegment``, ``DeleteProfile``, ``RecordEvents`` (counts would double) and
``ImportProfiles`` are not retried: when one of them fails with UNAVAILABLE the write may or
may not have happened, and only the caller can tell which answer is right.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

DEFAULT_TARGET: Final = "localhost:50051"
TARGET_VARIABLE: Final = "SEGMENTD_TARGET"
API_KEY_VARIABLE: Final = "SEGMENTD_API_KEY"
#: Seconds a unary call may take unless told otherwise.
DEFAULT_TIMEOUT: Final = 10.0
#: Seconds a streaming call (a member listing, an import) may take unless told otherwise.
DEFAULT_STREAM_TIMEOUT: Final = 3600.0

_RETRIED_METHODS: Final = {
    "SegmentService": ("GetSegment", "ListSegments"),
    "ProfileService": ("GetProfile", "UpsertProfile"),
    "EvaluationService": (
        "EvaluateUser",
        "EvaluateProfile",
        "BatchEvaluateUsers",
        "ExplainEvaluation",
        "ListSegmentMembers",
        "CountSegmentMembers",
        "GetSegmentStats",
        "CompareSegments",
    ),
}

RETRY_POLICY: Final[dict[str, Any]] = {
    "maxAttempts": 5,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}

SERVICE_CONFIG: Final[dict[str, Any]] = {
    "methodConfig": [
        {
            "name": [
                {"service": f"segmentd.v1.{service}", "method": method}
                for service, methods in _RETRIED_METHODS.items()
                for method in methods
            ],
            "retryPolicy": RETRY_POLICY,
        }
    ]
}


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS settings: the roots that verify the server and, for mutual TLS, the client's pair.

    Attributes:
        root_certificates: PEM roots; ``None`` uses the system's.
        certificate_chain: the client's PEM certificate chain (mutual TLS).
        private_key: the client's PEM private key (mutual TLS).
        server_name: the name to verify in the server's certificate, when it differs
            from the target's host.
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)  # never in logs or tracebacks
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        server_name: str | None = None,
    ) -> TLS:
        """Read the PEM files: ``ca`` (roots), ``cert`` and ``key`` (the client's, for mTLS)."""

        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(ca), read(cert), read(key), server_name)

    def credentials(self) -> grpc.ChannelCredentials:
        """Return the channel credentials these settings describe."""
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Everything both clients build a channel and their calls from."""

    target: str
    api_key: str | None = field(repr=False)  # never in logs or tracebacks
    tls: TLS | None
    timeout: float | None
    stream_timeout: float | None
    options: tuple[tuple[str, Any], ...]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata sent with every call: the API key, when there is one."""
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()


def channel_settings(
    target: str | None,
    api_key: str | None,
    tls: TLS | bool | None,
    timeout: float | None,
    stream_timeout: float | None,
    options: tuple[tuple[str, Any], ...] = (),
) -> ChannelSettings:
    """Resolve the clients' arguments: the environment fills in the target and API key."""
    resolved_tls = TLS() if tls is True else (tls or None)
    all_options: list[tuple[str, Any]] = [
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        ("grpc.enable_retries", 1),
    ]
    if resolved_tls is not None and resolved_tls.server_name:
        all_options.append(("grpc.ssl_target_name_override", resolved_tls.server_name))
    return ChannelSettings(
        target=target or os.environ.get(TARGET_VARIABLE) or DEFAULT_TARGET,
        api_key=api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE) or None,
        tls=resolved_tls,
        timeout=timeout,
        stream_timeout=stream_timeout,
        options=(*all_options, *options),
    )
