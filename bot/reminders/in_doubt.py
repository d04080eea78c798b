"""A reminder that may or may not have gone out (`unknown`) goes to a person, durably.

Whatever marks a reminder `unknown` (the outbox's recovery of one a dead worker left `sending`,
a provider that gave no answer once it had the message) calls `escalate` in the same transaction:
the customer's escalation is opened, or the reason added to the one already open. A person is then
told even when the run fails or is killed before the finance channel hears of it (that notice,
bot/reminders/flows.py, is only the quick heads-up): the sweep posts a new escalation to Slack, and
posts it again while Slack refuses (bot/escalations/posting.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.core.labels import reason_label
from bot.core.vocabulary import Channel
from bot.escalations.service import open_or_add

SEND_UNKNOWN = "send_unknown"  # the escalation's reason (a free text column: no migration)


def escalate(
    session: Session,
    now: datetime,
    *,
    customer_id: int,
    reminder_id: int,
    channel: str | None,
    why: str,
    stop: str | None = None,
) -> None:
    """Open the customer's escalation (or add to it) for a reminder just marked `unknown`, in
    the caller's transaction, saying why its fate is unknown and what a person checks."""
    open_or_add(
        session,
        customer_id,
        SEND_UNKNOWN,
        now,
        detail=detail(reminder_id, channel, why, stop),
        reminder_id=reminder_id,
    )


def detail(reminder_id: int, channel: str | None, why: str, stop: str | None = None) -> str:
    """What the escalation says after its reason ("a message may or may not have gone out"):
    the reminder, why it is in doubt, and what to do."""
    where = "the SMS provider's message log" if channel == Channel.SMS else "the sent mailbox"
    stopped = (
        f" A stop was asked for after it was claimed ({reason_label(stop)}): it was probably not"
        " handed over."
        if stop
        else ""
    )
    return (
        f"reminder {reminder_id} ({why}).{stopped} "
        f"Check {where}; if it is not there, write to them with Reply: it is never sent again "
        "by itself."
    )
