"""Block Kit for a guardrail proposed after recurring errors: what happened, what approving would
change, Approve / Dismiss while it waits, Release while an approved hold still holds, and the
form that asks why it is dismissed. Within Slack's limits: at most 50 blocks, 3,000 characters a
section, a header's 150."""

from __future__ import annotations

from integrations.base.mrkdwn import Mrkdwn, actor, clip, mrkdwn
from integrations.base.slack import GuardrailView
from integrations.slack_blocks import Block, _button, _context, _section
from integrations.slack_ids import INPUT, Action, Field, Form, Row, row

HEADER_LIMIT = 150
WHY_LIMIT = 500
TITLES = {
    "bounces": "Emails bounce",
    "wrong_contact": "Wrong contact",
    "correction": "Invoice corrected after a reminder",
    "no_contact": "No contact to write to",
}


def _title(view: GuardrailView) -> str:
    return f"{TITLES.get(view.rule, 'Guardrail')}: {view.customer_name}"


def guardrail_text(view: GuardrailView) -> Mrkdwn:
    """The notification text (and what screen readers read)."""
    return clip(mrkdwn("Guardrail proposed, ", _title(view), ". ", view.happened), 3000)


def guardrail_blocks(view: GuardrailView) -> list[Block]:
    title = _title(view)
    if len(title) > HEADER_LIMIT:
        title = title[: HEADER_LIMIT - 1] + "…"
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        _section(mrkdwn("*What happened:* ", view.happened)),
        _section(mrkdwn("*What approving changes:* ", view.change)),
        _context(mrkdwn("Customer ", view.customer_id, " · `/ar status ", view.customer_id, "`")),
    ]
    value = str(view.proposal_id)
    if view.status == "proposed":
        blocks += [
            _context(
                mrkdwn(
                    "Nothing changes until an approver approves. Dismissing asks why, and this "
                    "guardrail is not proposed again for 8 weeks."
                )
            ),
            {
                "type": "actions",
                "block_id": row(Row.GUARDRAIL, view.proposal_id),
                "elements": [
                    _button("Approve", Action.GUARDRAIL_APPROVE, value, "primary"),
                    _button("Dismiss", Action.GUARDRAIL_DISMISS, value),
                ],
            },
        ]
        return blocks
    who = mrkdwn(" by ", actor(view.decided_by)) if view.decided_by else ""
    if view.status == "dismissed":
        why = mrkdwn(": ", view.why) if view.why else ""
        blocks.append(_context(mrkdwn(":no_entry_sign: Dismissed", who, why)))
        return blocks
    blocks.append(_context(mrkdwn(":white_check_mark: Approved", who)))
    if view.holding:
        blocks.append(
            {
                "type": "actions",
                "block_id": row(Row.GUARDRAIL, view.proposal_id),
                "elements": [_button("Release hold", Action.GUARDRAIL_RELEASE, value)],
            }
        )
    elif view.released_by:
        blocks.append(_context(mrkdwn("Hold released by ", actor(view.released_by))))
    return blocks


def dismiss_modal(proposal_id: int, customer: str) -> Block:
    """Asks why a guardrail is dismissed (the answer is kept with the decision)."""
    return {
        "type": "modal",
        "callback_id": Form.GUARDRAIL_DISMISS,
        "private_metadata": str(proposal_id),
        "title": {"type": "plain_text", "text": "Dismiss guardrail"},
        "submit": {"type": "plain_text", "text": "Dismiss"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(
                mrkdwn(
                    "Dismiss the guardrail for *",
                    customer,
                    "*? Nothing changes, and it is not proposed again for 8 weeks.",
                )
            ),
            {
                "type": "input",
                "block_id": Field.REASON,
                "optional": True,
                "label": {"type": "plain_text", "text": "Why (optional)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT,
                    "max_length": WHY_LIMIT,
                },
            },
        ],
    }


def guardrail_status(views: list[GuardrailView], *, show_details: bool) -> Mrkdwn:
    """`/ar status`'s word on the approved guardrails holding the customer back (empty: none).

    What happened names amounts (a correction) or contact addresses (bounces), so it is shown only
    when `show_details` (an approver, or the finance channel); otherwise only which guardrail."""
    lines = [
        mrkdwn(
            "*Held back by a guardrail* (",
            TITLES.get(view.rule, "guardrail").lower(),
            ", approved",
            mrkdwn(" by ", actor(view.decided_by)) if view.decided_by else "",
            "): ",
            view.happened,
            " Its card in the finance channel has *Release hold*.",
        )
        if show_details
        else mrkdwn(
            "*Held back by a guardrail* (",
            TITLES.get(view.rule, "guardrail").lower(),
            "): see its card in the finance channel.",
        )
        for view in views
    ]
    return mrkdwn(*(part for line in lines for part in ("\n", line)))
