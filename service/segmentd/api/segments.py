"""The ``segmentd.v1.SegmentService`` servicer: decode, one domain call, encode.

``UpdateSegment`` and each request of ``BatchUpdateSegments`` decode to the same
``SegmentWrite``; a batch's fields are named below ``requests[i]``.
"""

from __future__ import annotations

from google.protobuf import empty_pb2
from grpc import aio

from segmentd.api import mappers
from segmentd.api.errors import abort_on_domain_error
from segmentd.errors import InvalidArgument
from segmentd.segments import SegmentCatalog
from segmentd.store.segment_writes import SegmentWrite
from segmentd_client.v1 import segments_pb2, segments_pb2_grpc

Context = aio.ServicerContext[object, object]

_UPDATABLE_FIELDS = frozenset({"description", "rule", "labels"})


def _write_from_proto(request: segments_pb2.UpdateSegmentRequest, prefix: str = "") -> SegmentWrite:
    """The write an ``UpdateSegmentRequest`` asks for; ``prefix`` places its fields in a batch."""
    fields = set(request.update_mask.paths) or _UPDATABLE_FIELDS
    unknown = fields - _UPDATABLE_FIELDS
    if unknown:
        raise InvalidArgument(
            f"{prefix}update_mask", f"cannot update {sorted(unknown)}; updatable: description, rule, labels"
        )
    segment = request.segment
    rule_field = f"{prefix}segment.rule"
    return SegmentWrite(
        name=segment.name,
        etag=segment.etag,
        description=segment.description if "description" in fields else None,
        rule=mappers.rule_from_proto(segment.rule, rule_field) if "rule" in fields else None,
        labels=segment.labels if "labels" in fields else None,
        allow_missing=request.allow_missing,
    )


class SegmentServicer(segments_pb2_grpc.SegmentServiceServicer):
    """``segmentd.v1.SegmentService``."""

    def __init__(self, catalog: SegmentCatalog) -> None:
        self._catalog = catalog

    async def CreateSegment(
        self, request: segments_pb2.CreateSegmentRequest, context: Context
    ) -> segments_pb2.Segment:
        """Create a segment (or, with ``validate_only``, check that it could be created)."""
        async with abort_on_domain_error(context):
            segment = request.segment
            rule = mappers.rule_from_proto(segment.rule, "segment.rule")
            created = await self._catalog.create(
                segment.name, segment.description, rule, segment.labels, validate_only=request.validate_only
            )
            return mappers.segment_to_proto(created)

    async def GetSegment(
        self, request: segments_pb2.GetSegmentRequest, context: Context
    ) -> segments_pb2.Segment:
        """Return a segment, at its current or a given version."""
        async with abort_on_domain_error(context):
            if request.version < 0:
                raise InvalidArgument("version", "must be 0 (the current version) or positive")
            return mappers.segment_to_proto(await self._catalog.get(request.name, request.version))

    async def ListSegments(
        self, request: segments_pb2.ListSegmentsRequest, context: Context
    ) -> segments_pb2.ListSegmentsResponse:
        """Return one page of segments."""
        async with abort_on_domain_error(context):
            page = await self._catalog.list(request.page_size, request.page_token, request.labels)
            return segments_pb2.ListSegmentsResponse(
                segments=[mappers.segment_to_proto(s) for s in page.segments],
                next_page_token=page.next_page_token,
            )

    async def UpdateSegment(
        self, request: segments_pb2.UpdateSegmentRequest, context: Context
    ) -> segments_pb2.Segment:
        """Write a new version of a segment, if the etag sent is the current one."""
        async with abort_on_domain_error(context):
            written = await self._catalog.write(
                _write_from_proto(request), validate_only=request.validate_only
            )
            return mappers.segment_to_proto(written)

    async def BatchUpdateSegments(
        self, request: segments_pb2.BatchUpdateSegmentsRequest, context: Context
    ) -> segments_pb2.BatchUpdateSegmentsResponse:
        """Create or update many segments in one transaction, all or none."""
        async with abort_on_domain_error(context):
            writes = []
            for index, child in enumerate(request.requests):
                prefix = f"requests[{index}]."
                if child.validate_only:
                    raise InvalidArgument(
                        f"{prefix}validate_only", "must be false; set the batch's validate_only"
                    )
                writes.append(_write_from_proto(child, prefix))
            written = await self._catalog.write_many(writes, validate_only=request.validate_only)
            return segments_pb2.BatchUpdateSegmentsResponse(
                segments=[mappers.segment_to_proto(segment) for segment in written]
            )

    async def DeleteSegment(
        self, request: segments_pb2.DeleteSegmentRequest, context: Context
    ) -> empty_pb2.Empty:
        """Delete a segment that no other segment references."""
        async with abort_on_domain_error(context):
            await self._catalog.delete(request.name, request.etag)
            return empty_pb2.Empty()
