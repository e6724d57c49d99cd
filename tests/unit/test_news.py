"""News items: every wrong field is named by its path in the request, an image address is
an https URL a customer's app may load, the publication window holds from its start until
before its end, and a customer reads the title in their language as every text of Purse
is picked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from purse.domain.errors import InvalidArgument
from purse.domain.news import (
    NewsDraft,
    image_url_characters_max,
    image_url_violation,
    news_points_of_sale_max,
    news_text_characters_max,
    news_title_characters_max,
    validate_news_item,
)
from purse.domain.setup import Fields

start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
spring = NewsDraft(
    title={"en": "Spring menu", "uk": "Весняне меню"},
    text={"en": "Cherry latte is back.", "uk": "Вишневе лате повернулося."},
    image_url="https://cdn.example.com/news/spring.png",
    point_of_sale_ids=(3, 5),
    publication_start=start,
    publication_end=start + timedelta(days=30),
)


def wrong_fields(draft: NewsDraft) -> list[str]:
    fields = Fields()
    validate_news_item(fields, "news_item", draft)
    return [violation.field for violation in fields.violations]


def test_a_complete_item_is_valid_and_so_is_one_with_no_picture_end_or_points_of_sale() -> None:
    bare = replace(spring, image_url="", point_of_sale_ids=(), publication_end=None)

    assert (wrong_fields(spring), wrong_fields(bare)) == ([], [])


@pytest.mark.parametrize(
    ("changes", "paths"),
    [
        ({"title": {}}, ["news_item.title"]),
        ({"text": {}}, ["news_item.text"]),
        ({"title": {"en": "  "}}, ["news_item.title['en']"]),
        (
            {"title": {"en": "x" * (news_title_characters_max + 1)}},
            ["news_item.title['en']"],
        ),
        ({"text": {"en": "x" * (news_text_characters_max + 1)}}, ["news_item.text['en']"]),
        ({"text": {"English": "Hello"}}, ["news_item.text['English']"]),
        ({"image_url": "http://cdn.example.com/a.png"}, ["news_item.image_url"]),
        ({"point_of_sale_ids": (3, 0, 4)}, ["news_item.point_of_sale_ids[1]"]),
        (
            {"point_of_sale_ids": (3, 4, 3)},
            ["news_item.point_of_sale_ids[2]"],
        ),
        (
            {"point_of_sale_ids": tuple(range(1, news_points_of_sale_max + 2))},
            ["news_item.point_of_sale_ids"],
        ),
        ({"publication_start": None}, ["news_item.publication_start_time"]),
        ({"publication_end": start}, ["news_item.publication_end_time"]),
        (
            {"title": {}, "image_url": "ftp://x", "publication_start": None},
            ["news_item.title", "news_item.image_url", "news_item.publication_start_time"],
        ),
    ],
)
def test_each_wrong_field_is_named_by_its_path(
    changes: dict[str, object], paths: list[str]
) -> None:
    assert wrong_fields(replace(spring, **changes)) == paths  # type: ignore[arg-type]


def test_every_wrong_field_is_refused_in_one_answer() -> None:
    fields = Fields()
    validate_news_item(fields, "news_item", replace(spring, text={}, publication_start=None))

    with pytest.raises(InvalidArgument) as refused:
        fields.raise_if_any()

    assert [each.field for each in refused.value.violations] == [
        "news_item.text",
        "news_item.publication_start_time",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/news/spring.png",
        "HTTPS://CDN.EXAMPLE.COM/a.png?size=2&v=1#top",
        "https://cdn.example.com:8443/%D0%BC%D0%B5%D0%BD%D1%8E.png",
        "https://[2001:db8::1]/a.png",
    ],
)
def test_an_https_address_is_an_image_address(url: str) -> None:
    assert image_url_violation(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.com/a.png",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "https://",
        "https:///a.png",
        "//cdn.example.com/a.png",
        "https://cdn.example.com/a b.png",
        "https://cdn.example.com/меню.png",
        "https://cdn.example.com/%zz.png",
        "https://cdn.example.com:99999/a.png",
        "https://cdn.example.com:0/a.png",
        "https://[2001:db8::1/a.png",
        "https://user:secret@cdn.example.com/a.png",
        "https://cdn.example.com/\n.png",
        "https://cdn.example.com/" + "a" * image_url_characters_max,
    ],
)
def test_anything_else_is_refused(url: str) -> None:
    assert image_url_violation(url) is not None


def test_an_item_is_published_from_its_start_until_before_its_end() -> None:
    end = spring.publication_end
    assert end is not None
    open_ended = replace(spring, publication_end=None)

    assert not spring.published_at(start - timedelta(microseconds=1))
    assert spring.published_at(start)
    assert spring.published_at(end - timedelta(microseconds=1))
    assert not spring.published_at(end)
    assert open_ended.published_at(start + timedelta(days=3650))


@pytest.mark.parametrize(
    ("language", "title"),
    [
        ("uk", "Весняне меню"),
        ("uk-UA", "Весняне меню"),
        ("de", "Spring menu"),
        ("", "Spring menu"),
    ],
)
def test_a_customer_reads_the_title_in_their_language_or_the_fallback(
    language: str, title: str
) -> None:
    assert spring.title_in(language) == title


def test_without_english_the_first_language_by_tag_is_read() -> None:
    polish_and_ukrainian = replace(spring, title={"uk": "Меню", "pl": "Menu wiosenne"})

    assert polish_and_ukrainian.title_in("de") == "Menu wiosenne"
    assert spring.text_in("uk") == "Вишневе лате повернулося."
