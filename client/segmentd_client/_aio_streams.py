"""The streaming calls of ``AsyncClient``: member listings that resume, and imports that can be stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import grpc
from grpc import aio

from segmentd_client._importing import ImportStream, ProfileInput
from segmentd_client._streams import MAX_RESUMES, RESUME_BACKOFF_SECONDS, Metadata
from segmentd_client.errors import Unavailable, from_grpc_error
from segmentd_client.types import ImportResult, MemberChunk
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2, profiles_pb2_grpc

ImportCall = aio.StreamUnaryCall[profiles_pb2.ImportProfilesRequest, profiles_pb2.ImportProfilesResponse]


async def member_chunks(
    stub: evaluation_pb2_grpc.EvaluationServiceAsyncStub,
    first: evaluation_pb2.ListSegmentMembersRequest,
    timeout: float | None,
    metadata: Metadata,
) -> AsyncIterator[MemberChunk]:
    """Yield the chunks of a listing, resuming from the last token after an UNAVAILABLE."""
    request = evaluation_pb2.ListSegmentMembersRequest()
    request.CopyFrom(first)
    failures = 0
    while True:
        call = stub.ListSegmentMembers(request, timeout=timeout, metadata=metadata)
        complete = False
        try:
            async for message in call:
                request.page_token, failures = message.next_page_token, 0
                complete = not message.next_page_token  # the last message of the listing
                if first.page_size:
                    request.page_size -= len(message.user_ids)
                yield MemberChunk(tuple(message.user_ids), message.next_page_token)
            return
        except grpc.RpcError as exc:
            if complete:  # only the stream's status was lost: resuming from "" would start over
                return
            error = from_grpc_error(exc)
            if not isinstance(error, Unavailable) or failures >= MAX_RESUMES:
                raise error from exc
        finally:
            call.cancel()
        if first.page_size and request.page_size <= 0:
            return
        failures += 1
        await asyncio.sleep(RESUME_BACKOFF_SECONDS * failures)


async def import_profiles(
    stub: profiles_pb2_grpc.ProfileServiceAsyncStub,
    profiles: Iterable[ProfileInput] | AsyncIterable[ProfileInput],
    stream: ImportStream,
    timeout: float | None,
    metadata: Metadata,
) -> ImportResult:
    """Send ``profiles`` in one ImportProfiles call; an error while iterating them cancels it."""
    call: ImportCall = stub.ImportProfiles(timeout=timeout, metadata=metadata)
    try:
        async for item in _items(profiles):
            for request in stream.add(item):
                await _write(call, request)
        for request in stream.finish():
            await _write(call, request)
        await call.done_writing()
        return stream.result(await call)
    except grpc.RpcError as exc:
        raise stream.error(from_grpc_error(exc)) from exc
    except BaseException:
        call.cancel()  # nothing may be committed now
        raise


async def _items(
    profiles: Iterable[ProfileInput] | AsyncIterable[ProfileInput],
) -> AsyncIterator[ProfileInput]:
    if isinstance(profiles, AsyncIterable):
        async for item in profiles:
            yield item
    else:
        for item in profiles:
            yield item


async def _write(call: ImportCall, request: profiles_pb2.ImportProfilesRequest) -> None:
    try:
        await call.write(request)
    except asyncio.InvalidStateError:
        await call  # the call ended early: raise its status
        raise
