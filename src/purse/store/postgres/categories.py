"""What customer categories need beyond plain rows: members, and the default mark."""

from __future__ import annotations

from purse.service.ports import Row, Writing
from purse.store.postgres.back_office import connection_of


class CategoryStore:
    async def members(self, writing: Writing, category_id: int) -> int:
        """How many customers of the business are in the category (locked meanwhile)."""
        count = await connection_of(writing).fetchval(
            "SELECT count(*) FROM memberships WHERE business_id = $1 AND category_id = $2",
            writing.actor.business_id,
            category_id,
        )
        return int(count)

    async def take_default_mark(self, writing: Writing) -> Row | None:
        """Un-mark the current default category; its row as it was, or None."""
        row = await connection_of(writing).fetchrow(
            "WITH before AS ("
            "  SELECT * FROM customer_categories"
            "   WHERE business_id = $1 AND is_default FOR UPDATE"
            "), changed AS ("
            "  UPDATE customer_categories c SET is_default = false, version = c.version + 1"
            "    FROM before b"
            "   WHERE c.business_id = b.business_id AND c.category_id = b.category_id"
            ") SELECT * FROM before",
            writing.actor.business_id,
        )
        return None if row is None else dict(row)
