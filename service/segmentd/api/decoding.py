"""Requests that protobuf cannot decode are answered INVALID_ARGUMENT, never UNKNOWN.

gRPC decodes a request before any servicer code runs, so an exception raised there
(invalid UTF-8 in a string field, nesting deeper than protobuf's recursion limit,
truncated or corrupt bytes) would reach the client as UNKNOWN carrying a Python class
name. :class:`DecodingInterceptor` replaces each method's request deserializer by one that
returns a :class:`Refused` marker instead of raising, and wraps the method so that a
marker, met as the request or anywhere in a request stream, aborts the call with
INVALID_ARGUMENT. The same deserializer refuses a string holding the NUL character, which
PostgreSQL cannot store (``segmentd.api.strings``), so that both stores accept the same
requests; only messages whose bytes hold a zero byte are walked, and not those of
``ImportProfiles``, whose servicer finds NUL on its own walk and treats it as it treats any
invalid profile (named by its position in the stream, skipped with ``skip_invalid``):

    bytes ──> safe deserializer ──> message ─────────> servicer
                                └─> Refused ──> abort(INVALID_ARGUMENT, "request: ..." / "field: ...")
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from grpc import aio

from segmentd.api.handlers import Behavior, Handler, WrappingInterceptor, behavior_of, rebuilt
from segmentd.api.strings import NUL_MESSAGE, nul_field

Context = aio.ServicerContext[Any, Any]

#: What the client is told; the parser's own text names internals (upb, class names).
UNDECODABLE_MESSAGE = (
    "request: not a valid {type} message (corrupt bytes, invalid UTF-8 in a string field, "
    "or nesting deeper than protobuf allows)"
)

#: Methods whose servicer finds NUL itself, on the walk it makes over every string anyway
#: (``import_decoding``: the profile holding it is invalid, like any other invalid profile):
#: walking each request here first cost as much as decoding it.
NUL_REFUSED_BY_SERVICER = frozenset({"/segmentd.v1.ProfileService/ImportProfiles"})


@dataclass(frozen=True, slots=True)
class Refused:
    """Stands for a request refused before it reached the servicer: ``details`` says why."""

    details: str


def _safe(deserializer: Callable[[bytes], Any] | None, *, find_nul: bool) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    # Generated stubs pass ``Message.FromString``: its class names the message type.
    owner = getattr(deserializer, "__self__", None)
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request")

    def deserialize(data: bytes) -> Any:
        try:
            message = deserializer(data)
        except (DecodeError, RecursionError, ValueError, UnicodeDecodeError):
            return Refused(UNDECODABLE_MESSAGE.format(type=type_name))
        # A NUL character is encoded as a zero byte: messages without one need no walk.
        if find_nul and b"\x00" in data and isinstance(message, Message):
            field = nul_field(message)
            if field is not None:
                return Refused(f"{field}: {NUL_MESSAGE}")
        return message

    return deserialize


async def _refuse(context: Context, marker: Refused) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, marker.details)


def _unary_request(behavior: Behavior) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def streamed(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, Refused):
                await _refuse(context, request)
            async for message in behavior(request, context):
                yield message

        return streamed

    async def unary(request: Any, context: Context) -> Any:
        if isinstance(request, Refused):
            await _refuse(context, request)
        return await behavior(request, context)

    return unary


def _checked_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    async def checked() -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Refused):
                await _refuse(context, request)
            yield request

    return checked()


def _stream_request(behavior: Behavior) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def streamed(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async for message in behavior(_checked_stream(requests, context), context):
                yield message

        return streamed

    async def unary(requests: AsyncIterator[Any], context: Context) -> Any:
        return await behavior(_checked_stream(requests, context), context)

    return unary


class DecodingInterceptor(WrappingInterceptor):
    """Answers INVALID_ARGUMENT for undecodable requests and NUL characters (module docstring)."""

    def wrap(self, method: str, handler: Handler) -> Handler:
        """The handler with a deserializer that never raises, refusing what it could not decode."""
        wrap_behavior = _stream_request if handler.request_streaming else _unary_request
        deserializer = _safe(handler.request_deserializer, find_nul=method not in NUL_REFUSED_BY_SERVICER)
        return rebuilt(handler, wrap_behavior(behavior_of(handler)), deserializer)
