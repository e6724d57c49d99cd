"""News and information: create, read, list (all, or published now), update, archive, and
the read a notification about an item makes.

* What an item holds and how it is validated is `purse.domain.news`'s; every wrong
  field is named under `news_item`.
* The points of sale an item is given must be live points of sale of the business,
  checked on their rows locked in the writing transaction (NOT_FOUND
  POINT_OF_SALE_NOT_FOUND naming `news_item.point_of_sale_ids[i]`); an update checks
  only those it adds, so one archived since the item named it stays named.
* `published_page` lists the live items published at this use case's clock, in keyset
  pages as every list; a token is tied to that list.
* `published(business_id, news_item_id, now)` is what a notification calls: the item
  if it is the business's, not archived and published at `now` (its title and text for
  a customer's language: `NewsDraft.title_in`, `text_in`); otherwise NOT_FOUND
  NEWS_ITEM_NOT_FOUND, its message saying which.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from purse.domain.administrators import Actor
from purse.domain.errors import NotFound
from purse.domain.news import NewsDraft, validate_news_item
from purse.service.admin.records import Page, PageRequest, page_of
from purse.service.admin.versioned import Columns, Resource, Versioned, unused, validated
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

NEWS_ITEMS = Table("news_items", "news_item_id")
_not_found = "NEWS_ITEM_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class NewsItem:
    news_item_id: int
    settings: NewsDraft
    version: int
    created_at: datetime
    archived_at: datetime | None


class NewsWrites(Protocol):
    """What news items need beyond plain rows (`purse.store.postgres.news`)."""

    async def live_points_of_sale(self, writing: Writing, ids: Sequence[int]) -> set[int]: ...

    async def published_page(
        self, business_id: int, after_key: int, limit: int, now: datetime
    ) -> list[Row]: ...


def _columns(draft: NewsDraft) -> dict[str, object]:
    return {
        "title": dict(draft.title),
        "text": dict(draft.text),
        "image_url": draft.image_url,
        "point_of_sale_ids": list(draft.point_of_sale_ids),
        "publication_start_at": draft.publication_start,
        "publication_end_at": draft.publication_end,
    }


def _news_item(row: Row) -> NewsItem:
    settings = NewsDraft(
        row["title"],
        row["text"],
        row["image_url"],
        tuple(row["point_of_sale_ids"]),
        row["publication_start_at"],
        row["publication_end_at"],
    )
    return NewsItem(
        row["news_item_id"], settings, row["version"], row["created_at"], row["archived_at"]
    )


def _now() -> datetime:
    return datetime.now(UTC)


class NewsItems(Versioned[NewsItem]):
    def __init__(
        self,
        writes: BackOfficeWriting,
        reads: BackOfficeReads,
        store: NewsWrites,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        super().__init__(Resource(NEWS_ITEMS, "news item", _not_found, _news_item), writes, reads)
        self._store = store
        self._clock = clock

    async def create(self, actor: Actor, draft: NewsDraft) -> NewsItem:
        validated(lambda fields: validate_news_item(fields, "news_item", draft))

        async def points_of_sale(writing: Writing) -> Columns:
            await self._live(writing, draft.point_of_sale_ids, set())
            return {}

        return _news_item(await self.create_row(actor, _columns(draft), points_of_sale))

    async def update(
        self, actor: Actor, news_item_id: int, expected_version: int, draft: NewsDraft
    ) -> NewsItem:
        validated(lambda fields: validate_news_item(fields, "news_item", draft))

        async def added_points_of_sale(writing: Writing, before: Row) -> None:
            await self._live(writing, draft.point_of_sale_ids, set(before["point_of_sale_ids"]))

        columns = _columns(draft)
        row = await self.update_row(
            actor, news_item_id, expected_version, columns, added_points_of_sale
        )
        return _news_item(row)

    async def archive(self, actor: Actor, news_item_id: int, expected_version: int) -> NewsItem:
        row = await self.archive_row(actor, news_item_id, expected_version, unused)
        return _news_item(row)

    async def published_page(self, business_id: int, page_size: int, token: str) -> Page[NewsItem]:
        """A page of the live items published now."""
        request = PageRequest.of(page_size, token, [NEWS_ITEMS.name, business_id, "published"])
        rows = await self._store.published_page(
            business_id, request.after, request.limit, self._clock()
        )
        return page_of(request, rows, NEWS_ITEMS.key, _news_item)

    async def published(self, business_id: int, news_item_id: int, now: datetime) -> NewsItem:
        """The item, if it is live and published at `now`; NotFound otherwise."""
        item = await self.get(business_id, news_item_id)
        if item.archived_at is not None:
            raise NotFound("the news item is archived", reason=_not_found)
        if not item.settings.published_at(now):
            raise NotFound(
                f"the news item is not published at {now.isoformat()}", reason=_not_found
            )
        return item

    async def _live(self, writing: Writing, ids: Sequence[int], named_before: set[int]) -> None:
        """NotFound naming the first of `ids` not named before that is no live point of
        sale of the business."""
        added = [each for each in ids if each not in named_before]
        live = await self._store.live_points_of_sale(writing, added) if added else set()
        for index, point_of_sale_id in enumerate(ids):
            if point_of_sale_id not in named_before and point_of_sale_id not in live:
                path = f"news_item.point_of_sale_ids[{index}]"
                raise NotFound(
                    f"{path}: no such point of sale in this business, or it is archived",
                    reason="POINT_OF_SALE_NOT_FOUND",
                    metadata={"field": path},
                )
