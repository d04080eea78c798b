"""Every id Slack sends back to arbot, written once: a button's action_id, a form's callback_id
and the block_id of each block whose value a listener reads. The Block Kit builders
(integrations/slack_*.py) put them into messages and forms; the listeners (handlers/slack/) match
on them and read forms by them. Slack keeps these strings in every message already posted, so
changing one breaks those buttons: they are the public interface, as the slash command is."""

from __future__ import annotations

import re
from enum import StrEnum

from bot.core.vocabulary import TIERS


class Action(StrEnum):
    """A button's action_id."""

    APPROVE = "approve"
    EDIT = "edit"
    SKIP = "skip"
    APPROVE_ALL = "approve_all"  # + "_<tier>": one button per tier, in the plan's header
    ESC_CLAIM = "esc_claim"
    ESC_PROMISE = "esc_promise"
    ESC_DISPUTE = "esc_dispute"
    ESC_RESUME = "esc_resume"
    ESC_RESOLVE = "esc_resolve"
    PROPOSAL_APPROVE = "proposal_approve"
    PROPOSAL_REJECT = "proposal_reject"
    REVIEW_APPLY = "review_apply"  # + "_<n>": one button per candidate payment
    REVIEW_LEAVE = "review_leave"


def approve_all(tier: str) -> str:
    """The action_id of the button that approves a whole tier's waiting reminders."""
    return f"{Action.APPROVE_ALL}_{tier}"


def review_apply(option: int) -> str:
    """The action_id of the button that applies a payment to candidate `option` (from 1)."""
    return f"{Action.REVIEW_APPLY}_{option}"


APPROVE_ALL_ANY = re.compile(rf"^{Action.APPROVE_ALL}_({'|'.join(TIERS)})$")
REVIEW_ANY = re.compile(rf"^({Action.REVIEW_APPLY}_\d+|{Action.REVIEW_LEAVE})$")


class Form(StrEnum):
    """A modal's callback_id. An escalation's form has the id of the button that opens it."""

    EDIT_REMINDER = "edit_reminder"
    SKIP_REMINDER = "skip_reminder"
    ESC_PROMISE = Action.ESC_PROMISE.value
    ESC_DISPUTE = Action.ESC_DISPUTE.value
    ESC_RESOLVE = Action.ESC_RESOLVE.value


class Field(StrEnum):
    """The block_id of a form's input."""

    SUBJECT = "subject"
    BODY = "body"
    REASON = "reason"
    DATE = "date"
    OUTCOME = "outcome"
    NOTE = "note"


INPUT = "value"  # the action_id of the one input element in each Field block


class Row(StrEnum):
    """The block_id of a row of buttons: a prefix and the id of what the row acts on."""

    REMINDER = "reminder_"
    ESCALATION = "esc:"
    PROPOSAL = "proposal_"
    REVIEW = "review:"


APPROVE_ALL_ROW = Action.APPROVE_ALL.value  # the plan header's one row of buttons


def row(prefix: Row, item_id: int) -> str:
    return f"{prefix}{item_id}"
