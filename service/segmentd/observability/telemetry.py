"""What one server owns for observability, started from its settings and closed with it.

Used by ``server.start_server``::

    telemetry = await Telemetry.start(settings, engine, caches={"profiles": profile_cache})
    server = aio.server(interceptors=telemetry.interceptors, ...)   # after: tracing wraps it
    ...
    await telemetry.close()                                         # in RunningServer.stop

Registering another cache for ``segmentd_cache_*`` is one more entry in ``caches``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from grpc import aio
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.config import Settings
from segmentd.observability.collectors import CacheStatistics
from segmentd.observability.interceptor import TelemetryInterceptor
from segmentd.observability.metrics import MetricsEndpoint, ServerMetrics
from segmentd.observability.tracing import Tracing, start_tracing


@dataclass
class Telemetry:
    """The interceptors, metrics and tracing of one server.

    Attributes:
        metrics: this server's metrics, or ``None`` when ``metrics_port`` is 0.
        endpoint: the ``/metrics`` HTTP listener, when metrics are on.
        tracing: the OpenTelemetry set-up, when the environment switched it on.
        interceptors: for ``grpc.aio.server(interceptors=...)``: the telemetry interceptor,
            unless metrics and the access log are both off.
    """

    metrics: ServerMetrics | None = None
    endpoint: MetricsEndpoint | None = None
    tracing: Tracing | None = None
    interceptors: Sequence[aio.ServerInterceptor] = field(default_factory=tuple)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        engine: AsyncEngine,
        caches: Mapping[str, CacheStatistics],
        environ: Mapping[str, str] = os.environ,
    ) -> Telemetry:
        """Switch on what ``settings`` and the ``OTEL_*`` variables in ``environ`` ask for.

        Call it before creating the gRPC server: tracing instruments servers created after.

        Args:
            settings: ``metrics_port`` (0: no metrics) and ``host`` are read.
            engine: its connection pool is exported.
            caches: exported under ``segmentd_cache_*{cache="<name>"}``, by name.
            environ: where the ``OTEL_*`` variables are read.

        Raises:
            OSError: the metrics port cannot be listened on.
            ValueError: ``OTEL_TRACES_EXPORTER`` names an exporter that is not installed.
        """
        telemetry = cls()
        try:
            if settings.metrics_port:
                telemetry.metrics = ServerMetrics()
                telemetry.metrics.watch_pool(engine.pool)
                for name, cache in caches.items():
                    telemetry.metrics.watch_cache(name, cache)
                telemetry.endpoint = MetricsEndpoint(
                    telemetry.metrics.registry, settings.host, settings.metrics_port
                )
            telemetry.tracing = start_tracing(environ)
        except BaseException:
            await telemetry.close()
            raise
        if telemetry.metrics is not None or settings.access_log != "off":
            # Without one, gRPC skips its interceptor machinery on every call.
            telemetry.interceptors = (TelemetryInterceptor(telemetry.metrics, settings.access_log),)
        return telemetry

    @property
    def metrics_port(self) -> int | None:
        """The port ``/metrics`` is served on, or ``None`` when metrics are off."""
        return self.endpoint.port if self.endpoint is not None else None

    async def close(self) -> None:
        """Stop serving ``/metrics`` and flush the spans still buffered."""
        if self.endpoint is not None:
            await self.endpoint.close()
        if self.tracing is not None:
            await self.tracing.close()
