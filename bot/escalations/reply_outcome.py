"""What became of a reply written from an escalation's thread, said in that thread: sent (to whom
and when, once the outbox has handed it to the mail server) or not delivered (the server refused
it, or it bounced later), so the person who wrote it knows without looking anywhere else. And the
thread a customer's answer to such a reply belongs in (`thread_of`).

Each reply is its own message (its own Message-ID and its own `+r.` token, as every email is), and
its ThreadReply row names the escalation it was written in: an answer to it, found through either,
comes back to that thread, which is opened again if it was resolved meanwhile."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Escalation, Reminder, ThreadReply
from bot.core.vocabulary import ReminderState
from integrations.base.mrkdwn import Mrkdwn, mention, mrkdwn
from integrations.base.slack import EscalationPort

log = logging.getLogger(__name__)
ERROR_SHOWN = 300  # characters of the mail server's words
# A reply cancelled before it went because it could not carry the copies of invoices ticked for it
# (bot/reminders/attaching.py)
NOT_SENT_FOR_COPIES = ("no_invoice_copy", "message_too_large")


@dataclass(frozen=True, slots=True)
class ThreadLine:
    channel: str
    thread_ts: str
    text: Mrkdwn


def outcome_lines(
    session: Session, reminder_ids: list[int], timezone: str, failed_only: bool = False
) -> list[ThreadLine]:
    """For each of these reminders that is a reply from a thread, now sent, failed (only
    failed: a bounce's word) or not sent for want of its copies of invoices: the line its
    thread is told."""
    if not reminder_ids:
        return []
    rows = session.execute(
        select(Reminder, ThreadReply.written_by, Escalation, Contact.email)
        .join(ThreadReply, ThreadReply.reminder_id == Reminder.id)
        .join(Escalation, Escalation.id == ThreadReply.escalation_id)
        .outerjoin(Contact, Contact.id == Reminder.contact_id)
        .where(
            Reminder.id.in_(reminder_ids),
            Reminder.state.in_(
                [ReminderState.FAILED]
                if failed_only
                else [ReminderState.SENT, ReminderState.FAILED, ReminderState.CANCELLED]
            ),
        )
        .order_by(Reminder.id)
    ).all()
    zone = ZoneInfo(timezone)
    lines = []
    for reminder, writer, escalation, to in rows:
        if not escalation.slack_channel or not escalation.slack_thread_ts:
            continue  # the thread is not in Slack (yet): its history shows the send
        who, address = mention(writer), to or "the contact"
        if reminder.state == ReminderState.CANCELLED:
            if reminder.cancel_reason not in NOT_SENT_FOR_COPIES:
                continue
            text = mrkdwn(
                ":warning: ",
                who,
                "'s reply to ",
                address,
                " was not sent: ",
                (reminder.error or "a copy of an invoice could not be attached")[:ERROR_SHOWN],
                ". Reply again with fewer copies, or once the copy can be had.",
            )
        elif reminder.state == ReminderState.SENT:
            at = reminder.sent_at.astimezone(zone).strftime("%H:%M %Z") if reminder.sent_at else ""
            text = mrkdwn(":outbox_tray: ", who, "'s reply was sent to ", address, f" at {at}.")
        else:
            error = (reminder.error or "no reason given")[:ERROR_SHOWN]
            text = mrkdwn(
                ":warning: ",
                who,
                "'s reply to ",
                address,
                " was not delivered: ",
                error,
                ". Check the address (or reach them another way), then reply again.",
            )
        lines.append(ThreadLine(escalation.slack_channel, escalation.slack_thread_ts, text))
    return lines


def tell_threads(
    session: Session,
    slack: object,
    reminder_ids: list[int],
    timezone: str,
    failed_only: bool = False,
) -> int:
    """Say in each thread what became of its replies among these reminders. A line Slack
    refuses is logged and not tried again (the history shows the send or the failure).
    Returns how many lines were posted."""
    if not isinstance(slack, EscalationPort):
        return 0
    told = 0
    for line in outcome_lines(session, reminder_ids, timezone, failed_only):
        try:
            slack.post_in_thread(line.channel, line.thread_ts, line.text)
        except Exception:
            log.exception("the thread %s was not told what became of a reply", line.thread_ts)
            continue
        told += 1
    return told


def thread_of(session: Session, reminder_id: int | None) -> Escalation | None:
    """The escalation a reply from a thread was written in, when `reminder_id` is one."""
    if reminder_id is None:
        return None
    return session.scalars(
        select(Escalation)
        .join(ThreadReply, ThreadReply.escalation_id == Escalation.id)
        .where(ThreadReply.reminder_id == reminder_id)
    ).first()
