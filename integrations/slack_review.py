"""Block Kit for a bank payment a person has to place: the payment, each candidate with an
Apply button, and Leave unmatched. Within Slack's limits (unique action_ids per block)."""

from __future__ import annotations

from integrations.base.slack import ReviewView, escape
from integrations.slack_blocks import Block, _button, _section
from integrations.slack_ids import Action, Row, review_apply, row

MAX_OPTIONS = 5


def review_text(view: ReviewView) -> str:
    return f"Bank payment to place: {view.payment}"


def review_blocks(view: ReviewView) -> list[Block]:
    blocks: list[Block] = [
        _section(f":bank: *Bank payment to place:* {escape(view.payment)}\n_{escape(view.why)}_")
    ]
    lines = [f"*{n}.* {escape(o.text)}" for n, o in enumerate(view.options[:MAX_OPTIONS], 1)]
    if lines:
        blocks.append(_section("\n".join(lines)))
    if view.state != "open":
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": view.decided or view.state}],
            }
        )
        return blocks
    buttons = [
        _button(f"Apply {n}", review_apply(n), f"{view.id}:{n}", "primary" if n == 1 else None)
        for n in range(1, len(view.options[:MAX_OPTIONS]) + 1)
    ]
    buttons.append(_button("Leave unmatched", Action.REVIEW_LEAVE, f"{view.id}:0"))
    blocks.append({"type": "actions", "block_id": row(Row.REVIEW, view.id), "elements": buttons})
    return blocks
