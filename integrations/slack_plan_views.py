"""The plan's parts that explain rather than ask: who is held back today and why (in the header,
up to HELD_SHOWN names, then a *Show all* modal), the accounts handed to a person (named once in
the header, with a link to their escalation's channel), and a card's full message in a *Preview*
modal. Pure functions, within Block Kit's limits: 50 blocks a message, 100 a modal, 3,000
characters a section."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.core.labels import channel_label, reason_label
from integrations.base.mrkdwn import Mrkdwn, channel, clip, escape, join, mention, mrkdwn
from integrations.base.slack import EscalationLine, HeldLine, PlanSummary
from integrations.slack_ids import Action

Block = dict[str, Any]
HELD_SHOWN = 8  # customers named in the header; the rest are one click away
ESCALATIONS_SHOWN = 8
MAX_SECTION = 3000
MAX_MODAL_BLOCKS = 100
MODAL_TITLE = 24  # characters Slack allows a modal's title


def _section(text: Mrkdwn, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _plain(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def held_why(line: HeldLine) -> Mrkdwn:
    """ "Acme Roofing (ACME): disputed (INV-1, INV-2)": who, and why, in words."""
    why = "; ".join(reason_label(reason) for reason in line.reasons)
    invoices = f" ({', '.join(line.invoices[:6])}{', …' if len(line.invoices) > 6 else ''})"
    return mrkdwn("*", line.customer_name, "* (", line.customer_id, "): ", why, invoices)


def held_blocks(summary: PlanSummary) -> list[Block]:
    """The header's word on who is held back today: names and reasons, up to HELD_SHOWN, with
    *Show all* beside them when there are more. A plan stored before names were kept shows its
    counts by reason."""
    if not summary.held_customers:
        if not summary.held:
            return []
        counts = ", ".join(f"{reason_label(reason)}: {count}" for reason, count in summary.held)
        return [_section(mrkdwn("*Held back today*: ", counts))]
    held = summary.held_customers
    lines = [mrkdwn("• ", held_why(line)) for line in held[:HELD_SHOWN]]
    more = len(held) - HELD_SHOWN
    if more > 0:
        lines.append(mrkdwn(f"• and {more} more"))
    text = mrkdwn(f"*Held back today* ({len(held)}):\n", join(lines, "\n"))
    button = None
    if more > 0:
        button = {
            "type": "button",
            "text": _plain("Show all", 75),
            "action_id": Action.SHOW_HELD,
            "value": summary.day.isoformat(),
        }
    return [_section(clip(text, MAX_SECTION, at_line=True), button)]


def _escalation_line(line: EscalationLine) -> Mrkdwn:
    where = mrkdwn(" · in ", channel(line.channel)) if line.channel else mrkdwn(" · not posted yet")
    to = mrkdwn(" for ", mention(line.owner)) if line.owner else ""
    return mrkdwn("• *", line.customer_name, "*: ", reason_label(line.reason), to, where)


def escalation_blocks(summary: PlanSummary) -> list[Block]:
    """The accounts the plan handed to a person, named once here: each is shown in full as its
    escalation, in the channel the link leads to, not again as a card of the plan."""
    found = summary.escalations
    if not found:
        return []
    lines = [_escalation_line(line) for line in found[:ESCALATIONS_SHOWN]]
    if len(found) > ESCALATIONS_SHOWN:
        lines.append(mrkdwn(f"• and {len(found) - ESCALATIONS_SHOWN} more"))
    text = mrkdwn(f"*Handed to a person* ({len(found)}):\n", join(lines, "\n"))
    return [_section(clip(text, MAX_SECTION, at_line=True))]


def held_modal(day: date, held: list[HeldLine]) -> Block:
    """Every customer held back on `day`, and why (read only)."""
    lines = [mrkdwn("• ", held_why(line)) for line in held] or [mrkdwn("Nobody is held back.")]
    blocks = [_section(chunk) for chunk in _chunks(join(lines, "\n"), MAX_MODAL_BLOCKS)]
    return {
        "type": "modal",
        "title": _plain(f"Held back {day:%-d %b}", MODAL_TITLE),
        "close": _plain("Close", 24),
        "blocks": blocks,
    }


def preview_modal(
    customer: str,
    step: str,
    channel_key: str | None,
    contact: str | None,
    subject: str | None,
    body: str,
) -> Block:
    """A reminder's whole message as the customer will read it: the subject and text, escaped,
    in sections cut between lines (or words) to fit 3,000 characters each."""
    how = channel_label(channel_key or "")
    blocks: list[Block] = [
        _section(
            mrkdwn("*", customer, "* · ", step, "\n", how.capitalize(), " to ", contact or "—")
        )
    ]
    if subject:
        blocks.append(_section(mrkdwn("*Subject:* ", subject)))
    blocks.append({"type": "divider"})
    chunks = _chunks(escape(body or "(no text)"), MAX_MODAL_BLOCKS - len(blocks))
    blocks.extend(_section(chunk) for chunk in chunks)
    return {
        "type": "modal",
        "title": _plain("Message preview", MODAL_TITLE),
        "close": _plain("Close", 24),
        "blocks": blocks,
    }


def _chunks(text: Mrkdwn, most: int, limit: int = MAX_SECTION) -> list[Mrkdwn]:
    """Escaped text in at most `most` pieces of at most `limit` characters, each cut at a line
    break, else at a space, else where no escape (`&amp;`) or control sequence is split; a last
    piece says when there was more."""
    pieces: list[Mrkdwn] = []
    start, end = 0, len(text)
    while start < end and len(pieces) < most:
        stop = start + limit
        if stop >= end:
            pieces.append(Mrkdwn(text[start:]))
            start = end
            break
        cut = text.rfind("\n", start, stop)
        if cut <= start:
            cut = text.rfind(" ", start, stop)
        if cut <= start:
            cut = stop
            amp, opening = text.rfind("&", start, cut), text.rfind("<", start, cut)
            if amp > text.rfind(";", start, cut):
                cut = amp
            if opening > text.rfind(">", start, cut):
                cut = opening
            if cut <= start:
                cut = stop
        pieces.append(Mrkdwn(text[start:cut]))
        start = cut
        while start < end and text[start] in "\n ":
            start += 1
    if start < end:
        pieces[-1] = mrkdwn("… and more, too long to show here.")
    return [piece if piece.strip() else Mrkdwn("\u200b") for piece in pieces] or [Mrkdwn("\u200b")]


def held_text(day: date, held: list[HeldLine] | None) -> Mrkdwn:
    """`/ar held`: everyone `day`'s plan held back, and why."""
    if held is None:
        return mrkdwn(f"No plan for {day.isoformat()} is stored yet, so nobody is held back yet.")
    if not held:
        return mrkdwn(f"Nobody is held back in the plan for {day.isoformat()}.")
    lines = [mrkdwn("• ", held_why(line)) for line in held]
    return mrkdwn(
        f"*Held back in the plan for {day.isoformat()}* ({len(held)}):\n", join(lines, "\n")
    )


def held_status(day: date, name: str, line: HeldLine | None, planned: bool) -> Mrkdwn:
    """`/ar status`'s word on whether the customer is held back today, and why."""
    if not planned:
        return mrkdwn(f"Today's plan ({day.isoformat()}) is not made yet.")
    if line is None:
        return mrkdwn("*", name, f"* is not held back in today's plan ({day.isoformat()}).")
    return mrkdwn(f"*Held back today* ({day.isoformat()}): ", held_why(line))
