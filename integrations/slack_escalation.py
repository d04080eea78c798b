"""Block Kit for an escalation: the parent message a person acts on, and its thread with the
account's whole history. Pure functions, within Slack's limits (50 blocks a message, 3,000
characters a section, unique action_ids within a block)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.labels import channel_label, reason_label, reply_label
from integrations.base.mrkdwn import Mrkdwn, clip, join, link, mention, mrkdwn, quote
from integrations.base.slack import ContactLine, EscalationView
from integrations.slack_blocks import MAX_BLOCKS, MAX_SECTION, Block, _button, _context, _section
from integrations.slack_ids import ALL_INVOICES, INPUT, Action, Field, Form, Row, row

ACTIONS = (
    ("Claim", Action.ESC_CLAIM, "primary"),
    ("Reply", Action.ESC_REPLY, None),
    ("Record promise", Action.ESC_PROMISE, None),
    ("Record payment plan", Action.ESC_PLAN, None),
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
MAX_OTHER_CONTACTS = 5  # other contacts named in the parent message
MAX_SUBJECT = 150
SENT_CHUNK = 2000  # characters of a sent message's text per section of Show's modal
MAX_VIEW_BLOCKS = 100
REPLY_SUBJECT_LIMIT = 150  # as bot/escalations/reply.py checks
REPLY_TEXT_LIMIT = 3000
MAX_OPTIONS = 100  # Slack's most options in a select: the oldest open invoices are offered
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_CHECKBOXES = 10  # Slack's most options in a checkboxes element; more take a multi-select


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
    if view.contacts:
        blocks.append(_section(contact_text(view)))
    blocks.extend(sent_blocks(view))
    blocks.append(_section(mrkdwn(":bulb: ", view.suggestion)))
    if view.claimed_by and view.state == "claimed":
        blocks.append(_context(mrkdwn("Claimed by ", mention(view.claimed_by))))
    if view.plan:
        blocks.append(_section(clip(mrkdwn(":calendar: ", "\n".join(view.plan)), MAX_SECTION)))
    cancel = [cancel_plan_button(view)] if view.plan_running else []
    if view.state == "resolved":
        blocks.append(_section(mrkdwn("*Outcome:* ", view.resolution or "not recorded")))
        blocks.append(
            {
                "type": "actions",
                "block_id": row(Row.ESCALATION, view.id),
                "elements": [_button("Reopen", Action.ESC_REOPEN, str(view.id)), *cancel],
            }
        )
    if view.state != "resolved":
        blocks.append(
            {
                "type": "actions",
                "block_id": row(Row.ESCALATION, view.id),
                "elements": [
                    *(
                        _button(text, action_id, str(view.id), style)
                        for text, action_id, style in ACTIONS
                        if not (action_id == Action.ESC_CLAIM and view.state == "claimed")
                        and not (action_id == Action.ESC_PLAN and view.plan_running)
                    ),
                    *cancel,
                ],
            }
        )
    return blocks


def cancel_plan_button(view: EscalationView) -> Block:
    """*Cancel payment plan*, behind Slack's confirmation saying what cancelling does."""
    button = _button("Cancel payment plan", Action.ESC_PLAN_CANCEL, str(view.id), "danger")
    name = view.customer_name if len(view.customer_name) <= 60 else view.customer_name[:59] + "…"
    button["confirm"] = {
        "title": {"type": "plain_text", "text": "Cancel the payment plan?"},
        "text": {
            "type": "plain_text",
            "text": f"{name}'s instalments stop being followed and their reminders are "
            "cancelled; the reminder ladder resumes with the next morning's plan.",
        },
        "confirm": {"type": "plain_text", "text": "Cancel the plan"},
        "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    return button


def contact_text(view: EscalationView) -> Mrkdwn:
    """The contact a reply goes to (name, email, phone), and who else is on file."""
    first, *others = view.contacts

    def line(c: ContactLine) -> Mrkdwn:
        parts = [p for p in (c.name, c.email, c.phone) if p] or ["no name or address"]
        note = mrkdwn(" · _", c.note, "_") if c.note else ""
        return mrkdwn(join(parts, " · "), " (", c.role, ")", note)

    text = mrkdwn("*Contact:* ", line(first))
    if others:
        shown = [line(c) for c in others[:MAX_OTHER_CONTACTS]]
        more = len(others) - len(shown)
        text = mrkdwn(
            text, "\n*Also on file:* ", join(shown, "; "), f" and {more} more" if more else ""
        )
    return text


def sent_blocks(view: EscalationView) -> list[Block]:
    """What was sent lately, a line each (collapsed), each with Show for its full text."""
    blocks: list[Block] = []
    for i, sent in enumerate(view.sent):
        title = mrkdwn("*Last sent:*\n") if i == 0 else mrkdwn()
        subject = (
            mrkdwn(": “", clip(mrkdwn(sent.subject), MAX_SUBJECT), "”") if sent.subject else ""
        )
        blocks.append(
            {
                **_section(
                    mrkdwn(
                        title,
                        f"`{sent.at:%Y-%m-%d %H:%M}` ",
                        sent.step,
                        " by ",
                        channel_label(sent.channel),
                        subject,
                    )
                ),
                "accessory": _button("Show", Action.ESC_SENT, str(sent.reminder_id)),
            }
        )
    return blocks


def sent_modal(customer: str, subject: str | None, text: str) -> Block:
    """A message sent to the customer, in full (its text split over sections as it needs)."""
    head = mrkdwn("To *", customer, "*", mrkdwn("\n*Subject:* ", subject) if subject else "")
    body = [mrkdwn(text[i : i + SENT_CHUNK]) for i in range(0, len(text), SENT_CHUNK)] or [
        mrkdwn("(no text)")
    ]
    blocks = [_section(head), *[_section(b) for b in body[: MAX_VIEW_BLOCKS - 1]]]
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "What was sent"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


def reply_modal(
    escalation_id: int,
    customer: str,
    to: str | None,
    blocked: str | None,
    subject: str,
    text: str,
    when: str | None,
    copies: Sequence[tuple[int, str]] = (),
    copies_asked: bool = False,
) -> Block:
    """The Reply form: to whom, when it goes, a subject and the suggested answer to edit, and
    the open invoices (`copies`: id and what to show) whose PDF copies it may carry, all ticked
    when the customer asked for a copy. When it cannot go (the contact opted out, bounced, has
    no address), the form says so and has nothing to submit."""
    if blocked is not None:
        return {
            "type": "modal",
            "callback_id": Form.ESC_REPLY,
            "private_metadata": str(escalation_id),
            "title": {"type": "plain_text", "text": "Reply"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [_section(mrkdwn(":no_entry: ", blocked))],
        }
    timing = (
        mrkdwn("It is night for them: it is queued and goes out ", when, ".")
        if when
        else mrkdwn("It goes out within a minute.")
    )
    intro = mrkdwn(
        "An email to *",
        customer,
        "* (",
        to or "",
        "), in the same conversation: their answer comes back to this thread. ",
        timing,
    )
    return _modal(
        Form.ESC_REPLY,
        escalation_id,
        "Reply",
        "Send",
        [
            _section(intro),
            _prefilled(Field.SUBJECT, "Subject", subject, REPLY_SUBJECT_LIMIT, False),
            _prefilled(Field.BODY, "Message", text, REPLY_TEXT_LIMIT, True),
            *([_copies(copies, copies_asked)] if copies else []),
        ],
    )


def _copies(copies: Sequence[tuple[int, str]], ticked: bool) -> Block:
    """Which invoices' copies (PDF) go with the reply: checkboxes, or a multi-select past
    MAX_CHECKBOXES (the oldest MAX_OPTIONS); ticked when the customer asked for a copy."""
    options = [
        {"text": {"type": "plain_text", "text": shown[:MAX_OPTION_TEXT]}, "value": str(key)}
        for key, shown in copies[:MAX_OPTIONS]
    ]
    element: Block = {"action_id": INPUT, "options": options}
    if len(options) <= MAX_CHECKBOXES:
        element["type"] = "checkboxes"
    else:
        element["type"] = "multi_static_select"
        element["placeholder"] = {"type": "plain_text", "text": "Invoices to attach"}
    if ticked:
        element["initial_options"] = options
    return {
        "type": "input",
        "block_id": Field.ATTACH,
        "optional": True,
        "label": {"type": "plain_text", "text": "Attach copies of the invoices (PDF)"},
        "element": element,
    }


def _prefilled(block_id: str, label: str, value: str, limit: int, multiline: bool) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "plain_text_input",
            "action_id": INPUT,
            "multiline": multiline,
            "initial_value": value[:limit],
            "max_length": limit,
        },
    }


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
                mrkdwn(" · ", link(i.payment_link, "payment link")) if i.payment_link else "",
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


def dispute_modal(
    escalation_id: int, customer: str, invoices: Sequence[tuple[str, str]] = ()
) -> Block:
    """Which of the open invoices (number, what it shows, oldest first) are disputed: all are
    picked at first, the person leaves out the ones that are not. More than a select can list
    are offered as "All N open invoices" (picked at first) beside the oldest, and the form says
    how many are not listed."""
    blocks = [
        _section(
            mrkdwn(
                "Mark *",
                customer,
                "*'s invoices disputed? No automated message goes "
                "out about them until a person resolves the dispute.",
            )
        )
    ]
    if invoices:
        listed = invoices if len(invoices) <= MAX_OPTIONS else invoices[: MAX_OPTIONS - 1]
        options = [
            {
                "text": {"type": "plain_text", "text": shown[:MAX_OPTION_TEXT]},
                "value": number[:MAX_OPTION_VALUE],
            }
            for number, shown in listed
        ]
        picked = options
        if len(listed) < len(invoices):
            every = f"All {len(invoices)} open invoices"
            picked = [{"text": {"type": "plain_text", "text": every}, "value": ALL_INVOICES}]
            options = picked + options
            blocks.append(
                _context(
                    mrkdwn(
                        f"{len(invoices)} open invoices: the {len(listed)} oldest are listed, "
                        f"the other {len(invoices) - len(listed)} are not. Keep *{every}* to "
                        "mark every one disputed, or pick among the oldest instead."
                    )
                )
            )
        blocks.append(
            {
                "type": "input",
                "block_id": Field.INVOICES,
                "label": {"type": "plain_text", "text": "Disputed invoices"},
                "element": {
                    "type": "multi_static_select",
                    "action_id": INPUT,
                    "options": options,
                    "initial_options": picked,
                },
            }
        )
    blocks.append(_text_input(Field.REASON, "What is disputed", multiline=True))
    return _modal(Form.ESC_DISPUTE, escalation_id, "Mark disputed", "Mark disputed", blocks)


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
