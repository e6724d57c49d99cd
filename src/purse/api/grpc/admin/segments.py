"""AdminService: saved segments, their filter and scope mapped as the customer list's
(`customer_list.py`), a wrong part named under `segment.filter` and `segment.scope`."""

from __future__ import annotations

from purse.admin.v1 import segments_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.customer_list import (
    filter_from_proto,
    filter_to_proto,
    scope_from_proto,
    scope_to_proto,
)
from purse.api.grpc.admin.mapping import archive_time
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.service.admin.segments import SavedSegments, Segment, SegmentDraft


def segment_to_proto(segment: Segment) -> pb.SavedSegment:
    message = pb.SavedSegment(
        segment_id=segment.segment_id,
        name=segment.name,
        filter=filter_to_proto(segment.selection.filter),
        scope=scope_to_proto(segment.selection.scope),
        version=segment.version,
    )
    message.create_time.FromDatetime(segment.created_at)
    archive_time(message, segment.archived_at)
    return message


def _draft(message: pb.SavedSegment) -> SegmentDraft:
    tree = (
        filter_from_proto(message.filter, "segment.filter") if message.HasField("filter") else None
    )
    return SegmentDraft(message.name, tree, scope_from_proto(message.scope, "segment.scope"))


class SegmentCalls:
    """The saved segment RPCs of AdminService."""

    segments: SavedSegments

    @administrator_call(Access.CHANGE)
    async def CreateSavedSegment(
        self, request: pb.CreateSavedSegmentRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateSavedSegmentResponse:
        segment = await self.segments.create(caller.actor, _draft(request.segment))
        return pb.CreateSavedSegmentResponse(segment=segment_to_proto(segment))

    @administrator_call(Access.READ)
    async def GetSavedSegment(
        self, request: pb.GetSavedSegmentRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetSavedSegmentResponse:
        segment = await self.segments.get(caller.business_id, request.segment_id)
        return pb.GetSavedSegmentResponse(segment=segment_to_proto(segment))

    @administrator_call(Access.READ)
    async def ListSavedSegments(
        self, request: pb.ListSavedSegmentsRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListSavedSegmentsResponse:
        page = await self.segments.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListSavedSegmentsResponse(next_page_token=page.next_page_token)
        response.segments.extend(segment_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateSavedSegment(
        self, request: pb.UpdateSavedSegmentRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateSavedSegmentResponse:
        segment = await self.segments.update(
            caller.actor,
            request.segment.segment_id,
            request.expected_version,
            _draft(request.segment),
        )
        return pb.UpdateSavedSegmentResponse(segment=segment_to_proto(segment))

    @administrator_call(Access.CHANGE)
    async def ArchiveSavedSegment(
        self, request: pb.ArchiveSavedSegmentRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchiveSavedSegmentResponse:
        segment = await self.segments.archive(
            caller.actor, request.segment_id, request.expected_version
        )
        return pb.ArchiveSavedSegmentResponse(segment=segment_to_proto(segment))
