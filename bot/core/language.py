"""A customer's or contact's language: a short BCP 47 tag (`es`, `fr-CA`, `de`) that Babel knows.

Tags are stored as written here: the language in lower case, a script in title case, a region in
upper case, joined by hyphens (`pt_br` and `PT-BR` are both stored as `pt-BR`). No tag means
English, the playbook's fallback.
"""

from __future__ import annotations

import re
from functools import lru_cache

from babel.core import Locale, UnknownLocaleError

DEFAULT_LANGUAGE = "en"
# The most a stored tag holds (the column's length): language, script and region fit in 16.
MAX_TAG = 16
_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?")


@lru_cache(maxsize=1024)
def parse_language(text: str) -> str:
    """The tag `text` names, normalised, or ValueError saying what to write instead."""
    cleaned = text.strip()
    match = _TAG.fullmatch(cleaned)
    if match is None:
        raise ValueError(
            f"{cleaned!r} is not a language tag; use a short tag such as es, fr, de or fr-CA"
        )
    language, script, region = match.groups()
    tag = "-".join(
        part
        for part in (
            language.lower(),
            script.title() if script else None,
            region and region.upper(),
        )
        if part
    )
    try:
        Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        raise ValueError(
            f"{cleaned!r} is not a language arbot knows; use a short tag such as es, fr, de or fr-CA"
        ) from None
    return tag


def language_name(tag: str) -> str:
    """The tag's name in English, for people: "Spanish", "French (Canada)"."""
    try:
        return str(Locale.parse(tag, sep="-").get_display_name("en"))
    except (UnknownLocaleError, ValueError):
        return tag


def is_english(tag: str | None) -> bool:
    return tag is None or tag.split("-")[0].lower() == DEFAULT_LANGUAGE


def formatting_locale(tag: str | None) -> str:
    """The Babel locale amounts and dates are written in for `tag` (`es` → `es`, `fr-CA` →
    `fr_CA`); English without a region keeps arbot's US formats."""
    if tag is None or tag == DEFAULT_LANGUAGE:
        return "en_US"
    return tag.replace("-", "_")
