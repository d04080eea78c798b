"""Block Kit for an escalation: the parent message a person acts on, and its thread with the
account's whole history. Pure functions, within Slack's limits (50 blocks a message, 3,000
characters a section, unique action_ids within a block)."""

from __future__ import annotations

from integrations.base.slack import EscalationView, escape, mention
from integrations.slack_blocks import MAX_BLOCKS, MAX_SECTION, Block, _button, _clip, _section
from integrations.slack_ids import INPUT, Action, Field, Form, Row, row

ACTIONS = (
    ("Claim", Action.ESC_CLAIM, "primary"),
    ("Record promise", Action.ESC_PROMISE, None),
    ("Mark disputed", Action.ESC_DISPUTE, "danger"),
    ("Resume sequence", Action.ESC_RESUME, None),
    ("Resolve", Action.ESC_RESOLVE, None),
)
STATE_TEXT = {
    "open": ":rotating_light: Needs a person",
    "claimed": ":raising_hand: Claimed",
    "resolved": ":white_check_mark: Resolved",
}
MAX_WROTE = 1500


def escalation_text(view: EscalationView) -> str:
    return f"{view.customer_name}: {view.reason.replace('_', ' ')} ({view.at_stake})"


def escalation_blocks(view: EscalationView) -> list[Block]:
    owner = mention(view.owner) if view.owner else "the finance team"
    label = f" · reply labelled *{view.label.replace('_', ' ')}*" if view.label else ""
    head = (
        f"{STATE_TEXT.get(view.state, view.state)} · *{escape(view.customer_name)}* "
        f"(`{escape(view.customer_ref)}`, {view.tier}) · {owner}\n"
        f"*Why:* {escape(view.reason.replace('_', ' '))}"
        + (f": {escape(view.detail)}" if view.detail else "")
        + f"{label}\n*At stake:* {escape(view.at_stake)}"
    )
    blocks: list[Block] = [_section(head)]
    if view.wrote:
        quoted = "\n".join(
            f"> {escape(line)}" for line in _clip(view.wrote, MAX_WROTE).splitlines()
        )
        blocks.append(_section(f"*They wrote:*\n{quoted}"))
    blocks.append(_section(f":bulb: {escape(view.suggestion)}"))
    if view.claimed_by and view.state == "claimed":
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"Claimed by {mention(view.claimed_by)}"}],
            }
        )
    if view.state != "resolved":
        blocks.append(
            {
                "type": "actions",
                "block_id": row(Row.ESCALATION, view.id),
                "elements": [
                    _button(text, action_id, str(view.id), style)
                    for text, action_id, style in ACTIONS
                    if not (action_id == Action.ESC_CLAIM and view.state == "claimed")
                ],
            }
        )
    return blocks


def history_messages(view: EscalationView) -> list[list[Block]]:
    """The thread: open invoices first, then every event in time order, split into as many
    messages as the limits need."""
    sections: list[str] = []
    if view.invoices:
        lines = [
            f"• {escape(i.number)}: {i.balance}, "
            + (f"{i.days_overdue} days overdue" if i.days_overdue > 0 else "not yet due")
            + (" · *disputed*" if i.disputed else "")
            + (f" · promised {i.promise_date.isoformat()}" if i.promise_date else "")
            for i in view.invoices
        ]
        sections.extend(_chunks("*Open invoices*", lines))
    else:
        sections.append("*Open invoices*\nNone: everything is paid.")
    events = [f"`{h.at.strftime('%Y-%m-%d %H:%M')}` {escape(h.text)}" for h in view.history] or [
        "Nothing recorded yet."
    ]
    sections.extend(_chunks("*History* (oldest first)", events))
    messages: list[list[Block]] = []
    for i in range(0, len(sections), MAX_BLOCKS):
        messages.append([_section(s) for s in sections[i : i + MAX_BLOCKS]])
    return messages


def _chunks(title: str, lines: list[str]) -> list[str]:
    out, current = [], title
    for line in lines:
        line = _clip(line, MAX_SECTION - len(title) - 2)
        if len(current) + 1 + len(line) > MAX_SECTION:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}"
    out.append(current)
    return out


def _modal(
    callback_id: str, escalation_id: int, title: str, submit: str, blocks: list[Block]
) -> Block:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": str(escalation_id),
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _text_input(
    block_id: str, label: str, optional: bool = False, multiline: bool = False
) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "plain_text_input",
            "action_id": INPUT,
            "multiline": multiline,
            "max_length": 2000,
        },
    }


def promise_modal(escalation_id: int, customer: str, initial: str) -> Block:
    return _modal(
        Form.ESC_PROMISE,
        escalation_id,
        "Record a promise",
        "Record it",
        [
            _section(
                f"When did *{escape(customer)}* promise to pay? Nothing automated goes out "
                "until that date plus the grace days; if it is still open then, the sequence "
                "resumes and the owner is told here."
            ),
            {
                "type": "input",
                "block_id": Field.DATE,
                "label": {"type": "plain_text", "text": "Promised date"},
                "element": {"type": "datepicker", "action_id": INPUT, "initial_date": initial},
            },
        ],
    )


def dispute_modal(escalation_id: int, customer: str) -> Block:
    return _modal(
        Form.ESC_DISPUTE,
        escalation_id,
        "Mark disputed",
        "Mark disputed",
        [
            _section(
                f"Mark *{escape(customer)}*'s open invoices disputed? No automated message goes "
                "out about them until a person resolves the dispute."
            ),
            _text_input(Field.REASON, "What is disputed", multiline=True),
        ],
    )


def resolve_modal(escalation_id: int, customer: str) -> Block:
    return _modal(
        Form.ESC_RESOLVE,
        escalation_id,
        "Resolve",
        "Resolve",
        [
            _section(f"Close the escalation for *{escape(customer)}*."),
            {
                "type": "input",
                "block_id": Field.OUTCOME,
                "label": {"type": "plain_text", "text": "Outcome"},
                "element": {
                    "type": "static_select",
                    "action_id": INPUT,
                    "options": [
                        {"text": {"type": "plain_text", "text": text}, "value": value}
                        for value, text in OUTCOMES
                    ],
                },
            },
            _text_input(Field.NOTE, "Note (optional)", optional=True, multiline=True),
        ],
    )


OUTCOMES = (
    ("paid", "Paid"),
    ("promise", "Promise agreed"),
    ("payment_plan", "Payment plan agreed"),
    ("credit_note", "Credit note issued"),
    ("written_off", "Written off"),
    ("no_action", "Nothing needed"),
)
