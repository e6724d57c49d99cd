"""Listing a business's catalogue to its terminals: goods and goods categories.

Both lists are keyset pages in code order (see `purse.domain.pages`): every item of the
business appears exactly once across the pages, whatever their size, and a token works
only for the list, business and filter it was given for.
"""

from __future__ import annotations

from purse.domain.catalogue import Goods, GoodsCategory
from purse.domain.pages import page_limit, page_start, page_token
from purse.domain.terminals import TerminalContext
from purse.service.ports import GoodsReads

goods_page_size_default = 100
goods_page_size_max = 1_000
goods_categories_page_size_default = 100
goods_categories_page_size_max = 1_000


class GoodsCatalogue:
    """ListGoods and ListGoodsCategories' use cases."""

    def __init__(self, store: GoodsReads) -> None:
        self._store = store

    async def goods(
        self, terminal: TerminalContext, page_size: int, token: str, goods_category_code: str
    ) -> tuple[list[Goods], str]:
        """A page of goods (of one category when a code is given) and the next token."""
        limit = page_limit(page_size, goods_page_size_default, goods_page_size_max)
        query: list[str | int] = ["goods", terminal.business_id, goods_category_code]
        # One more than the page: the token is empty exactly on the last page.
        found = await self._store.goods_page(
            terminal.business_id, page_start(token, query), limit + 1, goods_category_code or None
        )
        page = found[:limit]
        return page, page_token(query, page[-1].product_code) if len(found) > limit else ""

    async def goods_categories(
        self, terminal: TerminalContext, page_size: int, token: str
    ) -> tuple[list[GoodsCategory], str]:
        """A page of goods categories and the next token."""
        limit = page_limit(
            page_size, goods_categories_page_size_default, goods_categories_page_size_max
        )
        query: list[str | int] = ["goods_categories", terminal.business_id]
        found = await self._store.goods_categories_page(
            terminal.business_id, page_start(token, query), limit + 1
        )
        page = found[:limit]
        return page, page_token(query, page[-1].code) if len(found) > limit else ""
