"""Saved segments: named selections of the customer list (create, read, list, update,
archive), and the selection a segment makes, for the list and for bulk actions.

* A segment's filter is required and validated exactly as the customer list validates
  one, a wrong part named under `segment.filter`; it is stored as its canonical document
  (`purse.domain.segments.filter_to_document`), so what is read back is the very tree
  that was validated. Its scope is the list's (`ListScope`), ids of another business
  selecting no one there as in the list.
* A name is unique among the business's live segments (ALREADY_EXISTS NAME_TAKEN naming
  `segment.name`); archiving one frees its name. A segment is archived whenever asked:
  what used it read its selection when it started.
* `selection(business_id, segment_id)` is what other use cases call: the filter and
  scope of a live segment of the business, or NOT_FOUND SEGMENT_NOT_FOUND (another
  business's segments and archived ones alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from purse.domain.administrators import Actor
from purse.domain.errors import NotFound
from purse.domain.segments import (
    Filter,
    filter_from_document,
    filter_to_document,
    validate_filter,
)
from purse.domain.setup import Fields
from purse.service.admin.versioned import Resource, Versioned, unused
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table
from purse.store.postgres.customer_list import ListScope, selected_customers_max

SEGMENTS = Table("saved_segments", "segment_id")
_not_found = "SEGMENT_NOT_FOUND"
_name_taken = {
    "saved_segments_name_live": ("segment.name", "a live segment with this name", "NAME_TAKEN")
}


@dataclass(frozen=True, slots=True)
class SegmentDraft:
    """What an administrator sets on a segment; `filter` None: none was given."""

    name: str
    filter: Filter | None
    scope: ListScope


@dataclass(frozen=True, slots=True)
class SegmentSelection:
    """Which customers a segment selects: its filter within its scope."""

    filter: Filter
    scope: ListScope


@dataclass(frozen=True, slots=True)
class Segment:
    segment_id: int
    name: str
    selection: SegmentSelection
    version: int
    created_at: datetime
    archived_at: datetime | None


def validated(draft: SegmentDraft) -> Filter:
    """The draft's filter; InvalidArgument naming the first wrong field otherwise."""
    fields = Fields()
    fields.name("segment.name", draft.name)
    if draft.filter is None:
        fields.wrong("segment.filter", "required: which customers the segment selects")
    if len(draft.scope.customer_ids) > selected_customers_max:
        fields.wrong("segment.scope.customer_ids", f"at most {selected_customers_max} customers")
    fields.raise_if_any()
    assert draft.filter is not None
    validate_filter(draft.filter, "segment.filter")
    return draft.filter


def _columns(draft: SegmentDraft, tree: Filter) -> dict[str, object]:
    scope = draft.scope
    return {
        "name": draft.name,
        "filter": filter_to_document(tree),
        "program_id": scope.program_id,
        "point_of_sale_id": scope.point_of_sale_id,
        "terminal_id": scope.terminal_id,
        "customer_ids": list(scope.customer_ids),
    }


def _segment(row: Row) -> Segment:
    scope = ListScope(
        row["program_id"], row["point_of_sale_id"], row["terminal_id"], tuple(row["customer_ids"])
    )
    return Segment(
        row["segment_id"],
        row["name"],
        SegmentSelection(filter_from_document(row["filter"]), scope),
        row["version"],
        row["created_at"],
        row["archived_at"],
    )


class SavedSegments(Versioned[Segment]):
    def __init__(self, writes: BackOfficeWriting, reads: BackOfficeReads) -> None:
        resource = Resource(SEGMENTS, "saved segment", _not_found, _segment, unique=_name_taken)
        super().__init__(resource, writes, reads)

    async def create(self, actor: Actor, draft: SegmentDraft) -> Segment:
        tree = validated(draft)
        return _segment(await self.create_row(actor, _columns(draft, tree)))

    async def update(
        self, actor: Actor, segment_id: int, expected_version: int, draft: SegmentDraft
    ) -> Segment:
        tree = validated(draft)
        row = await self.update_row(actor, segment_id, expected_version, _columns(draft, tree))
        return _segment(row)

    async def archive(self, actor: Actor, segment_id: int, expected_version: int) -> Segment:
        return _segment(await self.archive_row(actor, segment_id, expected_version, unused))

    async def selection(self, business_id: int, segment_id: int) -> SegmentSelection:
        """What a live segment of the business selects; NotFound otherwise."""
        segment = await self.get(business_id, segment_id)
        if segment.archived_at is not None:
            raise NotFound("the saved segment is archived", reason=_not_found)
        return segment.selection
