"""Optional OpenTelemetry tracing of every RPC, switched on by the standard ``OTEL_*`` variables.

Tracing is on when the extra ``segmentd[otel]`` is installed and the environment asks for
it: ``OTEL_TRACES_EXPORTER`` names an exporter other than ``none``, or an OTLP endpoint is
set (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; the exporter
is then ``otlp``). ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set. Exporters
are found by name the way the OpenTelemetry SDK finds them (the entry points of group
``opentelemetry_traces_exporter``; ``otlp`` means ``otlp_proto_grpc``, or ``otlp_proto_http``
when ``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`` says ``http/protobuf``, which needs
``opentelemetry-exporter-otlp-proto-http`` installed beside the extra) and configure
themselves from their own ``OTEL_EXPORTER_*`` variables; the service name defaults to ``segmentd``
(``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` override it).

The server spans come from ``GrpcAioInstrumentorServer``, which wraps ``grpc.aio.server`` so
that servers created afterwards get its interceptor (first, so the span covers the
metrics interceptor too); ``OTEL_PYTHON_GRPC_EXCLUDED_SERVICES`` leaves services out. The
instrumentor is one per process, as the server is: a second server started in the same
process while the first is traced shares the first one's tracer provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def requested_exporters(environ: Mapping[str, str]) -> list[str]:
    """Return the span exporters the environment asks for (none: tracing stays off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if named:
        return [] if "none" in named else named
    return ["otlp"] if any(environ.get(variable) for variable in _ENDPOINT_VARIABLES) else []


@dataclass
class Tracing:
    """Tracing switched on for the servers created from now on; :meth:`close` ends it."""

    _provider: Any
    _instrumentor: Any

    async def close(self) -> None:
        """Stop instrumenting new servers, export the spans still buffered."""
        self._instrumentor.uninstrument()
        # Exporting blocks; it may even be to a collector served by this event loop.
        await asyncio.to_thread(self._provider.shutdown)


def start_tracing(environ: Mapping[str, str]) -> Tracing | None:
    """Instrument the gRPC servers created from now on, if ``environ`` asks for tracing.

    Returns:
        The handle to close on shutdown, or ``None`` when tracing stays off: not asked
        for, or asked for without the ``otel`` extra installed (then a warning says so).

    Raises:
        ValueError: ``OTEL_TRACES_EXPORTER`` names an exporter that is not installed.
    """
    exporters = requested_exporters(environ)
    if not exporters:
        return None
    try:
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_* variables ask for tracing, but segmentd[otel] is not installed: tracing is off")
        return None
    span_exporters = [_exporter(name, environ) for name in exporters]
    provider = TracerProvider(resource=_resource(Resource, environ))
    for span_exporter in span_exporters:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    instrumentor = GrpcAioInstrumentorServer()  # type: ignore[no-untyped-call]  # untyped package
    instrumentor.instrument(tracer_provider=provider)
    log.info("tracing RPCs to %s", ", ".join(exporters))
    return Tracing(provider, instrumentor)


def _resource(resource_type: Any, environ: Mapping[str, str]) -> Any:
    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return resource_type.create({} if named else {"service.name": "segmentd"})


def _exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "otlp":
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        )
        name = "otlp_proto_http" if protocol in ("http/protobuf", "http/json") else "otlp_proto_grpc"
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise ValueError(f"OTEL_TRACES_EXPORTER: no span exporter named {name!r} is installed")
    return next(iter(found)).load()()
