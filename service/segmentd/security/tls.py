"""The server's TLS credentials, from the PEM files its settings name.

    tls_cert + tls_key                 TLS: clients verify the server
    tls_cert + tls_key + tls_client_ca mutual TLS: the server also verifies every client,
                                       and refuses a connection without a valid certificate

Files are read once, at start; replacing them takes a restart.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from segmentd.config import Settings


class TLSFilesError(ValueError):
    """A TLS file named in the settings cannot be read."""


def _read(setting: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TLSFilesError(f"{setting}: cannot read {path!r} ({exc.strerror or exc})") from exc


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """Return the credentials ``settings`` ask for, or ``None`` for plaintext.

    Raises:
        TLSFilesError: a named file cannot be read.
    """
    if not settings.tls_cert:
        return None
    pair = (_read("tls_key", settings.tls_key), _read("tls_cert", settings.tls_cert))
    client_ca = _read("tls_client_ca", settings.tls_client_ca) if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
