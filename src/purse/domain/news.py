"""News and information: what a business publishes to its customers, and its validation
— pure.

Contract:

* A news item has a title and a text by language (a language tag → text, as every
  customer-facing text of Purse; `purse.domain.localize` picks one for a customer): at
  least one language each and at most `languages_max`, a title of 1 to
  `news_title_characters_max` characters, a text of 1 to `news_text_characters_max`,
  neither blank.
* An optional image address: an absolute `https` URL of at most
  `image_url_characters_max` characters, with a host, without a user or password, made
  of the characters RFC 3986 allows (anything else percent-encoded). Empty: no image.
* The points of sale it belongs to: ids, each once, at most `news_points_of_sale_max`;
  none means every point of sale. Whether they are the business's is the store's to say.
* A publication window: published from its start (inclusive) until its end
  (exclusive), when it has one, which comes after the start.
* `validate_news_item` adds every wrong field to a `Fields` under the path the request
  names it by (`news_item.title['en']`), so one answer lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from purse.domain.localize import localized
from purse.domain.setup import Fields, languages_max

news_title_characters_max: Final = 200
news_text_characters_max: Final = 10_000
image_url_characters_max: Final = 2_000
news_points_of_sale_max: Final = 1_000
# RFC 3986's unreserved and reserved characters, and percent-encoded octets.
_url_characters = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")


@dataclass(frozen=True, slots=True)
class NewsDraft:
    """What an administrator sets on a news item; `publication_end` None: no end."""

    title: Mapping[str, str]
    text: Mapping[str, str]
    image_url: str
    point_of_sale_ids: tuple[int, ...]
    publication_start: datetime | None
    publication_end: datetime | None

    def published_at(self, now: datetime) -> bool:
        """Whether `now` falls in the publication window."""
        start, end = self.publication_start, self.publication_end
        return start is not None and start <= now and (end is None or now < end)

    def title_in(self, language: str) -> str:
        """The title for a customer speaking `language` (`purse.domain.localize`)."""
        return localized(self.title, language, "")

    def text_in(self, language: str) -> str:
        return localized(self.text, language, "")


def validate_news_item(fields: Fields, path: str, draft: NewsDraft) -> None:
    _texts(fields, f"{path}.title", draft.title, news_title_characters_max)
    _texts(fields, f"{path}.text", draft.text, news_text_characters_max)
    if draft.image_url:
        problem = image_url_violation(draft.image_url)
        if problem is not None:
            fields.wrong(f"{path}.image_url", problem)
    _points_of_sale(fields, f"{path}.point_of_sale_ids", draft.point_of_sale_ids)
    start, end = draft.publication_start, draft.publication_end
    if start is None:
        fields.wrong(f"{path}.publication_start_time", "required: when it is published")
    elif end is not None and end <= start:
        fields.wrong(f"{path}.publication_end_time", "must come after publication_start_time")


def _texts(fields: Fields, path: str, texts: Mapping[str, str], characters_max: int) -> None:
    if not texts:
        fields.wrong(path, "at least one language")
        return
    fields.localized(path, texts, characters_max)
    if len(texts) <= languages_max:
        for language, text in sorted(texts.items()):
            if not text.strip():
                fields.wrong(f"{path}[{language!r}]"[:120], "required: not blank")


def _points_of_sale(fields: Fields, path: str, ids: tuple[int, ...]) -> None:
    if len(ids) > news_points_of_sale_max:
        fields.wrong(path, f"at most {news_points_of_sale_max} points of sale")
        return
    seen: set[int] = set()
    for index, point_of_sale_id in enumerate(ids):
        if point_of_sale_id <= 0:
            fields.wrong(f"{path}[{index}]", "must be positive")
        elif point_of_sale_id in seen:
            fields.wrong(f"{path}[{index}]", "named twice")
        seen.add(point_of_sale_id)


def image_url_violation(url: str) -> str | None:
    """Why `url` is no image address a customer's app may load, or None."""
    expected = "an https address such as 'https://example.com/news.png'"
    if len(url) > image_url_characters_max:
        return f"at most {image_url_characters_max} characters"
    if not _url_characters.fullmatch(url):
        return expected + ", other characters percent-encoded"
    try:
        parts = urlsplit(url)
        # Raises ValueError for a port that is no number from 0 to 65535.
        port = parts.port
    except ValueError:
        return expected
    if parts.scheme.lower() != "https" or not parts.hostname or port == 0:
        return expected
    if parts.username is not None:
        return "an image address carries no user or password"
    return None
