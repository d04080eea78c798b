"""Block Kit for a bank payment a person has to place: the payment, each candidate with an
Apply button, and Leave unmatched. Within Slack's limits (unique action_ids per block)."""

from __future__ import annotations

from bot.core.labels import state_label
from integrations.base.mrkdwn import Mrkdwn, clip, join, mrkdwn
from integrations.base.slack import ReviewView
from integrations.slack_blocks import Block, _button, _context, _section
from integrations.slack_ids import Action, Row, review_apply, row

MAX_OPTIONS = 5


def review_text(view: ReviewView) -> Mrkdwn:
    """The notification text: payer and reference are whatever the payer wrote."""
    return clip(mrkdwn("Bank payment to place: ", view.payment), 3000)


def review_blocks(view: ReviewView) -> list[Block]:
    why = mrkdwn("\n_", view.why, "_") if view.why else ""
    blocks: list[Block] = [_section(mrkdwn(":bank: *Bank payment to place:* ", view.payment, why))]
    lines = [mrkdwn(f"*{n}.* ", o.text) for n, o in enumerate(view.options[:MAX_OPTIONS], 1)]
    if lines:
        blocks.append(_section(join(lines, "\n")))
    if view.state != "open":
        blocks.append(_context(view.decided or mrkdwn(state_label(view.state).capitalize())))
        return blocks
    buttons = [
        _button(f"Apply {n}", review_apply(n), f"{view.id}:{n}", "primary" if n == 1 else None)
        for n in range(1, len(view.options[:MAX_OPTIONS]) + 1)
    ]
    buttons.append(_button("Leave unmatched", Action.REVIEW_LEAVE, f"{view.id}:0"))
    blocks.append({"type": "actions", "block_id": row(Row.REVIEW, view.id), "elements": buttons})
    return blocks
