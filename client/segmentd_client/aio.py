"""``AsyncClient``: the asyncio client, on a ``grpc.aio`` channel (``Client`` is its blocking twin).

Every call has a deadline (``timeout`` seconds, ``stream_timeout`` for member listings and
imports, overridable per call), is retried by gRPC when it is safe to repeat (see
``segmentd_client._channel``), and fails with a ``segmentd_client.errors`` exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc import aio

from segmentd_client import _aio_streams, _convert, _requests
from segmentd_client import stats as _stats
from segmentd_client._channel import DEFAULT_STREAM_TIMEOUT, DEFAULT_TIMEOUT, TLS, channel_settings
from segmentd_client._importing import DEFAULT_BATCH_SIZE, ImportStream, ProfileInput
from segmentd_client.definitions import in_dependency_order, load_definitions
from segmentd_client.errors import NotFound, Unavailable, from_grpc_error
from segmentd_client.stats import Comparison, SegmentStats
from segmentd_client.types import (
    ApplyResult,
    Consistency,
    Evaluation,
    Event,
    Explanation,
    ImportResult,
    MemberChunk,
    Profile,
    Segment,
)
from segmentd_client.user_lists import AsyncUserListMethods
from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

Request = TypeVar("Request")
Response = TypeVar("Response")


class AsyncClient(AsyncUserListMethods):
    """An asyncio client of segmentd; use it as an async context manager, or await :meth:`close`.

    Args:
        target: ``host:port``; default ``$SEGMENTD_TARGET``, else ``localhost:50051``.
        api_key: sent as ``authorization: Bearer <key>``; default ``$SEGMENTD_API_KEY``.
        tls: ``TLS(...)`` settings, ``True`` for TLS with the system's roots, or
            ``None``/``False`` for a plaintext channel.
        timeout: the deadline of a unary call, in seconds (``None``: none).
        stream_timeout: the deadline of each member-listing attempt and of an import.
        options: more gRPC channel options.

    Example:
        >>> async with AsyncClient() as client:                        # doctest: +SKIP
        ...     (await client.evaluate_user("user-42")).segments
        ('upgrade-candidates',)
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        api_key: str | None = None,
        tls: TLS | bool | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._settings = channel_settings(target, api_key, tls, timeout, stream_timeout, tuple(options))
        settings = self._settings
        self._channel = (
            aio.secure_channel(settings.target, settings.tls.credentials(), settings.options)
            if settings.tls is not None
            else aio.insecure_channel(settings.target, settings.options)
        )
        self._segments = segments_pb2_grpc.SegmentServiceStub(self._channel)
        self._profiles = profiles_pb2_grpc.ProfileServiceStub(self._channel)
        self._evaluation = evaluation_pb2_grpc.EvaluationServiceStub(self._channel)

    @property
    def target(self) -> str:
        """The server address this client calls."""
        return self._settings.target

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        timeout: float | None,
    ) -> Response:
        try:
            return await method(
                request, timeout=timeout or self._settings.timeout, metadata=self._settings.metadata
            )
        except grpc.RpcError as exc:
            raise from_grpc_error(exc) from exc

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the channel is connected to the server.

        Raises:
            Unavailable: no connection within ``timeout`` seconds.
        """
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except TimeoutError:
            raise Unavailable(f"no connection to {self.target} within {timeout:g} s") from None

    # Evaluation

    async def evaluate_user(
        self,
        user_id: str,
        segments: Sequence[str] = (),
        *,
        consistency: Consistency = "cached",
        timeout: float | None = None,
    ) -> Evaluation:
        """Return the segments a stored user is in (among ``segments``; default all).

        ``consistency="strong"`` reads the profile and segments from the store, skipping
        every cache. Raises ``NotFound`` for a user with no profile.
        """
        request = _requests.evaluate_user(user_id, segments, consistency)
        response = await self._call(self._evaluation.EvaluateUser, request, timeout)
        return _convert.evaluation_from_proto(response)

    async def evaluate_profile(
        self,
        traits: Mapping[str, Any],
        segments: Sequence[str] = (),
        *,
        user_id: str = "",
        timeout: float | None = None,
    ) -> Evaluation:
        """Return the segments a profile held by the caller would be in (nothing is stored)."""
        request = _requests.evaluate_profile(traits, segments, user_id)
        answer = await self._call(self._evaluation.EvaluateProfile, request, timeout)
        return _convert.evaluation_from_proto(answer)

    async def explain(
        self,
        user_id: str,
        segment_name: str,
        *,
        consistency: Consistency = "cached",
        timeout: float | None = None,
    ) -> Explanation:
        """Return why a stored user is in a segment or not, node by node."""
        request = _requests.explain(user_id, segment_name, consistency)
        response = await self._call(self._evaluation.ExplainEvaluation, request, timeout)
        return _convert.explanation_from_proto(response)

    async def segment_stats(
        self,
        segment_name: str,
        traits: Sequence[str] = (),
        *,
        group_by: str = "",
        timeout: float | None = None,
    ) -> SegmentStats:
        """Return a segment's size, share and aggregates of numeric ``traits``, computed by the database.

        With ``group_by`` a trait path, the same per value of that trait (the 50 values with
        the most members, then the rest as one group).
        """
        request = _stats.stats_request(segment_name, traits, group_by)
        return _stats.stats_from_proto(await self._call(self._evaluation.GetSegmentStats, request, timeout))

    async def compare_segments(
        self, segment_names: Sequence[str], traits: Sequence[str] = (), *, timeout: float | None = None
    ) -> Comparison:
        """Return the statistics of 2 to 10 segments and every pair's overlap, from one scan."""
        request = _stats.compare_request(segment_names, traits)
        return _stats.comparison_from_proto(
            await self._call(self._evaluation.CompareSegments, request, timeout)
        )

    async def count_members(self, segment_name: str, *, timeout: float | None = None) -> int:
        """Return the number of members of a segment."""
        request = evaluation_pb2.CountSegmentMembersRequest(segment_name=segment_name)
        return (await self._call(self._evaluation.CountSegmentMembers, request, timeout)).count

    async def iter_members(
        self, segment_name: str, *, page_token: str = "", page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[str]:
        """Yield the user ids of a segment's members, in ascending order.

        See :meth:`iter_member_chunks` for resumption.
        """
        async for chunk in self.iter_member_chunks(
            segment_name, page_token=page_token, page_size=page_size, timeout=timeout
        ):
            for user_id in chunk.user_ids:
                yield user_id

    async def iter_member_chunks(
        self, segment_name: str, *, page_token: str = "", page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[MemberChunk]:
        """Yield a segment's members in chunks, each with the token that resumes after it.

        A stream broken by UNAVAILABLE is resumed from the last token received, up to
        ``MAX_RESUMES`` times in a row; the deadline applies to each attempt. ``page_size``
        (0: every member) stops the listing after that many ids.
        """
        chunks = _aio_streams.member_chunks(
            self._evaluation,
            _requests.members(segment_name, page_size, page_token),
            timeout or self._settings.stream_timeout,
            self._settings.metadata,
        )
        async for chunk in chunks:
            yield chunk

    # Profiles and events

    async def get_profile(self, user_id: str, *, timeout: float | None = None) -> Profile:
        """Return a user's profile; ``NotFound`` when there is none."""
        request = profiles_pb2.GetProfileRequest(user_id=user_id)
        return _convert.profile_from_proto(await self._call(self._profiles.GetProfile, request, timeout))

    async def upsert_profile(
        self, user_id: str, traits: Mapping[str, Any], *, replace: bool = False, timeout: float | None = None
    ) -> Profile:
        """Store a profile: merge ``traits`` into the stored ones (``None`` deletes a key), or replace."""
        request = _requests.upsert_profile(user_id, traits, replace)
        return _convert.profile_from_proto(await self._call(self._profiles.UpsertProfile, request, timeout))

    async def delete_profile(self, user_id: str, *, timeout: float | None = None) -> None:
        """Erase a user's profile and events; ``NotFound`` when there is none."""
        await self._call(
            self._profiles.DeleteProfile, profiles_pb2.DeleteProfileRequest(user_id=user_id), timeout
        )

    async def record_events(self, events: Iterable[Event], *, timeout: float | None = None) -> int:
        """Record events, all or nothing; return how many were recorded."""
        request = _requests.record_events(events)
        return (await self._call(self._profiles.RecordEvents, request, timeout)).recorded

    async def import_profiles(
        self,
        profiles: Iterable[ProfileInput] | AsyncIterable[ProfileInput],
        *,
        replace: bool = False,
        skip_invalid: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
    ) -> ImportResult:
        """Upsert many profiles (``{"user_id": ..., "traits": {...}}`` or ``Profile``) in one call.

        All or nothing unless ``skip_invalid``. Positions in errors (``profiles[3].user_id``)
        and in ``ImportResult.problems`` are 1-based positions in ``profiles``. An exception
        raised while iterating ``profiles`` cancels the call (nothing is stored) and is
        raised again here.
        """
        stream = ImportStream(replace, skip_invalid, batch_size)
        return await _aio_streams.import_profiles(
            self._profiles,
            profiles,
            stream,
            timeout or self._settings.stream_timeout,
            self._settings.metadata,
        )

    # Segments

    async def get_segment(self, name: str, *, version: int = 0, timeout: float | None = None) -> Segment:
        """Return a segment at its current version, or at ``version``."""
        request = segments_pb2.GetSegmentRequest(name=name, version=version)
        return _convert.segment_from_proto(await self._call(self._segments.GetSegment, request, timeout))

    async def list_segments(
        self, *, labels: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> list[Segment]:
        """Return every segment carrying all ``labels``, in name order (all pages)."""
        found: list[Segment] = []
        token = ""
        while True:
            request = _requests.list_segments(labels or {}, token)
            page = await self._call(self._segments.ListSegments, request, timeout)
            found.extend(_convert.segment_from_proto(segment) for segment in page.segments)
            token = page.next_page_token
            if not token:
                return found

    async def delete_segment(self, name: str, *, etag: str = "", timeout: float | None = None) -> None:
        """Delete a segment (its past versions stay readable); ``FailedPrecondition`` if referenced."""
        await self._call(
            self._segments.DeleteSegment, segments_pb2.DeleteSegmentRequest(name=name, etag=etag), timeout
        )

    async def apply_segment(
        self, definition: _requests.DefinitionInput, *, dry_run: bool = False, timeout: float | None = None
    ) -> ApplyResult:
        """Create a segment, or update it to the definition (with the etag read first).

        ``definition`` is a mapping (``name``, ``description``, ``labels``, ``rule``) or the
        path of a JSON/YAML file holding one. Returns what was done: ``created``,
        ``updated`` or ``unchanged``; with ``dry_run``, what would be done, checked by the
        server (rule, references, limits) without writing anything.
        """
        return (await self._apply([_requests.desired_segment(definition)], dry_run, timeout))[0]

    async def apply_segments(
        self,
        definitions: str | Path | Iterable[Mapping[str, Any]],
        *,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> list[ApplyResult]:
        """Apply many definitions (or a file or folder of them) in one transaction: all or none.

        Referenced segments are written first, so a definition may reference another one of
        the same call. With ``dry_run`` the server checks the whole set as if it were written.
        """
        found = load_definitions(definitions) if isinstance(definitions, str | Path) else list(definitions)
        desired = [_requests.desired_segment(definition) for definition in in_dependency_order(found)]
        return await self._apply(desired, dry_run, timeout)

    async def _apply(
        self, desired: list[segments_pb2.Segment], dry_run: bool, timeout: float | None
    ) -> list[ApplyResult]:
        current = [await self._current(segment.name, timeout) for segment in desired]
        request = _requests.apply_request(desired, current, dry_run=dry_run)
        written: Sequence[segments_pb2.Segment] = []
        if isinstance(request, segments_pb2.UpdateSegmentRequest):
            written = [await self._call(self._segments.UpdateSegment, request, timeout)]
        elif request is not None:
            written = (await self._call(self._segments.BatchUpdateSegments, request, timeout)).segments
        return _requests.apply_results(desired, current, written, dry_run=dry_run)

    async def _current(self, name: str, timeout: float | None) -> segments_pb2.Segment | None:
        try:
            return await self._call(
                self._segments.GetSegment, segments_pb2.GetSegmentRequest(name=name), timeout
            )
        except NotFound:
            return None
