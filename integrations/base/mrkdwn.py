"""Slack mrkdwn that is safe to send: every text from outside is escaped on its way in.

Slack reads `<...>` in any mrkdwn field, the notification `text` of a message included, as a
control sequence: `<!channel>` pings the whole channel, `<@U1>` mentions a person and
`<https://x|ok>` is a link that says ok. So a customer's name, a payer's reference or what an
approver typed must reach Slack with `&`, `<` and `>` escaped, and only arbot's own mentions and
links may stay live.

`Mrkdwn` is text that is already fit for Slack. It is made only here: `escape` (plain text, made
safe), `mention`, `channel` and `link` (the control sequences arbot writes itself), `mrkdwn` and
`join` (pieces put together: a plain `str` among them is escaped, a `Mrkdwn` kept as it is),
`quote` and `clip`. Every builder of Block Kit and every port that posts text takes `Mrkdwn`, so a plain
`str` handed to Slack is a type error, and an escaped text is never escaped twice. Formatting
characters (`*`, `_`, `~`, `` ` ``) are left alone: at worst they make text bold, never a ping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SLACK_ID = re.compile(r"[UWS][A-Z0-9]{2,30}")
_URL = re.compile(r"https?://[^\s<>|]+")


class Mrkdwn(str):
    """Text Slack may read as mrkdwn as it is. Make one with the functions of this module only."""

    __slots__ = ()


def escape(text: str) -> Mrkdwn:
    """Plain text made safe for any mrkdwn field: `&`, `<` and `>` escaped. Text that is
    already `Mrkdwn` is returned as it is (never escaped twice)."""
    if isinstance(text, Mrkdwn):
        return text
    return Mrkdwn(_escaped(text))


def _escaped(text: str) -> str:
    """`escape` as a plain `str`, for pieces about to be put together into one `Mrkdwn`: making
    each piece a `Mrkdwn` first copied it for nothing (a card draws about 90 pieces)."""
    if isinstance(text, Mrkdwn):
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(*parts: str) -> Mrkdwn:
    """The pieces one after another; each plain `str` is escaped, each `Mrkdwn` kept."""
    return Mrkdwn("".join([_escaped(part) for part in parts]))


def join(parts: Iterable[str], separator: str = "") -> Mrkdwn:
    """The pieces with `separator` between them, each escaped unless it is `Mrkdwn`."""
    return Mrkdwn(_escaped(separator).join([_escaped(part) for part in parts]))


def mention(slack_id: str) -> Mrkdwn:
    """A live mention of a user (U…/W…) or a user group (S…). Anything that is not a Slack id
    is shown as the text it is."""
    if not _SLACK_ID.fullmatch(slack_id):
        return escape(slack_id)
    return Mrkdwn(f"<!subteam^{slack_id}>" if slack_id[0] == "S" else f"<@{slack_id}>")


_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,30}")


def channel(channel_id: str) -> Mrkdwn:
    """A live link to a channel (C…/G…). Anything that is not a channel id is shown as text."""
    return Mrkdwn(f"<#{channel_id}>") if _CHANNEL_ID.fullmatch(channel_id) else escape(channel_id)


def actor(who: str) -> Mrkdwn:
    """Who did something: a Slack user as a mention; "playbook", "cli" or "system" by name."""
    return mention(who) if _SLACK_ID.fullmatch(who) and who[0] in "UW" else escape(who)


def link(url: str, label: str) -> Mrkdwn:
    """A link with its label. A URL that is not a plain http(s) address is shown as text."""
    if not _URL.fullmatch(url):
        return mrkdwn(label, " (", url, ")")
    return Mrkdwn(f"<{url.replace('&', '&amp;')}|{escape(label)}>")


HERE = Mrkdwn("<!here>")  # everyone active in the channel: only for an escalation nobody claims


def quote(text: str) -> Mrkdwn:
    """Text as a block quote, each line escaped ("> (empty)" for none)."""
    lines = text.splitlines() or ["(empty)"]
    return Mrkdwn("\n".join(f"> {escape(line)}" for line in lines))


def clip(text: Mrkdwn, limit: int, at_line: bool = False) -> Mrkdwn:
    """At most `limit` characters, cut with "…" where no escape (`&amp;`) or control sequence
    (`<@U1>`) is split in two; with `at_line`, cut after the last whole line that fits instead
    (no "…")."""
    if len(text) <= limit:
        return text
    if at_line and "\n" in text[:limit]:
        return Mrkdwn(text[: text.rfind("\n", 0, limit)])
    cut = text[: limit - 1]
    amp, opening = cut.rfind("&"), cut.rfind("<")
    if amp > cut.rfind(";"):
        cut = cut[:amp]
    if opening > cut.rfind(">"):
        cut = cut[:opening]
    return Mrkdwn(cut + "…")
