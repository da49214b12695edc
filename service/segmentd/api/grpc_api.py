"""The gRPC servicers: decode the request, make one domain call, encode the answer.

Method names are PascalCase here only, because grpc generates them from the .proto.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import empty_pb2
from grpc import aio

from segmentd.api import import_decoding, mappers, stats_mappers
from segmentd.api.errors import abort_on_domain_error
from segmentd.errors import InvalidArgument
from segmentd.evaluation import Evaluator
from segmentd.importer import ProfileImporter
from segmentd.membership import Membership
from segmentd.profiles import ProfileDirectory
from segmentd.statistics import SegmentStatistics
from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
)

Context = aio.ServicerContext[object, object]


class ProfileServicer(profiles_pb2_grpc.ProfileServiceServicer):
    """``segmentd.v1.ProfileService``."""

    def __init__(
        self, profiles: ProfileDirectory, importer: ProfileImporter, max_events: int = 10_000
    ) -> None:
        self._profiles = profiles
        self._importer = importer
        self._max_events = max_events

    async def UpsertProfile(
        self, request: profiles_pb2.UpsertProfileRequest, context: Context
    ) -> profiles_pb2.Profile:
        """Create or update a profile."""
        async with abort_on_domain_error(context):
            traits = mappers.struct_to_dict(request.profile.traits, "profile.traits")
            stored = await self._profiles.upsert(request.profile.user_id, traits, replace=request.replace)
            return mappers.profile_to_proto(stored)

    async def GetProfile(
        self, request: profiles_pb2.GetProfileRequest, context: Context
    ) -> profiles_pb2.Profile:
        """Return a profile."""
        async with abort_on_domain_error(context):
            return mappers.profile_to_proto(await self._profiles.get(request.user_id))

    async def DeleteProfile(
        self, request: profiles_pb2.DeleteProfileRequest, context: Context
    ) -> empty_pb2.Empty:
        """Erase a profile and its events."""
        async with abort_on_domain_error(context):
            await self._profiles.delete(request.user_id)
            return empty_pb2.Empty()

    async def RecordEvents(
        self, request: profiles_pb2.RecordEventsRequest, context: Context
    ) -> profiles_pb2.RecordEventsResponse:
        """Add events to the per-day counts, all or nothing."""
        async with abort_on_domain_error(context):
            if len(request.events) > self._max_events:
                raise InvalidArgument("events", f"at most {self._max_events} events per call")
            received_at = datetime.now(UTC)
            events = [
                mappers.event_from_proto(event, received_at, f"events[{index}]")
                for index, event in enumerate(request.events)
            ]
            return profiles_pb2.RecordEventsResponse(recorded=await self._profiles.record_events(events))

    async def ImportProfiles(
        self, request_iterator: AsyncIterator[profiles_pb2.ImportProfilesRequest], context: Context
    ) -> profiles_pb2.ImportProfilesResponse:
        """Upsert a stream of profiles in one transaction."""
        async with abort_on_domain_error(context):
            report = await self._importer.import_stream(import_decoding.import_batches(request_iterator))
            return mappers.import_report_to_proto(report)


@dataclass(frozen=True, slots=True)
class EvaluationLimits:
    """Bounds on evaluation requests."""

    max_batch_size: int


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    """``segmentd.v1.EvaluationService``."""

    def __init__(
        self,
        evaluator: Evaluator,
        membership: Membership,
        limits: EvaluationLimits,
        statistics: SegmentStatistics,
    ) -> None:
        self._evaluator = evaluator
        self._membership = membership
        self._limits = limits
        self._statistics = statistics

    async def EvaluateUser(
        self, request: evaluation_pb2.EvaluateUserRequest, context: Context
    ) -> evaluation_pb2.EvaluateUserResponse:
        """Return the segments a stored user is in."""
        async with abort_on_domain_error(context):
            verdict = await self._evaluator.evaluate_user(
                request.user_id, request.segment_names, strong=mappers.is_strong(request.consistency)
            )
            return evaluation_pb2.EvaluateUserResponse(
                segments=verdict.segments,
                evaluated_at=mappers.timestamp(verdict.evaluated_at),
                **mappers.freshness_fields(verdict.freshness),
            )

    async def EvaluateProfile(
        self, request: evaluation_pb2.EvaluateProfileRequest, context: Context
    ) -> evaluation_pb2.EvaluateProfileResponse:
        """Return the segments a profile given inline is in."""
        async with abort_on_domain_error(context):
            traits = mappers.struct_to_dict(request.traits)
            verdict = await self._evaluator.evaluate_profile(traits, request.segment_names, request.user_id)
            return evaluation_pb2.EvaluateProfileResponse(
                segments=verdict.segments, evaluated_at=mappers.timestamp(verdict.evaluated_at)
            )

    async def BatchEvaluateUsers(
        self, request: evaluation_pb2.BatchEvaluateUsersRequest, context: Context
    ) -> AsyncIterator[evaluation_pb2.BatchEvaluateUsersResponse]:
        """Stream the verdict of each user named."""
        async with abort_on_domain_error(context):
            if len(request.user_ids) > self._limits.max_batch_size:
                raise InvalidArgument("user_ids", f"at most {self._limits.max_batch_size} users per call")
            verdicts = self._evaluator.evaluate_users(
                request.user_ids, request.segment_names, strong=mappers.is_strong(request.consistency)
            )
            async for user_id, verdict in verdicts:
                if verdict is None:
                    yield evaluation_pb2.BatchEvaluateUsersResponse(user_id=user_id, found=False)
                    continue
                yield evaluation_pb2.BatchEvaluateUsersResponse(
                    user_id=user_id,
                    found=True,
                    segments=verdict.segments,
                    evaluated_at=mappers.timestamp(verdict.evaluated_at),
                    **mappers.freshness_fields(verdict.freshness),
                )

    async def ExplainEvaluation(
        self, request: evaluation_pb2.ExplainEvaluationRequest, context: Context
    ) -> evaluation_pb2.ExplainEvaluationResponse:
        """Explain one segment's verdict for one user, node by node."""
        async with abort_on_domain_error(context):
            explained = await self._evaluator.explain_user(
                request.user_id, request.segment_name, strong=mappers.is_strong(request.consistency)
            )
            return evaluation_pb2.ExplainEvaluationResponse(
                segment_name=explained.segment.name,
                segment_version=explained.segment.version,
                matched=explained.explanation.matched,
                explanation=mappers.explanation_to_proto(explained.explanation),
                evaluated_at=mappers.timestamp(explained.evaluated_at),
                **mappers.freshness_fields(explained.freshness),
            )

    async def ListSegmentMembers(
        self, request: evaluation_pb2.ListSegmentMembersRequest, context: Context
    ) -> AsyncIterator[evaluation_pb2.ListSegmentMembersResponse]:
        """Stream the members of a segment, computed by the database."""
        async with abort_on_domain_error(context):
            chunks = self._membership.list_members(
                request.segment_name, request.page_size, request.page_token
            )
            async for chunk in chunks:
                yield evaluation_pb2.ListSegmentMembersResponse(
                    user_ids=chunk.user_ids, next_page_token=chunk.next_page_token
                )

    async def CountSegmentMembers(
        self, request: evaluation_pb2.CountSegmentMembersRequest, context: Context
    ) -> evaluation_pb2.CountSegmentMembersResponse:
        """Count the members of a segment in the database."""
        async with abort_on_domain_error(context):
            count, version = await self._membership.count(request.segment_name)
            return evaluation_pb2.CountSegmentMembersResponse(count=count, segment_version=version)

    async def GetSegmentStats(
        self, request: evaluation_pb2.GetSegmentStatsRequest, context: Context
    ) -> evaluation_pb2.SegmentStats:
        """Describe a segment with aggregates computed by the database."""
        async with abort_on_domain_error(context):
            named = await self._statistics.stats(
                request.segment_name, request.numeric_traits, request.group_by
            )
            return stats_mappers.segment_stats_to_proto(named)

    async def CompareSegments(
        self, request: evaluation_pb2.CompareSegmentsRequest, context: Context
    ) -> evaluation_pb2.CompareSegmentsResponse:
        """Describe 2 to 10 segments and how each pair overlaps, in one scan."""
        async with abort_on_domain_error(context):
            segments, overlaps = await self._statistics.compare(request.segment_names, request.numeric_traits)
            return evaluation_pb2.CompareSegmentsResponse(
                segments=[stats_mappers.segment_stats_to_proto(named) for named in segments],
                overlaps=[stats_mappers.overlap_to_proto(overlap) for overlap in overlaps],
            )
