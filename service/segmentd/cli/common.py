"""What every client command shares: the connection options, exit codes and error messages.

Exit codes, which scripts can rely on:

    0  success
    1  invalid input: the server refused a field (INVALID_ARGUMENT), or a file is malformed
    2  usage error: an unknown option, a missing argument, a file that cannot be opened
    3  the server is unreachable (UNAVAILABLE, or no answer within the deadline)
    4  not found: no such segment, user or version
    5  conflict: the segment exists, changed meanwhile, or is referenced by others
    6  not allowed: no valid API key (UNAUTHENTICATED), or not permitted (PERMISSION_DENIED)
    7  any other failure of the server (INTERNAL, ...)
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, NoReturn

import click

from segmentd_client import TLS, Client, errors
from segmentd_client.definitions import DefinitionError

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_NOT_FOUND: Final = 4
EXIT_CONFLICT: Final = 5
EXIT_DENIED: Final = 6
EXIT_SERVER_ERROR: Final = 7

DEFAULT_TARGET: Final = "localhost:50051"

_EXIT_BY_ERROR: Final[dict[type[errors.SegmentdError], int]] = {
    errors.InvalidArgument: EXIT_INVALID,
    errors.NotFound: EXIT_NOT_FOUND,
    errors.Conflict: EXIT_CONFLICT,
    errors.FailedPrecondition: EXIT_CONFLICT,
    errors.Unavailable: EXIT_UNREACHABLE,
    errors.DeadlineExceeded: EXIT_UNREACHABLE,
    errors.Unauthenticated: EXIT_DENIED,
    errors.PermissionDenied: EXIT_DENIED,
}


class CommandFailed(Exception):
    """A command failed in a way already explained; ``main`` prints it and exits with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def fail(status: int, message: str) -> NoReturn:
    """Stop the command with ``status``, saying why on stderr."""
    raise CommandFailed(status, message)


def exit_status_for(error: errors.SegmentdError) -> int:
    """Return the exit status for a client error: that of its nearest mapped class."""
    for cls in type(error).__mro__:
        if cls in _EXIT_BY_ERROR:
            return _EXIT_BY_ERROR[cls]
    return EXIT_SERVER_ERROR


def message_for(error: errors.SegmentdError, target: str) -> str:
    """Return a sentence for a client error, for people."""
    if isinstance(error, errors.Unavailable | errors.DeadlineExceeded):
        return f"cannot reach a segmentd server at {target} ({error})"
    if isinstance(error, errors.Unauthenticated):
        return f"{error} (pass an API key with --key or SEGMENTD_API_KEY)"
    if isinstance(error, errors.PermissionDenied):
        return f"{error} (use a key that holds that scope)"
    return str(error)


@contextmanager
def reporting(target: str) -> Iterator[None]:
    """Turn the client's exceptions raised inside the block into a failed command."""
    try:
        yield
    except errors.SegmentdError as exc:
        fail(exit_status_for(exc), message_for(exc, target))
    except DefinitionError as exc:
        fail(EXIT_INVALID, str(exc))


def _tls(use_tls: bool, ca: str | None, cert: str | None, key: str | None) -> TLS | None:
    """The client's TLS settings: any TLS option switches TLS on; none leaves it plaintext."""
    if not (use_tls or ca or cert or key):
        return None
    if bool(cert) != bool(key):
        fail(EXIT_USAGE, "--tls-client-cert and --tls-client-key must be given together")
    try:
        return TLS.from_files(ca=ca, cert=cert, key=key)
    except OSError as exc:
        fail(EXIT_USAGE, f"cannot read a TLS file: {exc}")


def _tls_options(function: Callable[..., int]) -> Callable[..., int]:
    options = (
        click.option(
            "--tls/--no-tls",
            "use_tls",
            envvar="SEGMENTD_TLS",
            default=False,
            help="Call over TLS, verifying the server with the system's roots (env SEGMENTD_TLS).",
        ),
        click.option(
            "--tls-ca",
            envvar="SEGMENTD_TLS_CA",
            default=None,
            help="PEM roots that verify the server; implies --tls (env SEGMENTD_TLS_CA).",
        ),
        click.option(
            "--tls-client-cert",
            envvar="SEGMENTD_TLS_CLIENT_CERT",
            default=None,
            help="PEM certificate for mutual TLS (env SEGMENTD_TLS_CLIENT_CERT).",
        ),
        click.option(
            "--tls-client-key",
            envvar="SEGMENTD_TLS_CLIENT_KEY",
            default=None,
            help="PEM private key of --tls-client-cert (env SEGMENTD_TLS_CLIENT_KEY).",
        ),
    )
    for option in reversed(options):
        function = option(function)
    return function


def client_command(function: Callable[..., int]) -> Callable[..., int]:
    """Add ``--target``, ``--key``, ``--timeout`` and the TLS options; the command gets a ``Client``."""

    @click.option(
        "--target",
        envvar="SEGMENTD_TARGET",
        default=DEFAULT_TARGET,
        show_default=True,
        help="Server address (env SEGMENTD_TARGET).",
    )
    @click.option("--key", envvar="SEGMENTD_API_KEY", default=None, help="API key (env SEGMENTD_API_KEY).")
    @click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds a call may take.")
    @_tls_options
    @functools.wraps(function)
    def with_client(  # noqa: PLR0913 - one parameter per connection option
        *args: Any,
        target: str,
        key: str | None,
        timeout: float,
        use_tls: bool,
        tls_ca: str | None,
        tls_client_cert: str | None,
        tls_client_key: str | None,
        **kwargs: Any,
    ) -> int:
        tls = _tls(use_tls, tls_ca, tls_client_cert, tls_client_key)
        with Client(target, api_key=key, tls=tls, timeout=timeout) as client, reporting(target):
            return function(*args, client=client, **kwargs)

    return with_client


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (times as RFC 3339)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


def json_ready(value: Any) -> Any:
    """Return ``value`` with its times as RFC 3339 strings, ready for JSON or YAML."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def echo_error(message: str) -> None:
    """Print ``segmentd: message`` on stderr."""
    click.echo(f"segmentd: {message}", file=sys.stderr)
