"""The streaming calls of ``Client``: member listings that resume, and imports that can be stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Final

import grpc

from segmentd_client._importing import ImportStream, ProfileInput
from segmentd_client.errors import Unavailable, from_grpc_error
from segmentd_client.types import ImportResult, MemberChunk
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2, profiles_pb2_grpc

#: A member listing broken this many times in a row, without progress, fails.
MAX_RESUMES: Final = 5
RESUME_BACKOFF_SECONDS: Final = 0.5

Metadata = tuple[tuple[str, str], ...]


def member_chunks(
    stub: evaluation_pb2_grpc.EvaluationServiceStub,
    first: evaluation_pb2.ListSegmentMembersRequest,
    timeout: float | None,
    metadata: Metadata,
) -> Iterator[MemberChunk]:
    """Yield the chunks of a listing, resuming from the last token after an UNAVAILABLE."""
    request = evaluation_pb2.ListSegmentMembersRequest()
    request.CopyFrom(first)
    failures = 0
    while True:
        complete = False
        try:
            for message in stub.ListSegmentMembers(request, timeout=timeout, metadata=metadata):
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
        if first.page_size and request.page_size <= 0:
            return
        failures += 1
        time.sleep(RESUME_BACKOFF_SECONDS * failures)


def import_profiles(
    stub: profiles_pb2_grpc.ProfileServiceStub,
    profiles: Iterable[ProfileInput],
    stream: ImportStream,
    timeout: float | None,
    metadata: Metadata,
) -> ImportResult:
    """Send ``profiles`` in one ImportProfiles call; an error while iterating them cancels it."""
    aborted: list[BaseException] = []
    call_made = threading.Event()
    calls: list[grpc.Future[profiles_pb2.ImportProfilesResponse]] = []

    def requests() -> Iterator[profiles_pb2.ImportProfilesRequest]:
        try:
            for item in profiles:
                yield from stream.add(item)
            yield from stream.finish()
        except Exception as exc:  # the caller's, or a profile refused here: stop the call
            aborted.append(exc)
            call_made.wait()
            calls[0].cancel()

    # grpc consumes requests() on a thread of its own, which may start before .future() returns.
    calls.append(stub.ImportProfiles.future(requests(), timeout=timeout, metadata=metadata))
    call_made.set()
    try:
        return stream.result(calls[0].result())
    except grpc.FutureCancelledError:
        raise aborted[0] from None
    except grpc.RpcError as exc:
        if aborted:
            raise aborted[0] from None
        raise stream.error(from_grpc_error(exc)) from exc
