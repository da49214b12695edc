"""Bytes protobuf cannot decode are INVALID_ARGUMENT on every RPC, never UNKNOWN."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor

from segmentd.server import SERVICE_NAMES
from segmentd_client.v1 import evaluation_pb2, profiles_pb2, segments_pb2, user_lists_pb2

_FILES = (segments_pb2, profiles_pb2, evaluation_pb2, user_lists_pb2)


def _methods() -> list[tuple[str, bool, bool, int]]:
    """Every RPC, with the number of a string or message field of its request."""
    methods = []
    for module in _FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.full_name in SERVICE_NAMES
            for method in service.methods:
                field = next(
                    f.number
                    for f in method.input_type.fields
                    if f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE)
                )
                name = f"/{service.full_name}/{method.name}"
                methods.append((name, method.client_streaming, method.server_streaming, field))
    return methods


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2); lengths here stay below 2**14."""
    size = len(payload)
    varint = bytes([size]) if size < 0x80 else bytes([(size & 0x7F) | 0x80, size >> 7])
    return bytes([number << 3 | 2]) + varint + payload


def _deep_rule(depth: int) -> bytes:
    rule = b""
    for _ in range(depth):
        rule = _field(1, _field(1, rule))  # Rule.all -> RuleGroup.rules[0]
    return rule


def _deep_traits(depth: int) -> bytes:
    struct = b""
    for _ in range(depth):  # Struct.fields["a"] -> Value.struct_value -> Struct
        struct = _field(1, _field(1, b"a") + _field(2, _field(5, struct)))
    return struct


UNDECODABLE: dict[str, Callable[[int], bytes]] = {
    "corrupt": lambda field: b"\xff\xff\xff\xff",
    "truncated": lambda field: bytes([field << 3 | 2, 5]) + b"ab",
    # A string field holding invalid UTF-8, or a message field holding corrupt bytes.
    "invalid-utf8": lambda field: _field(field, b"\xff\xfe"),
}

TOO_DEEP = {
    "CreateSegment": _field(1, _field(3, _deep_rule(60))),  # segment.rule
    "UpdateSegment": _field(1, _field(3, _deep_rule(60))),
    "UpsertProfile": _field(1, _field(2, _deep_traits(40))),  # profile.traits
    "EvaluateProfile": _field(1, _deep_traits(40)),  # traits
    "ImportProfiles": _field(1, _field(2, _deep_traits(40))),  # profiles[0].traits
}


def _raw(data: bytes) -> bytes:
    return data


async def _call(
    channel: grpc.aio.Channel, method: str, client_streaming: bool, server_streaming: bool, data: bytes
) -> tuple[grpc.StatusCode, str]:
    codecs = {"request_serializer": _raw, "response_deserializer": _raw}
    try:
        if client_streaming:
            await channel.stream_unary(method, **codecs)(iter([data]))
        elif server_streaming:
            async for _ in channel.unary_stream(method, **codecs)(data):
                pass
        else:
            await channel.unary_unary(method, **codecs)(data)
    except grpc.aio.AioRpcError as error:
        return error.code(), str(error.details())
    return grpc.StatusCode.OK, ""


def _assert_refused(code: grpc.StatusCode, details: str) -> None:
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details.startswith("request: not a valid segmentd.v1.")
    assert "Error" not in details and "upb" not in details


@pytest.mark.parametrize("payload", list(UNDECODABLE), ids=list(UNDECODABLE))
@pytest.mark.parametrize(("method", "client_streaming", "server_streaming", "field"), _methods())
async def test_rpc__undecodable_bytes__invalid_argument_naming_the_message(
    channel, method, client_streaming, server_streaming, field, payload
):
    data = UNDECODABLE[payload](field)
    _assert_refused(*await _call(channel, method, client_streaming, server_streaming, data))


@pytest.mark.parametrize("rpc", list(TOO_DEEP))
async def test_rpc__nesting_deeper_than_protobuf_parses__invalid_argument(channel, rpc):
    method = next(m for m in _methods() if m[0].endswith(f"/{rpc}"))
    _assert_refused(*await _call(channel, method[0], method[1], method[2], TOO_DEEP[rpc]))


async def test_import_profiles__undecodable_second_message__invalid_argument_and_nothing_stored(
    channel, profiles
):
    first = profiles_pb2.ImportProfilesRequest(
        profiles=[profiles_pb2.Profile(user_id="u1")]
    ).SerializeToString()
    call = channel.stream_unary(
        "/segmentd.v1.ProfileService/ImportProfiles", request_serializer=_raw, response_deserializer=_raw
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(iter([first, UNDECODABLE["invalid-utf8"](1)]))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="u1"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
