"""Log output: text for a person at a terminal, JSON lines for a log collector.

A JSON line holds ``time`` (RFC 3339, UTC), ``level``, ``logger`` and ``message``, then
every field the call passed in ``extra`` (the access log's ``rpc``, ``grpc_code``,
``duration_ms``, ``peer``), and ``exception`` with the traceback when there is one::

    {"time": "2026-12-01T23:04:05.123Z", "level": "INFO", "logger": "segmentd.access",
     "message": "/segmentd.v1.EvaluationService/EvaluateUser OK 0.8ms ipv4:10.0.0.7:51234",
     "rpc": "segmentd.v1.EvaluationService/EvaluateUser", "grpc_type": "unary",
     "grpc_code": "OK", "duration_ms": 0.812, "peer": "ipv4:10.0.0.7:51234"}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

LOG_FORMATS = ("auto", "json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for ``record``."""
        entry: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def formatter_for(log_format: str, stream: IO[str]) -> logging.Formatter:
    """Return the formatter ``log_format`` asks for; ``auto`` is text on a terminal, JSON otherwise.

    Raises:
        ValueError: ``log_format`` is none of ``auto``, ``json``, ``text``.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    if log_format == "json" or (log_format == "auto" and not stream.isatty()):
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: str, stream: IO[str] | None = None, level: int = logging.INFO) -> None:
    """Send every log record at ``level`` and above to ``stream`` (stderr) in ``log_format``.

    Raises:
        ValueError: an unknown ``log_format``.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter_for(log_format, stream if stream is not None else sys.stderr))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when configured.

    A stream captured at configuration time may be closed later (a replaced or redirected
    stderr); writing there would print "--- Logging error ---" instead of the record.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # always sys.stderr
