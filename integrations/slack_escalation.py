"""Block Kit for an escalation: the parent message a person acts on, and its thread with the
account's whole history. Pure functions, within Slack's limits (50 blocks a message, 3,000
characters a section, unique action_ids within a block)."""

from __future__ import annotations

from bot.core.labels import reason_label, reply_label
from integrations.base.mrkdwn import Mrkdwn, clip, join, mention, mrkdwn, quote
from integrations.base.slack import EscalationView
from integrations.slack_blocks import MAX_BLOCKS, MAX_SECTION, Block, _button, _context, _section
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


def escalation_text(view: EscalationView) -> Mrkdwn:
    """The notification text (and what screen readers read)."""
    return clip(
        mrkdwn(view.customer_name, ": ", reason_label(view.reason), " (", view.at_stake, ")"),
        3000,
    )


def escalation_blocks(view: EscalationView) -> list[Block]:
    owner = mention(view.owner) if view.owner else "the finance team"
    label = mrkdwn(" · the reply *", reply_label(view.label), "*") if view.label else ""
    head = mrkdwn(
        STATE_TEXT.get(view.state, view.state),
        " · *",
        view.customer_name,
        "* (`",
        view.customer_ref,
        "`, ",
        view.tier,
        ") · ",
        owner,
        "\n",
        "*Why:* ",
        reason_label(view.reason),
        mrkdwn(": ", view.detail) if view.detail else "",
        label,
        "\n*At stake:* ",
        view.at_stake,
    )
    blocks: list[Block] = [_section(head)]
    if view.wrote:
        wrote = view.wrote if len(view.wrote) <= MAX_WROTE else view.wrote[: MAX_WROTE - 1] + "…"
        blocks.append(_section(mrkdwn("*They wrote:*\n", quote(wrote))))
    blocks.append(_section(mrkdwn(":bulb: ", view.suggestion)))
    if view.claimed_by and view.state == "claimed":
        blocks.append(_context(mrkdwn("Claimed by ", mention(view.claimed_by))))
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
    sections: list[Mrkdwn] = []
    if view.invoices:
        lines = [
            mrkdwn(
                "• ",
                i.number,
                ": ",
                i.balance,
                ", ",
                f"{i.days_overdue} days overdue" if i.days_overdue > 0 else "not yet due",
                " · *disputed*" if i.disputed else "",
                f" · promised {i.promise_date.isoformat()}" if i.promise_date else "",
            )
            for i in view.invoices
        ]
        sections.extend(_chunks(mrkdwn("*Open invoices*"), lines))
    else:
        sections.append(mrkdwn("*Open invoices*\nNone: everything is paid."))
    events = [mrkdwn(f"`{h.at.strftime('%Y-%m-%d %H:%M')}` ", h.text) for h in view.history] or [
        mrkdwn("Nothing recorded yet.")
    ]
    sections.extend(_chunks(mrkdwn("*History* (oldest first)"), events))
    messages: list[list[Block]] = []
    for i in range(0, len(sections), MAX_BLOCKS):
        messages.append([_section(s) for s in sections[i : i + MAX_BLOCKS]])
    return messages


def _chunks(title: Mrkdwn, lines: list[Mrkdwn]) -> list[Mrkdwn]:
    out, current = [], title
    for line in lines:
        line = clip(line, MAX_SECTION - len(title) - 2)
        if len(current) + 1 + len(line) > MAX_SECTION:
            out.append(current)
            current = line
        else:
            current = join([current, line], "\n")
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
                mrkdwn(
                    "When did *",
                    customer,
                    "* promise to pay? Nothing automated goes out "
                    "until that date plus the grace days; if it is still open then, the sequence "
                    "resumes and the owner is told here.",
                )
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
                mrkdwn(
                    "Mark *",
                    customer,
                    "*'s open invoices disputed? No automated message goes "
                    "out about them until a person resolves the dispute.",
                )
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
            _section(mrkdwn("Close the escalation for *", customer, "*.")),
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
