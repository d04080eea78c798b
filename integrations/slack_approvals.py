"""The buttons that approve reminders and take approvals back, built by pure functions: a tier's
*Approve all* (carrying what it covers, behind Slack's confirmation naming the count and total),
*Undo* on an approved reminder's card, and the *Undo* told to whoever clicked Approve all."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from integrations.base.slack import TierLine
from integrations.slack_ids import (
    Action,
    Row,
    approve_all,
    approve_all_value,
    row,
    undo_all_value,
)

Block = dict[str, Any]
CONFIRM_TITLE = 100  # characters Slack allows a confirmation's title
CONFIRM_TEXT = 300  # and its text
CONFIRM_BUTTON = 30  # and each of its two buttons


def _plain(text: str, limit: int) -> Block:
    return {
        "type": "plain_text",
        "text": text if len(text) <= limit else text[: limit - 1] + "…",
        "emoji": True,
    }


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": _plain(text, 75),
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _reminders(count: int) -> str:
    return f"{count} reminder{'' if count == 1 else 's'}"


def approve_all_button(day: date, tier: TierLine) -> Block:
    """Approve all of a tier: it approves exactly the reminders the header showed waiting, as
    their messages were (its value names them, with their messages' versions) and asks first,
    naming how many and for how much. A tier with more waiting than a button's value can name
    is approved in turns: the button says how many of them it approves."""
    value, count = approve_all_value(day, tier.tier, zip(tier.covers, tier.versions, strict=True))
    every = count == tier.awaiting
    button = _button(
        f"Approve all {count} {tier.tier}"
        if every
        else f"Approve {count} of {tier.awaiting} {tier.tier}",
        approve_all(tier.tier),
        value,
        "primary",
    )
    total = f" asking for {tier.awaiting_amount}" if tier.awaiting_amount and every else ""
    which = (
        f"the {_reminders(count)}"
        if every
        else f"the first {count} of the {_reminders(tier.awaiting)}"
    )
    button["confirm"] = {
        "title": _plain(f"Approve {_reminders(count)}?", CONFIRM_TITLE),
        "text": _plain(
            f"This approves {which} of the {tier.tier} tier shown waiting in "
            f"this plan{total}. Each can be undone from its card until it is sent.",
            CONFIRM_TEXT,
        ),
        "confirm": _plain(f"Approve {count}", CONFIRM_BUTTON),
        "deny": _plain("Cancel", CONFIRM_BUTTON),
        "style": "primary",
    }
    return button


def undo_line(reminder_id: int, state_line: str) -> Block:
    """An approved reminder's state line (mrkdwn, already made safe) with its Undo button beside
    it, in one block, while it waits to be sent: the card keeps the block count it was posted
    with, so a message of cards approved together stays within Slack's 50 blocks."""
    return {
        "type": "section",
        "block_id": row(Row.REMINDER, reminder_id),
        "text": {"type": "mrkdwn", "text": state_line},
        "accessory": _button("Undo", Action.UNDO, str(reminder_id)),
    }


def undo_all_blocks(
    text: str, day: date, tier: str, approved_at: datetime, approved_by: str
) -> list[Block]:
    """What whoever clicked Approve all (`approved_by`) is told (`text`, mrkdwn already made
    safe), with a button that takes back every reminder that click approved and the send worker
    has not taken."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {
            "type": "actions",
            "elements": [
                _button(
                    f"Undo: back to waiting for approval ({tier})",
                    Action.UNDO_ALL,
                    undo_all_value(day, tier, approved_at, approved_by),
                )
            ],
        },
    ]
