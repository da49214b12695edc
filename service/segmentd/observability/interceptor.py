"""The one server interceptor: per-RPC metrics and the access log line.

For every call it counts the start, and at the end the status code and the duration,
under the Prometheus gRPC names (``grpc_server_started_total``,
``grpc_server_handled_total``, ``grpc_server_handling_seconds``), then logs one line on
the ``segmentd.access`` logger: the RPC, its status code, its duration and the peer.
Neither the request, the response nor any metadata (user traits are personal data;
``authorization`` carries a credential) is ever logged.

The status code is the one the servicer gave to ``context.abort`` or ``set_code``, OK if it
returned normally, CANCELLED or DEADLINE_EXCEEDED if the call was cancelled, and UNKNOWN
for an exception escaping the servicer (as gRPC reports it to the client).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from prometheus_client import Counter

from segmentd.api.handlers import Behavior, Handler, WrappingInterceptor, behavior_of, rebuilt
from segmentd.observability.metrics import ServerMetrics
from segmentd_client.v1 import evaluation_pb2

access_log = logging.getLogger("segmentd.access")

Context = aio.ServicerContext[Any, Any]

#: The ``grpc_type`` label, as the Prometheus gRPC interceptors spell it.
_TYPE_BY_STREAMING = {
    (False, False): "unary",
    (False, True): "server_stream",
    (True, False): "client_stream",
    (True, True): "bidi_stream",
}
_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
#: Polled every few seconds by orchestrators and the container's HEALTHCHECK: their access
#: lines are DEBUG, so the INFO log shows traffic (they are counted in the metrics all the same).
_QUIET_SERVICES = frozenset({"grpc.health.v1.Health"})


@dataclass(frozen=True, slots=True)
class Rpc:
    """One method as the metrics label it.

    Attributes:
        full_method: ``/package.Service/Method``, as gRPC names it.
        service: ``package.Service``.
        method: ``Method``.
        kind: ``unary``, ``server_stream``, ``client_stream`` or ``bidi_stream``.
    """

    full_method: str
    service: str
    method: str
    kind: str

    @classmethod
    def of(cls, full_method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> Rpc:
        """Describe the method ``full_method`` served by ``handler``."""
        service, _, method = full_method.lstrip("/").rpartition("/")
        kind = _TYPE_BY_STREAMING[(handler.request_streaming, handler.response_streaming)]
        return cls(full_method, service, method, kind)


class _RpcMetrics:
    """One method's metric children, bound once: ``labels(...)`` costs a few µs a call."""

    __slots__ = ("_handled", "_handled_by_code", "_rpc", "handling_seconds", "started")

    def __init__(self, metrics: ServerMetrics, rpc: Rpc) -> None:
        self.started = metrics.started.labels(rpc.kind, rpc.service, rpc.method)
        self.handling_seconds = metrics.handling_seconds.labels(rpc.kind, rpc.service, rpc.method)
        self._handled = metrics.handled
        self._handled_by_code: dict[grpc.StatusCode, Counter] = {}
        self._rpc = rpc

    def handled(self, code: grpc.StatusCode) -> Counter:
        """The ``grpc_server_handled_total`` child of ``code``, bound the first time it is seen."""
        child = self._handled_by_code.get(code)
        if child is None:
            rpc = self._rpc
            child = self._handled_by_code[code] = self._handled.labels(
                rpc.kind, rpc.service, rpc.method, code.name
            )
        return child


def _member_rows(message: object) -> int:
    return len(message.user_ids) if isinstance(message, evaluation_pb2.ListSegmentMembersResponse) else 0


#: In ``errors`` mode, a call that succeeded is still logged when it took this long.
SLOW_CALL_SECONDS = 1.0


class TelemetryInterceptor(WrappingInterceptor):
    """Records metrics (when ``metrics`` is given) and logs access lines as ``access_log`` says.

    Args:
        metrics: where to count; ``None`` when metrics are off.
        access_log: ``all`` (a line per call), ``errors`` (calls that did not end OK, or took
            ``SLOW_CALL_SECONDS`` or more) or ``off``.
    """

    def __init__(self, metrics: ServerMetrics | None, access_log: str = "all") -> None:
        super().__init__()
        self._metrics = metrics
        self._log_every_call = access_log == "all"
        self._log_nothing = access_log == "off"

    def wrap(self, method: str, handler: Handler) -> Handler:
        """The handler, observed: counted, timed and logged."""
        rpc = Rpc.of(method, handler)
        bound = None if self._metrics is None else _RpcMetrics(self._metrics, rpc)
        observe = self._stream_response if handler.response_streaming else self._unary_response
        return rebuilt(handler, observe(rpc, bound, behavior_of(handler)))

    def _unary_response(self, rpc: Rpc, bound: _RpcMetrics | None, behavior: Behavior) -> Behavior:
        async def observed(request: Any, context: Context) -> Any:
            if bound is not None:
                bound.started.inc()
            start = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                response = await behavior(request, context)
                code = _status_of(context) or grpc.StatusCode.OK
                return response
            except aio.AbortError:
                code = _status_of(context) or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = _cancelled_status(context.time_remaining())
                raise
            finally:
                self._record(rpc, bound, code, time.perf_counter() - start, context.peer)

        return observed

    def _stream_response(self, rpc: Rpc, bound: _RpcMetrics | None, behavior: Behavior) -> Behavior:
        if not inspect.isasyncgenfunction(behavior):
            # A coroutine writing with ``context.write`` (the health service's Watch).
            return self._unary_response(rpc, bound, behavior)

        async def observed(request: Any, context: Context) -> AsyncIterator[Any]:
            with self._observing(rpc, bound, context):
                async for message in behavior(request, context):
                    self._count_rows(message)
                    yield message

        return observed

    def _count_rows(self, message: object) -> None:
        rows = _member_rows(message)
        if rows and self._metrics is not None:
            self._metrics.member_rows_streamed.inc(rows)

    @contextmanager
    def _observing(self, rpc: Rpc, bound: _RpcMetrics | None, context: Context) -> Iterator[None]:
        if bound is not None:
            bound.started.inc()
        start = time.perf_counter()
        # Read while the call is alive: a stream closed after the server stopped (GeneratorExit
        # from the garbage collector) has a context whose call is gone, and asking it then
        # crashed the process.
        peer = context.peer()
        remaining = context.time_remaining()
        code = grpc.StatusCode.UNKNOWN
        try:
            yield
            code = _status_of(context) or grpc.StatusCode.OK
        except aio.AbortError:
            code = _status_of(context) or grpc.StatusCode.UNKNOWN
            raise
        except (asyncio.CancelledError, GeneratorExit):
            elapsed = time.perf_counter() - start
            code = _cancelled_status(None if remaining is None else remaining - elapsed)
            raise
        finally:
            self._record(rpc, bound, code, time.perf_counter() - start, lambda: peer)

    def _record(
        self,
        rpc: Rpc,
        bound: _RpcMetrics | None,
        code: grpc.StatusCode,
        seconds: float,
        peer_of: Callable[[], str],
    ) -> None:
        if bound is not None:
            bound.handled(code).inc()
            bound.handling_seconds.observe(seconds)
        if self._log_nothing or not (
            self._log_every_call or code is not grpc.StatusCode.OK or seconds >= SLOW_CALL_SECONDS
        ):
            return
        level = logging.DEBUG if rpc.service in _QUIET_SERVICES else logging.INFO
        if access_log.isEnabledFor(level):
            duration_ms = round(seconds * 1000, 3)
            peer = peer_of()
            access_log.log(
                level,
                "%s %s %.1fms %s",
                rpc.full_method,
                code.name,
                duration_ms,
                peer,
                extra={
                    "rpc": f"{rpc.service}/{rpc.method}",
                    "grpc_type": rpc.kind,
                    "grpc_code": code.name,
                    "duration_ms": duration_ms,
                    "peer": peer,
                },
            )


def _status_of(context: Context) -> grpc.StatusCode | None:
    """The code set on ``context``, if any (grpc gives a ``StatusCode`` or its number)."""
    code: object = context.code()
    if isinstance(code, grpc.StatusCode) or code is None:
        return code
    return _CODE_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN) if isinstance(code, int) else None


#: A call cancelled this close to its deadline was cut by the deadline: the client's own timer
#: fires at the same instant as the server's and its cancellation may arrive first.
_DEADLINE_SLACK_SECONDS = 0.1


def _cancelled_status(remaining: float | None) -> grpc.StatusCode:
    """The code of a cancelled call, given the seconds that were left before its deadline."""
    expired = remaining is not None and remaining <= _DEADLINE_SLACK_SECONDS
    return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
