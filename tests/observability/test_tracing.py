"""OpenTelemetry tracing: off unless OTEL_* asks; then every RPC is a span sent over OTLP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from segmentd.config import settings_for_tests
from segmentd.observability.tracing import requested_exporters, start_tracing
from segmentd.server import start_server
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, [], id="nothing-set-off"),
        pytest.param({"OTEL_SERVICE_NAME": "segmentd"}, [], id="unrelated-variable-off"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ["otlp"], id="endpoint-otlp"),
        pytest.param({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"}, ["otlp"], id="traces-endpoint"),
        pytest.param({"OTEL_TRACES_EXPORTER": "console"}, ["console"], id="named"),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"], id="several"),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
            [],
            id="none-wins",
        ),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}, [], id="sdk-disabled"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, [], id="empty-endpoint-off"),
    ],
)
def test_requested_exporters__environment__exporters(environ: dict[str, str], expected: list[str]):
    assert requested_exporters(environ) == expected


def test_start_tracing__not_asked__off_and_grpc_untouched():
    server_factory = grpc.aio.server

    assert start_tracing({}) is None
    assert grpc.aio.server is server_factory


def test_start_tracing__extra_not_installed__off_with_a_warning(monkeypatch, caplog):
    # None in sys.modules makes the import fail, as when segmentd[otel] is not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.grpc", None)
    server_factory = grpc.aio.server

    assert start_tracing({"OTEL_TRACES_EXPORTER": "otlp"}) is None
    assert grpc.aio.server is server_factory
    assert "segmentd[otel] is not installed" in caplog.text


def test_start_tracing__unknown_exporter__value_error_naming_it():
    with pytest.raises(ValueError, match="'zipkin-v9'"):
        start_tracing({"OTEL_TRACES_EXPORTER": "zipkin-v9"})


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver keeping the span names and service names it was sent."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []

    def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            attributes = {item.key: item.value.string_value for item in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(attributes["service.name"], span.name) for span in scope_spans.spans]
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[_Collector, int]]:
    receiver = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield receiver, port
    finally:
        server.stop(None)


async def test_server__otlp_endpoint_set__each_rpc_is_a_span(
    collector: tuple[_Collector, int], store_url: str, monkeypatch
):
    # Given: the standard variables pointing at an OTLP collector
    receiver, port = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    server_factory = grpc.aio.server

    # When: a server serves one call and stops (which flushes the spans)
    running = await start_server(settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1"))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            request = evaluation_pb2.EvaluateProfileRequest()
            request.traits.update({"plan": "pro"})
            await evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateProfile(request)
    finally:
        await running.stop(None)

    # Then: the call arrived as a server span of service "segmentd"; grpc is restored
    assert ("segmentd", "/segmentd.v1.EvaluationService/EvaluateProfile") in receiver.spans
    assert grpc.aio.server is server_factory
