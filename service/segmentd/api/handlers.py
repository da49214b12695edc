"""Server interceptors that wrap each method's handler, once, and the handler shapes they rebuild.

    class MyInterceptor(WrappingInterceptor):
        def wrap(self, method, handler):                  # called on a method's first call
            return rebuilt(handler, my_behavior(behavior_of(handler)))

gRPC asks the interceptors for the handler on every call. Building a wrapped handler then
would cost the hot path an allocation of several closures per call, so the wrapped handler
is kept per (method, handler) and each later call pays one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import grpc
from grpc import aio

#: A servicer method: ``(request or request iterator, context)`` -> response, or an async generator.
Behavior = Callable[..., Any]
# A string: grpc's handler type is generic only to type checkers.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")

_FACTORY_BY_STREAMING: dict[tuple[bool, bool], Callable[..., Handler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class WrappingInterceptor(aio.ServerInterceptor):
    """Replaces each method's handler by ``wrap(method, handler)``, built on its first call."""

    def __init__(self) -> None:
        self._wrapped: dict[tuple[str, int], Handler] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Request, _Response] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        """Return the called method's wrapped handler (an unknown method is left to gRPC)."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        # Handlers are registered once and live as long as the server: their id is stable.
        key = (handler_call_details.method, id(handler))
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            wrapped = self._wrapped[key] = self.wrap(handler_call_details.method, handler)
        return wrapped

    def wrap(self, method: str, handler: Handler) -> Handler:
        """Return the handler that serves ``method`` instead of ``handler``."""
        raise NotImplementedError


def behavior_of(handler: Handler) -> Behavior:
    """The servicer method a handler calls, whatever its shape."""
    behavior = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    if behavior is None:  # pragma: no cover - every gRPC handler has one of the four shapes
        raise ValueError("a handler without a behavior")
    return behavior


def rebuilt(
    handler: Handler,
    behavior: Behavior,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> Handler:
    """A handler of ``handler``'s shape and codecs that calls ``behavior`` instead.

    ``request_deserializer``, when given, replaces ``handler``'s.
    """
    factory = _FACTORY_BY_STREAMING[(handler.request_streaming, handler.response_streaming)]
    return factory(
        behavior, request_deserializer or handler.request_deserializer, handler.response_serializer
    )
