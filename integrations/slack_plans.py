"""Block Kit for an escalation's payment plan and its Resume: the Record payment plan form (which
invoices, then up to six instalments, a date and an amount each), the Resume form (what to clear,
as checkboxes) and its confirmation. Pure functions, within Slack's limits (a modal holds 100
blocks, a title 24 characters, a checkbox option's text 75)."""

from __future__ import annotations

from integrations.base.mrkdwn import Mrkdwn, mrkdwn
from integrations.slack_blocks import Block, _section
from integrations.slack_ids import INPUT, Field, Form

MAX_INSTALMENTS = 6
OPTION_TEXT = 75  # characters Slack shows of a select's or a checkbox's option


def plan_row(kind: str, row: int) -> str:
    """The block_id of an instalment's date (`kind` "date") or amount ("amount"), rows from 1."""
    return f"plan_{kind}_{row}"


def _modal(callback_id: str, metadata: str, title: str, submit: str, blocks: list[Block]) -> Block:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _option(value: str, text: str) -> Block:
    short = text if len(text) <= OPTION_TEXT else text[: OPTION_TEXT - 1] + "…"
    return {"text": {"type": "plain_text", "text": short}, "value": value}


def plan_modal(
    escalation_id: int, customer: str, scopes: list[tuple[str, str]], currency: str
) -> Block:
    """`scopes`: (value, label) per choice, the whole account first ("account"), then each open
    invoice by number; the first is picked to start with."""
    blocks: list[Block] = [
        _section(
            mrkdwn(
                "Instalments agreed with *",
                customer,
                f"*. Amounts in {currency}, adding up to the balance of what the plan covers; "
                "dates after today, each later than the one above. Their reminders wait while "
                "the instalments come in on time; a missed one reopens this thread.",
            )
        ),
        {
            "type": "input",
            "block_id": Field.PLAN_SCOPE,
            "label": {"type": "plain_text", "text": "The plan covers"},
            "element": {
                "type": "static_select",
                "action_id": INPUT,
                "options": [_option(v, t) for v, t in scopes[:100]],
                "initial_option": _option(*scopes[0]),
            },
        },
    ]
    for row in range(1, MAX_INSTALMENTS + 1):
        optional = row > 1
        blocks.append(
            {
                "type": "input",
                "block_id": plan_row("date", row),
                "optional": optional,
                "label": {"type": "plain_text", "text": f"Instalment {row}: date"},
                "element": {"type": "datepicker", "action_id": INPUT},
            }
        )
        blocks.append(
            {
                "type": "input",
                "block_id": plan_row("amount", row),
                "optional": optional,
                "label": {"type": "plain_text", "text": f"Instalment {row}: amount ({currency})"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT,
                    "max_length": 24,
                    "placeholder": {"type": "plain_text", "text": "e.g. 400.00"},
                },
            }
        )
    return _modal(Form.ESC_PLAN, str(escalation_id), "Record payment plan", "Record it", blocks)


def resume_modal(escalation_id: int, customer: str, holding: dict[str, str]) -> Block:
    """What holds the account back, as checkboxes, none ticked: Resume clears only what is
    ticked, and the next form says what that means before anything changes."""
    blocks: list[Block] = [
        _section(
            mrkdwn(
                "Resume *",
                customer,
                "*'s sequence: this closes the escalation, and the next morning's plan "
                "picks the account up. Tick what to clear; what is left unticked stays.",
            )
        )
    ]
    if holding:
        blocks.append(
            {
                "type": "input",
                "block_id": Field.CLEAR,
                "optional": True,
                "label": {"type": "plain_text", "text": "Clear"},
                "element": {
                    "type": "checkboxes",
                    "action_id": INPUT,
                    "options": [_option(key, text) for key, text in holding.items()],
                },
            }
        )
    else:
        blocks.append(_section(mrkdwn("No promise, dispute or pause holds this account back.")))
    return _modal(Form.ESC_RESUME, str(escalation_id), "Resume sequence", "Next", blocks)


def resume_confirmation(metadata: str, cleared: list[str], kept: list[str]) -> Block:
    """The second step of Resume: exactly what will be cleared and what stays, then Resume."""
    lines: list[Mrkdwn] = []
    if cleared:
        lines.append(mrkdwn("*Cleared:*\n", "\n".join(f"• {t}" for t in cleared)))
    else:
        lines.append(mrkdwn("*Cleared:* nothing."))
    if any(t.startswith("The dispute") for t in cleared):
        lines.append(
            mrkdwn(":warning: Clearing the dispute lets automated reminders about it go out again.")
        )
    if kept:
        lines.append(
            mrkdwn("*Kept* (still holds its invoices back):\n", "\n".join(f"• {t}" for t in kept))
        )
    lines.append(mrkdwn("The escalation is closed; it can be reopened from its message."))
    return _modal(
        Form.ESC_RESUME_CONFIRM,
        metadata,
        "Resume: confirm",
        "Resume",
        [_section(line) for line in lines],
    )
