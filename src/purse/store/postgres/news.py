"""What news items need beyond plain rows: the points of sale an item names, checked
live and locked in the writing transaction, and the page of items published at a moment.

Every statement filters by the business (the writing's, or the one given).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from purse.service.ports import Row, Writing
from purse.store.postgres.back_office import connection_of


class NewsStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def live_points_of_sale(self, writing: Writing, ids: Sequence[int]) -> set[int]:
        """Which of `ids` are live points of sale of the business, locked until the
        commit: an archive locks its row FOR UPDATE first, and so waits."""
        rows = await connection_of(writing).fetch(
            "SELECT point_of_sale_id FROM points_of_sale"
            " WHERE business_id = $1 AND point_of_sale_id = ANY($2::bigint[])"
            "   AND archived_at IS NULL"
            " ORDER BY point_of_sale_id FOR KEY SHARE",
            writing.actor.business_id,
            list(ids),
        )
        return {row["point_of_sale_id"] for row in rows}

    async def published_page(
        self, business_id: int, after_key: int, limit: int, now: datetime
    ) -> list[Row]:
        """Live items published at `now`, in id order after `after_key`, at most `limit`
        + 1 (the extra one tells whether another page follows)."""
        rows = await self._pool.fetch(
            "SELECT * FROM news_items"
            " WHERE business_id = $1 AND news_item_id > $2 AND archived_at IS NULL"
            "   AND publication_start_at <= $4"
            "   AND (publication_end_at IS NULL OR publication_end_at > $4)"
            " ORDER BY news_item_id LIMIT $3",
            business_id,
            after_key,
            limit + 1,
            now,
        )
        return [dict(row) for row in rows]
