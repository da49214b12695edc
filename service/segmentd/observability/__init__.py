"""Operability: metrics, the access log, tracing and the container's health probe.

    Settings ─> Telemetry.start ─┬─ TelemetryInterceptor  (every RPC: grpc_server_* metrics, access log)
                                 ├─ ServerMetrics         (one CollectorRegistry per server; /metrics)
                                 │     └─ collectors      (live cache and pool values, read on scrape)
                                 └─ tracing               (OTEL_* variables; needs segmentd[otel])
    logs.configure_logging       (text or JSON lines on stderr; called by the command line)
    probe                        (segmentd-probe: asks the gRPC health service; the HEALTHCHECK)

Nothing in the domain layer knows about any of it: the interceptor sees RPCs and their
messages, and the collectors read counters the caches and the pool keep anyway. This
package imports nothing at import time, so the probe starts fast.
"""
