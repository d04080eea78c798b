"""Block Kit for a proposed playbook change: the evidence, the diff in a code block, and Approve /
Reject while it waits. Within Slack's limits: at most 50 blocks, 3,000 characters a section,
unique action_ids within a block."""

from __future__ import annotations

from integrations.base.slack import ProposalView, escape
from integrations.slack_blocks import MAX_SECTION, Block, _button, _clip, _section
from integrations.slack_ids import Action, Row, row

FENCE = "```"
LABELS = {
    "approved": ":white_check_mark: Approved: this is now the active playbook",
    "rejected": ":no_entry_sign: Rejected",
}


def proposal_text(view: ProposalView) -> str:
    """The notification text (and what screen readers read)."""
    return _clip(f"Playbook change proposed (version {view.version}): {view.rationale}", 3000)


def code_block(text: str, limit: int = MAX_SECTION) -> str:
    """Text in a code block, escaped for Slack, cut at a line so the whole fits `limit`."""
    body = escape(text.replace(FENCE, "'''"))
    room = limit - 2 * len(FENCE) - 2
    if len(body) > room:
        note = "\n… (cut to fit; `arbot playbook list` and the version's content hold it all)"
        cut = body[: room - len(note)]
        body = cut[: cut.rfind("\n")] if "\n" in cut else cut
        body += note
    return f"{FENCE}\n{body}\n{FENCE}"


def proposal_blocks(view: ProposalView) -> list[Block]:
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"Playbook change proposed: version {view.version}",
            },
        },
        _section(f"*Why:* {escape(view.rationale)}"),
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
    label = LABELS.get(view.decided or "", escape(view.decided or view.status))
    who = f" by {_who(view.decided_by)}" if view.decided_by else ""
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(label + who, 3000)}]}
    )
    return blocks


def _who(actor: str) -> str:
    """A Slack user as a mention; anyone else (the command line, the system) by name."""
    return f"<@{actor}>" if actor[:1] in ("U", "W") and actor.isalnum() else escape(actor)
