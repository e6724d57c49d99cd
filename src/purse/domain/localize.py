"""Picking a customer-facing text by language.

A title is stored as {language tag: text}. The customer's language wins, then its
primary subtag ("uk" for "uk-UA"), then English, then the first text by tag, then the
fallback (the control-panel name). Deterministic for the same input.
"""

from __future__ import annotations

from collections.abc import Mapping

default_language = "en"


def localized(texts: Mapping[str, str] | None, language: str, fallback: str) -> str:
    if not texts:
        return fallback
    for tag in (language, language.split("-", maxsplit=1)[0], default_language):
        if tag and texts.get(tag):
            return texts[tag]
    return texts[min(texts)] or fallback
