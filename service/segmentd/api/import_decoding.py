"""The ``ImportProfiles`` stream, decoded with one walk over each profile's traits.

Decoding is most of an import's server time (docs/bench.md). Done the generic way, each
profile's ``Struct`` is walked three times: by the decoding interceptor looking for NUL
(``strings.nul_field``), by ``mappers.struct_to_dict``, and by the store's ``check_traits``.
Here one walk does the three:

    profile ─> walk the traits: a NUL ──────> InvalidArgument("traits")   that profile is invalid
                                unsure ─────> the generic path (struct_to_dict, then check_traits)
                                otherwise ──> CheckedTraits (check_traits has nothing left to do)

A NUL makes its profile invalid, as a NaN does: the import names it by its position in the
whole stream (``profiles[i].traits``) and skips it with ``skip_invalid``; a NUL in a user id
is a control character, which the importer's check of the id refuses the same way. So the
decoding interceptor leaves this method's requests to the import
(``decoding.NUL_REFUSED_BY_SERVICER``). *Unsure* covers whatever ``check_traits`` or
``struct_to_dict`` might refuse (a NaN, a key with a quote or a control character, nesting
too deep): those profiles take the generic path, which says exactly why.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

from google.protobuf import struct_pb2

from segmentd.api.mappers import struct_to_dict
from segmentd.api.strings import NUL, NUL_MESSAGE, struct_holds_nul
from segmentd.engine.rules import JsonValue
from segmentd.errors import InvalidArgument
from segmentd.importer import ImportBatch, IncomingProfile
from segmentd.store.checks import MAX_TRAITS_DEPTH, CheckedTraits, is_addressable_key
from segmentd_client.v1 import profiles_pb2


async def import_batches(
    requests: AsyncIterable[profiles_pb2.ImportProfilesRequest],
) -> AsyncIterator[ImportBatch]:
    """Decode an ``ImportProfiles`` stream, one batch per message, as the messages arrive."""
    async for request in requests:
        yield ImportBatch(
            profiles=decode_profiles(request), replace=request.replace, skip_invalid=request.skip_invalid
        )


def decode_profiles(request: profiles_pb2.ImportProfilesRequest) -> list[IncomingProfile]:
    """The profiles of one message; traits that cannot be decoded (a NUL too) are that profile's error."""
    return [(profile.user_id, _traits(profile.traits)) for profile in request.profiles]


class _HoldsNul(Exception):
    """A string of the traits holds NUL."""


class _Unsure(Exception):
    """The traits hold something the generic path must look at."""


def _traits(message: struct_pb2.Struct) -> Mapping[str, JsonValue] | InvalidArgument:
    try:
        return _checked_traits(message)
    except _HoldsNul:
        return InvalidArgument("traits", NUL_MESSAGE)
    except _Unsure:
        pass
    if struct_holds_nul(message):  # the walk stopped early: NUL may lie further on
        return InvalidArgument("traits", NUL_MESSAGE)
    try:
        return struct_to_dict(message)
    except InvalidArgument as error:  # that profile alone is invalid
        return error


def _checked_traits(message: struct_pb2.Struct) -> CheckedTraits:
    traits = CheckedTraits()
    fields = message.fields  # keys, then lookups: the map's items() is Python-level and slower
    for key in fields:
        if not is_addressable_key(key):  # a NUL in a key is a control character: unsure too
            raise _Unsure
        traits[key] = _checked_value(fields[key], 1)
    return traits


def _checked_object(message: struct_pb2.Struct, depth: int) -> dict[str, Any]:
    if depth > MAX_TRAITS_DEPTH:
        raise _Unsure
    fields = message.fields
    result = {}
    for key in fields:
        if not is_addressable_key(key):
            raise _Unsure
        result[key] = _checked_value(fields[key], depth)
    return result


def _checked_value(value: struct_pb2.Value, depth: int) -> Any:
    """The value of a ``Value`` inside a container at ``depth`` (the traits are depth 1)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text = value.string_value
        if NUL in text:
            raise _HoldsNul
        return text  # valid UTF-8: protobuf refuses anything else
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise _Unsure
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _checked_object(value.struct_value, depth + 1)
    if kind == "list_value":
        if depth + 1 > MAX_TRAITS_DEPTH:
            raise _Unsure
        return [_checked_value(item, depth + 1) for item in value.list_value.values]
    return None  # null_value, or no kind set (read as null, as struct_to_dict does)
