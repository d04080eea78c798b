"""Block Kit for a proposed playbook change: the evidence, the diff in a code block, and Approve /
Reject while it waits. Within Slack's limits: at most 50 blocks, 3,000 characters a section,
unique action_ids within a block."""

from __future__ import annotations

from integrations.base.mrkdwn import Mrkdwn, actor, clip, escape, mrkdwn
from integrations.base.slack import ProposalView
from integrations.slack_blocks import MAX_SECTION, Block, _button, _context, _section
from integrations.slack_ids import Action, Row, row

FENCE = "```"
LABELS = {
    "approved": ":white_check_mark: Approved: this is now the active playbook",
    "rejected": ":no_entry_sign: Rejected",
}


def proposal_text(view: ProposalView) -> Mrkdwn:
    """The notification text (and what screen readers read)."""
    return clip(
        mrkdwn(f"Playbook change proposed (version {view.version}): ", view.rationale), 3000
    )


def code_block(text: str, limit: int = MAX_SECTION) -> Mrkdwn:
    """Text in a code block, escaped for Slack, cut at a line so the whole fits `limit`."""
    body = escape(text.replace(FENCE, "'''"))
    room = limit - 2 * len(FENCE) - 2
    if len(body) > room:
        note = "\n… (cut to fit; `arbot playbook list` and the version's content hold it all)"
        body = mrkdwn(clip(body, room - len(note), at_line=True), note)
    return mrkdwn(FENCE, "\n", body, "\n", FENCE)


def proposal_blocks(view: ProposalView) -> list[Block]:
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"Playbook change proposed: version {view.version}",
            },
        },
        _section(mrkdwn("*Why:* ", view.rationale)),
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": code_block(view.diff or "(no change)")},
        },
    ]
    if view.status == "proposed":
        value = str(view.version_id)
        blocks += [
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "Nothing changes until someone approves. Approving makes this "
                        "version the active playbook; `arbot playbook rollback` undoes it.",
                    }
                ],
            },
            {
                "type": "actions",
                "block_id": row(Row.PROPOSAL, view.version_id),
                "elements": [
                    _button("Approve", Action.PROPOSAL_APPROVE, value, "primary"),
                    _button("Reject", Action.PROPOSAL_REJECT, value, "danger"),
                ],
            },
        ]
        return blocks
    label = LABELS.get(view.decided or "", view.decided or view.status)
    who = mrkdwn(" by ", actor(view.decided_by)) if view.decided_by else ""
    blocks.append(_context(mrkdwn(label, who)))
    return blocks
