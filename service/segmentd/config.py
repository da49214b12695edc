"""Server settings, read from command-line flags and ``SEGMENTD_*`` environment variables.

A flag wins over its environment variable, which wins over the default. Every setting is
listed with its variable in the README.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from typing import Any

from segmentd.engine.limits import RuleLimits
from segmentd.store.retention import EventRetention

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///segmentd.db"
#: Known to everyone who reads the source: a server using it warns at start.
DEFAULT_PAGE_TOKEN_SECRET = "segmentd-default-page-token-key"
#: What the access log writes: every call, calls that failed or were slow, or nothing.
ACCESS_LOG_MODES = ("all", "errors", "off")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server can be told; field names map to ``SEGMENTD_<NAME>`` variables.

    Attributes:
        host: the address to listen on.
        port: the port to listen on (0 picks a free one).
        database_url: SQLAlchemy URL; ``postgresql://…`` or ``sqlite:///path``.
        migrate: apply database migrations at start-up.
        profile_cache_size: profiles kept in the LRU cache.
        profile_cache_ttl_seconds: longest a cached profile is trusted: the safety net behind
            invalidation and change notifications, not a refresh rate (``inf``: never
            expires; ``0``: no profile cache).
        catalogue_check_seconds: how often the store's catalogue version is read in the
            background, the safety net behind notifications for segment changes.
        percentile_ttl_seconds: how long a computed percentile threshold is reused.
        statement_timeout_ms: PostgreSQL statement timeout for every query.
        database_pool_size: database connections kept open per process.
        database_max_overflow: extra connections opened under load, closed when idle.
        database_pool_timeout_seconds: how long a call waits for a free connection before
            RESOURCE_EXHAUSTED.
        database_connect_timeout_seconds: how long opening a connection may take; with the
            pool timeout it bounds what a hung database costs a call (then UNAVAILABLE).
        stream_connections: most connections member listings use at once, out of the
            pool (unary calls keep the rest).
        idle_in_transaction_timeout_ms: PostgreSQL ends a session idle inside a transaction
            for this long (0: never).
        max_page_size: largest page ``ListSegmentMembers`` streams per call.
        max_batch_size: most users one ``BatchEvaluateUsers`` call may name.
        max_events_per_call: most events one ``RecordEvents`` call may carry.
        max_message_bytes: largest gRPC message received or sent.
        max_concurrent_rpcs: most calls a process serves at once, streams and health checks
            included; the next are refused with RESOURCE_EXHAUSTED (0: no limit).
        max_rule_depth: deepest rule tree accepted.
        max_rule_nodes: most nodes in one rule tree.
        max_regex_length: longest ``MATCHES_REGEX`` pattern.
        max_list_values: most values in an ``IN``/``NOT_IN`` list.
        page_token_secret: key signing page tokens; set the same value on every replica.
        shutdown_grace_seconds: how long SIGTERM waits for in-flight calls.
        shutdown_delay_seconds: how long, after SIGTERM, health says NOT_SERVING while the
            port still accepts calls, so load balancers stop sending before it closes.
        workers: server processes sharing the port (``SO_REUSEPORT``); PostgreSQL only.
        metrics_port: port serving Prometheus metrics at ``/metrics`` on ``host`` (0: none).
        log_format: ``json`` (one object per line), ``text``, or ``auto``: text when
            stderr is a terminal, JSON otherwise.
        access_log: ``all`` (a line per call), ``errors`` (calls that did not end OK, or
            took a second or more) or ``off``.
        require_auth: refuse every call but health and reflection without an API key
            holding the method's scope (keys: ``segmentd keys create``). Production
            deployments must switch it on.
        auth_cache_seconds: how long a checked API key's verdict is reused: the longest a
            revoked key keeps working on any replica (0: check every call).
        tls_cert: PEM certificate chain the server presents; with ``tls_key``, serves TLS.
        tls_key: PEM private key of ``tls_cert``.
        tls_client_ca: PEM roots that client certificates must chain to: mutual TLS, a
            call without a valid client certificate is refused.
        event_retention_days: event days older than this many days (UTC) are refused by
            RecordEvents and removed by ``segmentd events prune``; 0 keeps every day.
        event_future_seconds: how far beyond the server's clock an event time may lie.
    """

    host: str = "[::]"
    port: int = 50051
    database_url: str = DEFAULT_DATABASE_URL
    migrate: bool = True
    profile_cache_size: int = 100_000
    profile_cache_ttl_seconds: float = 300.0
    catalogue_check_seconds: float = 5.0
    percentile_ttl_seconds: float = 60.0
    statement_timeout_ms: int = 30_000
    database_pool_size: int = 10
    database_max_overflow: int = 10
    database_pool_timeout_seconds: float = 5.0
    database_connect_timeout_seconds: float = 2.0
    stream_connections: int = 5
    idle_in_transaction_timeout_ms: int = 60_000
    max_page_size: int = 100_000
    max_batch_size: int = 1_000
    max_events_per_call: int = 10_000
    max_message_bytes: int = 4 * 1024 * 1024
    max_concurrent_rpcs: int = 0
    max_rule_depth: int = 32
    max_rule_nodes: int = 1_000
    max_regex_length: int = 1_000
    max_list_values: int = 1_000
    page_token_secret: str = field(default=DEFAULT_PAGE_TOKEN_SECRET, repr=False)
    shutdown_grace_seconds: float = 10.0
    shutdown_delay_seconds: float = 1.0
    workers: int = 1
    metrics_port: int = 0
    log_format: str = "auto"
    access_log: str = "errors"
    require_auth: bool = False
    auth_cache_seconds: float = 5.0
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    event_retention_days: int = 730
    event_future_seconds: float = 86_400.0

    def __post_init__(self) -> None:
        """Refuse settings that name no known choice.

        Raises:
            ValueError: ``access_log`` is none of ``ACCESS_LOG_MODES``, the TLS files are
                given without the certificate and key they need, or ``max_concurrent_rpcs``
                is negative.
        """
        if self.access_log not in ACCESS_LOG_MODES:
            raise ValueError(
                f"access_log must be one of {', '.join(ACCESS_LOG_MODES)}, not {self.access_log!r}"
            )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        if self.max_concurrent_rpcs < 0:
            raise ValueError("max_concurrent_rpcs must be 0 (no limit) or positive")

    @property
    def event_retention(self) -> EventRetention:
        """The event retention these settings describe."""
        return EventRetention(days=self.event_retention_days, future_seconds=self.event_future_seconds)

    @property
    def rule_limits(self) -> RuleLimits:
        """The rule limits these settings describe."""
        return RuleLimits(
            max_depth=self.max_rule_depth,
            max_nodes=self.max_rule_nodes,
            max_regex_length=self.max_regex_length,
            max_list_values=self.max_list_values,
        )


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per setting to ``parser`` (defaults come from the environment)."""
    for setting in fields(Settings):
        flag = "--" + setting.name.replace("_", "-")
        # A boolean is a --flag / --no-flag pair; everything else takes a typed value.
        kind: dict[str, Any] = (
            {"action": argparse.BooleanOptionalAction}
            if setting.type == "bool"
            else {"type": _converter(setting.type)}
        )
        parser.add_argument(flag, dest=setting.name, default=None, help=_help(setting), **kind)


def load_settings(
    arguments: argparse.Namespace | None = None, environ: Mapping[str, str] = os.environ
) -> Settings:
    """Build settings from flags (when given), then ``SEGMENTD_*`` variables, then defaults.

    Raises:
        ValueError: a variable holds a value of the wrong type; the message names it.
    """
    values: dict[str, Any] = {}
    for setting in fields(Settings):
        flag_value = getattr(arguments, setting.name, None) if arguments is not None else None
        variable = f"SEGMENTD_{setting.name.upper()}"
        if flag_value is not None:
            values[setting.name] = flag_value
        elif variable in environ:
            try:
                values[setting.name] = _converter(setting.type)(environ[variable])
            except ValueError as exc:
                raise ValueError(f"{variable}: {exc}") from exc
    return Settings(**values)


def _converter(type_name: object) -> Any:
    return {"bool": _parse_bool, "int": int, "float": float, "str": str}[str(type_name)]


def _help(setting: Field[Any]) -> str:
    # A field kept out of repr (a secret) keeps its default out of --help too.
    default = repr(getattr(Settings(), setting.name)) if setting.repr else "built in; set it in production"
    return f"(env SEGMENTD_{setting.name.upper()}, default {default})"


def settings_for_tests(**overrides: Any) -> Settings:
    """Settings for an in-process test server: a free port, otherwise the defaults."""
    return Settings(**{"port": 0, **overrides})


__all__: Sequence[str] = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PAGE_TOKEN_SECRET",
    "Settings",
    "add_arguments",
    "load_settings",
    "settings_for_tests",
]
