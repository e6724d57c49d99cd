"""Keyset pages (AIP-158): sizes and opaque page tokens tied to their query.

A page holds at most `page_size` items (0 asks for the list's default; more than its
largest is refused naming `page_size`). A token says where the next page starts and
repeats the query it was given for (the list, the business, the filters): a token used
with another query, tampered with, or not given by this server is refused naming
`page_token`, never silently read as some other position.
"""

from __future__ import annotations

import base64
import binascii
import json

from purse.domain.errors import invalid

# A token holds a query and a key of at most 64 characters each: far below this.
page_token_characters_max = 512


def page_limit(page_size: int, size_default: int, size_max: int) -> int:
    """How many items a page holds for the `page_size` asked."""
    if not 0 <= page_size <= size_max:
        raise invalid("page_size", f"from 1 to {size_max} (0 = {size_default})")
    return page_size or size_default


def page_token(query: list[str | int], last_key: str) -> str:
    """The token for the page after the one that ended at `last_key`."""
    text = json.dumps([*query, last_key], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode()


def page_start(
    token: str, query: list[str | int], characters_max: int = page_token_characters_max
) -> str | None:
    """The key the page starts after (None for the first page); InvalidArgument naming
    `page_token` for a token not given for this very query. A list whose keys are longer
    than 64 characters names its own `characters_max`."""
    if not token:
        return None
    refusal = invalid("page_token", "not a token this server gave for this query")
    if len(token) > characters_max:
        raise refusal
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, binascii.Error) as error:  # JSONDecodeError, UnicodeError are ValueErrors
        raise refusal from error
    if not isinstance(decoded, list) or decoded[:-1] != query or len(decoded) != len(query) + 1:
        raise refusal
    last_key = decoded[-1]
    if not isinstance(last_key, str) or not last_key:
        raise refusal
    return last_key
