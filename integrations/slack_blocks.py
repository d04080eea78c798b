"""Block Kit, built by pure functions: data in, blocks out. Limits kept here, tested against Slack's:
at most 50 blocks a message, 3,000 characters a section, unique action_ids within a block."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any

from bot.core.labels import channel_label, reason_label, step_label, when_due, words
from bot.core.language import is_english, language_name
from bot.core.vocabulary import REMINDER_STATES, TRUSTED_APPROVER
from integrations.base.mrkdwn import Mrkdwn, actor, clip, join, mention, mrkdwn
from integrations.base.slack import (
    EDIT_SUBJECT_LIMIT,
    PlanSummary,
    ReminderCard,
    edit_body_limit,
)
from integrations.slack_approvals import approve_all_button, undo_line
from integrations.slack_ids import (
    APPROVE_ALL_ROW,
    INPUT,
    Action,
    Field,
    Form,
    Row,
    approve_value,
    row,
)
from integrations.slack_plan_views import escalation_blocks, held_blocks

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000  # characters Slack allows a section's field
MAX_INVOICE_LINES = 12
Block = dict[str, Any]

STATE_LABELS = {
    "approved": ":white_check_mark: Approved",
    "sending": ":outbox_tray: Sending",
    "sent": ":email: Sent",
    "skipped": ":fast_forward: Skipped",
    "cancelled": ":no_entry_sign: Cancelled",
    "failed": ":warning: Failed",
    "unknown": ":grey_question: Unknown: check whether it went out",
}


def _clip(text: str, limit: int) -> str:
    """Plain text cut to `limit` (for plain_text fields; `clip` cuts mrkdwn)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: Mrkdwn) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _context(text: Mrkdwn, limit: int = MAX_SECTION) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, limit)}]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def plan_header_blocks(summary: PlanSummary) -> list[Block]:
    day = summary.day.strftime("%A %-d %B %Y")
    lines = []
    for tier in summary.tiers:
        if tier.reminders or tier.escalations:
            lines.append(
                mrkdwn(
                    f"*{tier.tier.capitalize()}*: {tier.reminders} reminder"
                    f"{'' if tier.reminders == 1 else 's'}, {tier.escalations} to a person, ",
                    tier.amount,
                )
            )
    if not lines:
        lines.append(mrkdwn("Nothing to send today."))
    for stale in summary.stale:
        lines.insert(
            0,
            mrkdwn(
                ":warning: *Ledger out of date*: ",
                stale,
                ". A reminder here may be for an invoice paid there since.",
            ),
        )
    if summary.trusted:
        lines.append(
            mrkdwn(
                ":handshake: *Approved automatically* (steps that earned trust, Undo still "
                "works): ",
                "; ".join(summary.trusted),
            )
        )
    for lost in summary.untrusted:
        lines.append(mrkdwn(":warning: *Trust taken back* from ", lost))
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Collections plan for {day}"}},
        _section(join(lines, "\n")),
    ]
    blocks += escalation_blocks(summary)
    blocks += held_blocks(summary)
    buttons = [approve_all_button(summary.day, t) for t in summary.tiers if t.awaiting]
    if buttons:
        blocks.append({"type": "actions", "block_id": APPROVE_ALL_ROW, "elements": buttons})
    return blocks


def _invoice_lines(card: ReminderCard) -> Mrkdwn:
    lines = []
    for invoice in card.invoices[:MAX_INVOICE_LINES]:
        late = invoice.days_past_due
        lines.append(mrkdwn("• ", invoice.number, ": ", invoice.balance, f" ({when_due(late)})"))
    hidden = len(card.invoices) - MAX_INVOICE_LINES
    if hidden > 0:
        lines.append(mrkdwn(f"• and {hidden} more"))
    return join(lines, "\n")


def card_step(card: ReminderCard) -> str:
    """The card's step in words: "second reminder, 7 days late"."""
    return step_label(card.step, card.step_offset, card.step_position)


def _facts(card: ReminderCard) -> list[Block]:
    """What differs from one card to the next, as fields: the step, the ask, whom and when, and
    the invoices; the message itself is one click away (Preview)."""
    to = mrkdwn(channel_label(card.channel or "").capitalize(), " to ", card.contact or "—")
    facts = [
        mrkdwn("*Step*\n", card_step(card).capitalize()),
        mrkdwn("*Asks for*\n", card.total),
        mrkdwn("*To*\n", to),
        mrkdwn("*Sends*\n", f"after {card.send_after}" if card.send_after else "when approved"),
        mrkdwn("*Invoices*\n", _invoice_lines(card)),
    ]
    if card.copies:  # the approver knows the email carries them, and cannot go without them
        facts.append(mrkdwn("*Attaches*\n", "PDF copies of ", ", ".join(card.copies)))
    if not is_english(card.language):  # the approver reads what the customer will
        facts.insert(3, mrkdwn("*Language*\n", language_name(card.language or "")))
    return [{"type": "mrkdwn", "text": clip(fact, MAX_FIELD)} for fact in facts]


def preview_button(reminder_id: int) -> Block:
    return _button("Preview", Action.PREVIEW, str(reminder_id))


def reminder_blocks(card: ReminderCard) -> list[Block]:
    """One reminder: who, the facts that differ, Preview beside them, and Approve / Edit / Skip
    while it waits (or where it stands, once decided)."""
    name = mrkdwn("*", card.customer_name, "* (", card.customer_id, ", ", card.tier, ")")
    if card.action == "escalate":
        why = reason_label(card.note) if card.note and card.note != "escalated" else card_step(card)
        owner = mention(card.contact) if card.contact else "the escalations channel"
        text = mrkdwn(
            ":raising_hand: ",
            name,
            " goes to a person: ",
            why,
            "\n",
            "For ",
            owner,
            " · total ",
            card.total,
            "\n",
            _invoice_lines(card),
        )
        return [_section(text), {"type": "divider"}]
    blocks: list[Block] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(name, MAX_SECTION)},
            "fields": _facts(card),
            "accessory": preview_button(card.reminder_id),
        }
    ]
    if card.state == "planned":
        value = str(card.reminder_id)
        blocks.append(
            {
                "type": "actions",
                "block_id": row(Row.REMINDER, card.reminder_id),
                "elements": [
                    _button(
                        "Approve",
                        Action.APPROVE,
                        approve_value(card.reminder_id, card.text_version),
                        "primary",
                    ),
                    _button("Edit", Action.EDIT, value),
                    _button("Skip", Action.SKIP, value),
                ],
            }
        )
    else:
        label = STATE_LABELS.get(card.state, words(card.state))
        who = mrkdwn(" by the ", card.acted_by) if card.acted_by == "playbook" else ""
        if card.acted_by == TRUSTED_APPROVER:
            since = f" since {card.trusted_since}" if card.trusted_since else ""
            label = (
                ":white_check_mark: Approved automatically: this step has earned trust" + since
                if card.state == "approved"
                else f"{label} (approved automatically: a trusted step)"
            )
            who = ""
        elif card.acted_by and card.acted_by != "playbook":
            who = mrkdwn(" by ", actor(card.acted_by))
        at = mrkdwn(" at ", card.acted_at) if card.acted_at else ""
        note = mrkdwn(": ", reason_label(card.note)) if card.note else ""
        line = mrkdwn(label, who, at, note)
        if card.state == "approved" and card.acted_by == TRUSTED_APPROVER:
            # Undo and Skip until the send worker takes it; the state line joins the card's
            # first section, so the card keeps the three blocks it was posted with.
            blocks[0]["text"]["text"] = clip(mrkdwn(name, "\n", line), MAX_SECTION)
            blocks.append(trusted_buttons(card.reminder_id))
        elif card.state == "approved" and card.acted_by != "playbook":
            # Undo until the send worker takes it, beside the state line: no extra block.
            blocks.append(undo_line(card.reminder_id, clip(line, MAX_SECTION)))
        else:
            blocks.append(_context(line))
    blocks.append({"type": "divider"})
    return blocks


def trusted_buttons(reminder_id: int) -> Block:
    """Undo and Skip of a reminder a trusted step approved, in one row: Skip takes the same form,
    and the same rules, as a waiting card's."""
    value = str(reminder_id)
    return {
        "type": "actions",
        "block_id": row(Row.REMINDER, reminder_id),
        "elements": [_button("Undo", Action.UNDO, value), _button("Skip", Action.SKIP, value)],
    }


# Every state a card can be redrawn in, and who can have acted: a group message is redrawn as a
# whole whenever one of its cards changes, in whatever states its cards are then.
_ACTORS = (None, "playbook", TRUSTED_APPROVER, "U0PERSON")


def most_blocks(card: ReminderCard) -> int:
    """The most blocks this card can take, over every state it can be redrawn in. Text sets no
    block's count, so the other states are counted on the card without its text (`_bare`): cards
    alike but for their text are counted once (33 drawings a card for a plan of 300 before)."""
    return max(len(reminder_blocks(card)), _most_bare_blocks(_bare(card)))


def _bare(card: ReminderCard) -> ReminderCard:
    return replace(
        card,
        reminder_id=0,
        customer_name="",
        customer_id="",
        tier="",
        state="planned",
        contact=None,
        invoices=(),
        total="",
        subject=None,
        preview=None,
        send_after=None,
        acted_by=None,
        acted_at=None,
        note=None,
        trusted_since=None,
        text_version="",  # the Approve button's value: each reminder's own
    )


@lru_cache(maxsize=256)
def _most_bare_blocks(bare: ReminderCard) -> int:
    return max(
        len(reminder_blocks(replace(bare, state=state, acted_by=by, acted_at="00:00", note="-")))
        for state in REMINDER_STATES
        for by in _ACTORS
    )


def pack(cards: list[ReminderCard], max_blocks: int = MAX_BLOCKS) -> list[list[ReminderCard]]:
    """Group cards into as few messages as the block limit allows, keeping their order: each
    counted at its largest (`most_blocks`), so any redraw of a message fits as its post did."""
    groups: list[list[ReminderCard]] = []
    current: list[ReminderCard] = []
    used = 0
    for card in cards:
        size = most_blocks(card)
        if current and used + size > max_blocks:
            groups.append(current)
            current, used = [], 0
        current.append(card)
        used += size
    if current:
        groups.append(current)
    return groups


def group_blocks(cards: list[ReminderCard]) -> list[Block]:
    return [block for card in cards for block in reminder_blocks(card)]


def group_text(cards: list[ReminderCard]) -> Mrkdwn:
    """The notification text (and what screen readers read) for a group of cards."""
    names = ", ".join(card.customer_name for card in cards[:3])
    more = f" and {len(cards) - 3} more" if len(cards) > 3 else ""
    return clip(mrkdwn("Reminders for ", names, more), 3000)


def edit_modal(
    reminder_id: int,
    channel: str | None,
    subject: str | None,
    body: str,
    step: str,
    customer: str,
    examples: list[str] | None = None,
) -> Block:
    blocks: list[Block] = [
        _section(
            mrkdwn("*", customer, "* · ", step_label(step), " · ", channel_label(channel or ""))
        )
    ]
    if subject is not None:
        blocks.append(
            {
                "type": "input",
                "block_id": Field.SUBJECT,
                "label": {"type": "plain_text", "text": "Subject"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT,
                    "initial_value": subject[:EDIT_SUBJECT_LIMIT],
                    "max_length": EDIT_SUBJECT_LIMIT,
                },
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": Field.BODY,
            "label": {
                "type": "plain_text",
                "text": "Message" if channel == "email" else "Text message",
            },
            "element": {
                "type": "plain_text_input",
                "action_id": INPUT,
                "multiline": True,
                "initial_value": body[: edit_body_limit(channel)],
                "max_length": edit_body_limit(channel),
            },
        }
    )
    for example in (examples or [])[:2]:
        blocks.append(_context(mrkdwn("How this team wrote this step last time:\n", example), 2000))
    return {
        "type": "modal",
        "callback_id": Form.EDIT_REMINDER,
        "private_metadata": str(reminder_id),
        "title": {"type": "plain_text", "text": "Edit reminder"},
        "submit": {"type": "plain_text", "text": "Save and approve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def skip_modal(reminder_id: int, customer: str) -> Block:
    return {
        "type": "modal",
        "callback_id": Form.SKIP_REMINDER,
        "private_metadata": str(reminder_id),
        "title": {"type": "plain_text", "text": "Skip reminder"},
        "submit": {"type": "plain_text", "text": "Skip it"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(mrkdwn("Skip today's reminder to *", customer, "*? Its step counts as done.")),
            {
                "type": "input",
                "block_id": Field.REASON,
                "optional": True,
                "label": {"type": "plain_text", "text": "Why (optional)"},
                "element": {"type": "plain_text_input", "action_id": INPUT, "max_length": 500},
            },
        ],
    }


def text_blocks(text: Mrkdwn) -> list[Block]:
    """An answer split into sections that each fit Slack's limit, cut between lines."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines():
        if current and len(current) + len(line) + 1 > MAX_SECTION - 10:
            chunks.append(current)
            current = ""
        current += line + "\n"
    if current:
        chunks.append(current)
    # Cut between lines of mrkdwn: no escape or control sequence spans a line.
    return [_section(Mrkdwn(chunk.rstrip())) for chunk in chunks[:MAX_BLOCKS]]


def home_view(queue: Mrkdwn, escalations: Mrkdwn, aging: Mrkdwn) -> Block:
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Today's queue"}},
            *text_blocks(queue)[:15],
            {"type": "divider"},
            {"type": "header", "text": {"type": "plain_text", "text": "Open escalations"}},
            *text_blocks(escalations)[:15],
            {"type": "divider"},
            {"type": "header", "text": {"type": "plain_text", "text": "Aging"}},
            *text_blocks(aging)[:15],
        ],
    }
