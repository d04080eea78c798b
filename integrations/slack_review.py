"""Block Kit for a bank payment a person has to place: the payment, each candidate with an
Apply button, and Leave unmatched. Every candidate a review stores is offered, each in a section of
its own (so none is cut off by a section's 3,000 characters): at most 10 of them make 12 blocks
and 11 buttons, within Slack's limits (50 blocks, 25 elements an actions block, unique
action_ids)."""

from __future__ import annotations

from bot.core.labels import state_label
from integrations.base.mrkdwn import Mrkdwn, clip, mrkdwn
from integrations.base.slack import ReviewView
from integrations.slack_blocks import Block, _button, _context, _section
from integrations.slack_ids import Action, Row, review_apply, row

# Every candidate a review stores: bot.payments.reconcile.MAX_CANDIDATES (a test keeps them equal).
MAX_OPTIONS = 10


def review_text(view: ReviewView) -> Mrkdwn:
    """The notification text: payer and reference are whatever the payer wrote."""
    return clip(mrkdwn("Bank payment to place: ", view.payment), 3000)


def review_blocks(view: ReviewView) -> list[Block]:
    why = mrkdwn("\n_", view.why, "_") if view.why else ""
    blocks: list[Block] = [_section(mrkdwn(":bank: *Bank payment to place:* ", view.payment, why))]
    options = view.options[:MAX_OPTIONS]
    blocks += [_section(mrkdwn(f"*{n}.* ", o.text)) for n, o in enumerate(options, 1)]
    if view.state != "open":
        blocks.append(_context(view.decided or mrkdwn(state_label(view.state).capitalize())))
        return blocks
    buttons = [
        _button(f"Apply {n}", review_apply(n), f"{view.id}:{n}", "primary" if n == 1 else None)
        for n in range(1, len(options) + 1)
    ]
    buttons.append(_button("Leave unmatched", Action.REVIEW_LEAVE, f"{view.id}:0"))
    blocks.append({"type": "actions", "block_id": row(Row.REVIEW, view.id), "elements": buttons})
    return blocks
