"""The access-control interceptor: every call but health and reflection shows a key with a scope.

    no ``authorization: Bearer <key>``, or a key unknown/revoked  ->  UNAUTHENTICATED
    a valid key without the method's scope (or an unmapped method) ->  PERMISSION_DENIED
    the store cannot say whether the key is valid                  ->  UNAVAILABLE
    no connection free in time, or the deadline passed, meanwhile  ->  RESOURCE_EXHAUSTED,
                                                                       DEADLINE_EXCEEDED

A refused call never reaches its handler: the interceptor answers with a handler of the same
shape that aborts, and that never decodes the request (a caller without a key must not make
the server parse and scan a message of several megabytes). Those handlers are built once per
(method, refusal) and reused, so the telemetry interceptor in front, which wraps each
distinct handler once, counts refused calls under their codes without its table growing
with them. Refusals are logged on
``segmentd.auth`` with the method and the key's public id when there is one, never the key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.api.errors import status_for
from segmentd.api.handlers import rebuilt
from segmentd.config import Settings
from segmentd.errors import DeadlineExceeded, ResourceExhausted, StoreUnavailable
from segmentd.security.keys import bearer_key, key_id_of
from segmentd.security.scopes import grants, is_open, required_scope
from segmentd.security.verifier import KeyVerifier
from segmentd.store.api_keys import ApiKeyRepository

log = logging.getLogger("segmentd.auth")

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
Context = aio.ServicerContext[Any, Any]

_MISSING_KEY = (grpc.StatusCode.UNAUTHENTICATED, "missing API key: send 'authorization: Bearer <key>'")
_INVALID_KEY = (grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked API key")
_MALFORMED_KEY = (grpc.StatusCode.UNAUTHENTICATED, "malformed API key: a key reads sdk_<id>_<secret>")
_STORE_DOWN = (grpc.StatusCode.UNAVAILABLE, "cannot check the API key: database unavailable")
_CHECK_FAILED = (grpc.StatusCode.INTERNAL, "internal error")


def key_verifier(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> KeyVerifier | None:
    """Return the key verifier ``settings`` ask for: one with ``require_auth``, else none."""
    if not settings.require_auth:
        return None
    # Half the pool at most: callers showing new (or made-up) keys leave the rest to the calls.
    max_lookups = max(1, settings.database_pool_size // 2)
    return KeyVerifier(ApiKeyRepository(sessions), settings.auth_cache_seconds, max_lookups=max_lookups)


def access_control(verifier: KeyVerifier | None) -> tuple[aio.ServerInterceptor, ...]:
    """Return the interceptors that check keys with ``verifier`` (none without one)."""
    return () if verifier is None else (AuthInterceptor(verifier),)


def _authorization(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | bytes | None:
    for name, value in metadata or ():
        if name == "authorization":
            return value
    return None


def _permission_denied(full_method: str) -> tuple[grpc.StatusCode, str]:
    scope = required_scope(full_method)
    if scope is None:
        return grpc.StatusCode.PERMISSION_DENIED, "no API key may call this method"
    return grpc.StatusCode.PERMISSION_DENIED, f"the API key lacks the scope {scope!r}"


class AuthInterceptor(aio.ServerInterceptor):
    """Refuses calls without a valid API key holding the method's scope.

    Args:
        verifier: checks presented keys.
    """

    def __init__(self, verifier: KeyVerifier) -> None:
        self._verifier = verifier
        self._refusals: dict[tuple[str, grpc.StatusCode, str], grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Request, _Response] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        """Return the method's handler if the call may proceed, else one that refuses it."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_open(method):
            return handler
        refusal = await self._refusal(method, _authorization(handler_call_details.invocation_metadata))
        if refusal is None:
            return handler
        return self._refusing(method, handler, refusal)

    async def _refusal(
        self, method: str, authorization: str | bytes | None
    ) -> tuple[grpc.StatusCode, str] | None:
        key = bearer_key(authorization)
        if key is None:
            log.warning("%s refused: no API key", method)
            return _MISSING_KEY
        if key_id_of(key) is None:  # never one of ours: nothing to look up, nothing to hide
            log.warning("%s refused: malformed API key", method)
            return _MALFORMED_KEY
        try:
            identity = await self._verifier.identify(key)
        except StoreUnavailable:
            log.warning("%s refused: the store cannot check API keys", method)
            return _STORE_DOWN
        except (ResourceExhausted, DeadlineExceeded) as error:
            # The store is fine but busy, or the caller's time ran out: what any call says then.
            log.warning("%s refused: its API key could not be checked: %s", method, error)
            return status_for(error), f"cannot check the API key: {error}"
        except Exception:
            # Refuse (never let the call through) and say nothing more, as the error boundary does.
            log.exception("%s refused: checking its API key failed", method)
            return _CHECK_FAILED
        if identity is None:
            log.warning("%s refused: unknown or revoked API key", method)
            return _INVALID_KEY
        if not grants(identity.scopes, method):
            log.warning(
                "%s refused: API key %s has scopes %s",
                method,
                identity.key_id,
                " ".join(sorted(identity.scopes)) or "(none)",
            )
            return _permission_denied(method)
        return None

    def _refusing(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any], refusal: tuple[grpc.StatusCode, str]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        cache_key = (method, *refusal)
        refusing = self._refusals.get(cache_key)
        if refusing is None:
            refusing = self._refusals[cache_key] = _refusing_handler(handler, *refusal)
        return refusing


def _refusing_handler(
    handler: grpc.RpcMethodHandler[Any, Any], code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler shaped like ``handler`` (same streaming, same codecs) that aborts every call."""

    async def refuse(_request: Any, context: Context) -> Any:
        await context.abort(code, message)

    async def refuse_stream(_request: Any, context: Context) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # pragma: no cover - abort raises; the yield makes this an async generator

    return rebuilt(handler, refuse_stream if handler.response_streaming else refuse, _not_decoded)


def _not_decoded(_data: bytes) -> None:
    """The request deserializer of a refused call: its bytes are never parsed."""
