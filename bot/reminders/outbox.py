"""The outbox: approved reminders reach customers exactly once, inside their send window.

approved → sending (committed before the provider is called) → sent; or back to approved with a
later send_after after a transient error; or failed after a permanent one. A batch of due
reminders is claimed at a time, and the claim re-checks each, in its transaction, for everything
that may have changed since approval: a payment, a dispute, a pause, an opt-out, an escalation
(bot/reminders/stale.py, the check approval makes too, with the same rules), and the send window.
Then the claimed reminders go to `sending` a few at a time (ARBOT_SEND_BATCH), each only if it is
still `approved` (what cancelled it since the claim wins) and unchanged since the claim (another
lane or replica may have claimed, tried and put it back, or a person undone, edited and approved
it again: it is dropped), in one commit before the first of them is handed to its provider; each is checked again at its own turn, right before its send
(bot/reminders/turns.py): a cancel asked for since (bot/reminders/state.py) wins, and so does its
contact's window closing. A reminder found still `sending` after its lease (the worker died
mid-batch) is never re-sent: it becomes `unknown` and, in the same transaction, goes to a person
in its customer's escalation (bot/reminders/in_doubt.py).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import Contact, Customer, Reminder, ReminderAttachment, ThreadReply
from bot.core.settings import Settings
from bot.core.tokens import token
from bot.core.vocabulary import ReminderAction
from bot.escalations.service import open_or_add
from bot.planning.send_window import Window, candidate_zones, next_send_time
from bot.reminders import in_doubt, state
from bot.reminders.stale import StaleRules, stale_reasons
from bot.reminders.state import APPROVED, SENDING, UNKNOWN
from integrations.base.outbound import Outgoing

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
BATCH = 50  # reminders claimed at a time (a lane's worth, in as many lanes as there are)
# A batch still being sent this long after its claim hands nothing more over: what is left goes
# back to `approved`, well before another worker could take it for dead (LEASE).
TURNS_END = LEASE / 2
# The move each claimed reminder starts with, built once (state.transition builds its statement
# anew each call); its result's is in bot/reminders/results.py. It moves the reminder only if it
# is still the row the claim read (its `updated_at` unchanged): one put back after a transient
# error, or undone, edited and approved again since, is left to a later claim.
TO_SENDING = state.prepared_move(
    APPROVED,
    SENDING,
    attempts=Reminder.attempts + 1,
    message_id=bindparam("new_message_id"),
    reply_token=bindparam("new_reply_token"),
    cancel_reason=None,
).where(Reminder.__table__.c.updated_at == bindparam("claimed_version"))


@dataclass(frozen=True)
class SendConfig:
    from_email: str | None
    from_name: str
    secret_key: str
    window: Window
    public_url: str | None = None
    stale: StaleRules = field(default_factory=StaleRules)  # what makes it stale at claim time
    # Send as the account owner: Slack user id -> their address (ARBOT_OWNER_EMAILS).
    owner_emails: dict[str, str] = field(default_factory=dict)


@dataclass
class FlushReport:
    sent: list[int] = field(default_factory=list)
    cancelled: dict[int, str] = field(default_factory=dict)
    rescheduled: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    # marked unknown after a crash though a stop was asked for after the claim: id -> the reason
    stopped_unknown: dict[int, str] = field(default_factory=dict)
    # sent though a stop was asked for after the claim (the provider had it): id -> the reason
    sent_after_stop: dict[int, str] = field(default_factory=dict)
    waiting_for_sender: list[int] = field(default_factory=list)
    # cancelled because its email could not carry the copies of invoices it was to: id -> why
    not_sent: dict[int, str] = field(default_factory=dict)
    outage: str | None = None  # a sender's account or configuration failed: its channel stopped
    # reminders that met the same outage on their try before: it was told then, not again now
    outage_told: list[int] = field(default_factory=list)

    def changed(self) -> list[int]:
        return [*self.sent, *self.cancelled, *self.failed, *self.unknown]


def recover(session: Session, now: datetime) -> dict[int, str | None]:
    """`sending` past its lease means a worker died mid-send: mark `unknown`, never re-send, and
    hand each to a person in the same transaction (its customer's escalation: in_doubt.escalate),
    so a run that fails after this commit still leaves them told. Returns those marked, each with
    the stop asked for after its claim (its `cancel_reason`, kept on the row and in its
    `reminder.unknown` Event as `stop`), or None."""
    state.check((SENDING,), UNKNOWN)
    table: Any = Reminder.__table__
    lapsed = [table.c.state == SENDING.value, table.c.updated_at < now - LEASE]
    # One UPDATE locks rows in the order it meets them, not in the order every writer of several
    # reminders takes them (state.lock): a payment holding one of them while it waits for another
    # this UPDATE met first would deadlock with it. So they are locked in that order first.
    state.lock(session, lapsed)
    marked = session.execute(
        update(table)
        .where(*lapsed)
        .values(
            state=UNKNOWN.value,
            updated_at=now,
            error="the sender stopped while sending; check whether it went out",
        )  # an asked-for stop stays in cancel_reason
        .returning(table.c.id, table.c.customer_id, table.c.channel, table.c.cancel_reason)
    ).all()
    for reminder_id, customer_id, channel, stop in sorted(marked):
        audit.record(
            session,
            now,
            "reminder.unknown",
            customer_id=customer_id,
            reminder_id=reminder_id,
            payload={"stop": stop} if stop else {},
        )
        in_doubt.escalate(
            session,
            now,
            customer_id=customer_id,
            reminder_id=reminder_id,
            channel=channel,
            why="the sender stopped while sending it",
            stop=stop,
        )
    return {reminder_id: stop for reminder_id, _, _, stop in sorted(marked)}


def due_now(now: datetime, channels: set[str]) -> ColumnElement[bool]:
    return and_(
        Reminder.state == APPROVED,
        Reminder.action == ReminderAction.REMIND,
        Reminder.channel.in_(channels),
        or_(Reminder.send_after.is_(None), Reminder.send_after <= now),
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A reminder claimed to be sent, with all its send needs, read once at the claim."""

    reminder_id: int
    customer_id: int
    contact_id: int | None
    zones: tuple[str, ...]  # where its contact may be: the send window holds in each
    outgoing: Outgoing  # its message, dated when it goes to `sending`
    attempts: int  # its send attempts, this one included
    attach: tuple[int, ...] = ()  # the invoices whose copies its email carries
    claimed_at: datetime | None = None  # when it went to `sending` (None: still `approved`)
    version: datetime | None = None  # its `updated_at` as the claim read it


def claim(
    session: Session,
    now: datetime,
    config: SendConfig,
    report: FlushReport,
    channels: set[str],
    limit: int = BATCH,
) -> tuple[list[Claimed], int]:
    """Claim up to `limit` reminders due now (on PostgreSQL, rows another claim holds at this
    moment are skipped), re-checking each: a stale one is cancelled, one outside its contact's sending hours
    waits for them (or goes to a person when there are none). Nothing is moved to `sending` here:
    `start_sending` does that, a few at a time, right before their sends. Returns the claimed
    reminders and how many were looked at."""
    query = (
        select(Reminder).where(due_now(now, channels)).order_by(Reminder.send_after, Reminder.id)
    )
    query = query.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Two claims at the same moment take different rows; the lock ends with the claim's
        # transaction, so later claims may take the same ones again: only the conditional move
        # to `sending` (still `approved`, unchanged since the claim) decides who sends each.
        query = query.with_for_update(skip_locked=True)
    rows = session.scalars(query).all()
    stale = stale_reasons(session, rows, now, config.stale)
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(Customer.id.in_({r.customer_id for r in rows}))
        )
    }
    contact_ids = {r.contact_id for r in rows if r.contact_id is not None}
    contacts = {
        c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))
    }
    answers = {  # a person's replies from a thread: what they answer
        t.reminder_id: t
        for t in session.scalars(
            select(ThreadReply).where(ThreadReply.reminder_id.in_([r.id for r in rows]))
        )
    }
    attach: dict[int, list[int]] = {}  # the invoices whose copies each email carries
    for reminder_id, invoice_id in session.execute(
        select(ReminderAttachment.reminder_id, ReminderAttachment.invoice_id).where(
            ReminderAttachment.reminder_id.in_([r.id for r in rows])
        )
    ):
        attach.setdefault(reminder_id, []).append(invoice_id)
    claimed: list[Claimed] = []
    for reminder in rows:
        reason = stale.get(reminder.id)
        if reason:
            _cancel(session, reminder.id, reason, now)
            report.cancelled[reminder.id] = reason
            continue
        customer = customers[reminder.customer_id]
        contact = contacts[reminder.contact_id] if reminder.contact_id else None
        assert contact is not None  # else it was stale: opted_out
        zones = candidate_zones(contact.timezone or customer.timezone, contact.phone)
        if _waits(session, reminder.id, customer.id, zones, now, config.window, report):
            continue
        claimed.append(
            Claimed(
                reminder.id,
                customer.id,
                contact.id,
                zones,
                _outgoing(reminder, customer, contact, config, answers.get(reminder.id)),
                reminder.attempts + 1,
                tuple(sorted(attach.get(reminder.id, ()))),
                version=reminder.updated_at,
            )
        )
    return claimed, len(rows)


def start_sending(session: Session, claimed: list[Claimed], now: datetime) -> list[Claimed]:
    """Move claimed reminders to `sending`, to be committed before the first of them is handed
    to its provider (no Event: the provider's answer, or `unknown`, brings one), each only if it
    is still `approved` (a payment, reply, pause or dispute since the claim cancelled it) and
    unchanged since the claim (its `updated_at`: not put back after a transient error, undone,
    edited or approved again since, so the message sent is the row moved), in one statement for
    them all. Returns those moved, with their messages dated `now`; the others are dropped."""
    if not claimed:
        return []
    connection = session.connection()
    moves = [sending_values(one, now) for one in claimed]
    started = [
        replace(one, outgoing=outgoing, claimed_at=now)
        for one, (outgoing, _) in zip(claimed, moves, strict=True)
    ]
    if connection.execute(TO_SENDING, [values for _, values in moves]).rowcount == len(claimed):
        return started
    # Some were no longer `approved`: those moved now carry this attempt's Message-ID.
    table: Any = Reminder.__table__
    moved = set(
        connection.scalars(
            select(table.c.id).where(
                table.c.id.in_([one.reminder_id for one in started]),
                table.c.state == SENDING.value,
                table.c.message_id.in_([one.outgoing.message_id for one in started]),
            )
        )
    )
    return [one for one in started if one.reminder_id in moved]


def sending_values(claimed: Claimed, now: datetime) -> tuple[Outgoing, dict[str, Any]]:
    """A claimed reminder's message dated `now`, and the values of its move to `sending`."""
    outgoing = replace(claimed.outgoing, date=now)
    return outgoing, {
        "reminder_id": claimed.reminder_id,
        "claimed_version": claimed.version,
        "moved_at": now,
        "new_message_id": outgoing.message_id,
        "new_reply_token": outgoing.reply_to.split("+", 1)[1].split("@", 1)[0]
        if outgoing.reply_to
        else None,
    }


def window_opens(claimed: Claimed, now: datetime, window: Window) -> datetime | None:
    """None when `now` is inside the claimed reminder's sending hours (no database needed);
    otherwise when they next open (NO_WINDOW when never)."""
    return _next_in_window(claimed.zones, now, window)


def _waits(
    session: Session,
    reminder_id: int,
    customer_id: int,
    zones: tuple[str, ...],
    now: datetime,
    window: Window,
    report: FlushReport,
) -> bool:
    """Whether the reminder must wait: outside its contact's sending hours it is moved to when
    they next open; with none at all it is cancelled and a person decides."""
    later = _next_in_window(zones, now, window)
    if later is None:
        return False
    if later is NO_WINDOW:  # it could wait forever: a person decides instead
        if _cancel(session, reminder_id, "no_send_window", now):
            open_or_add(
                session,
                customer_id,
                "no_send_window",
                now,
                detail="no sending hours in the contact's timezone(s)",
                reminder_id=reminder_id,
            )
            report.cancelled[reminder_id] = "no_send_window"
        return True
    session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.state == APPROVED)
        .values(send_after=later, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    report.rescheduled.append(reminder_id)
    return True


NO_WINDOW = datetime.max.replace(tzinfo=UTC)  # no moment to send can be found at all


def _next_in_window(zones: tuple[str, ...], now: datetime, window: Window) -> datetime | None:
    """None when now is inside the contact's window; otherwise when it next opens (NO_WINDOW
    when the contact's timezones share no sending hours, or none is known)."""
    allowed = next_send_time(now, zones, window)
    if allowed == now:
        return None
    return allowed or NO_WINDOW


def _cancel(session: Session, reminder_id: int, reason: str, now: datetime) -> bool:
    cancelled = state.cancel(
        session, [reminder_id], from_states=(APPROVED,), reason=reason, now=now
    )
    return bool(cancelled)


def _outgoing(
    reminder: Reminder,
    customer: Customer,
    contact: Contact,
    config: SendConfig,
    answer: ThreadReply | None = None,
) -> Outgoing:
    domain = (config.from_email or "@invalid").rsplit("@", 1)[1]
    local = (config.from_email or "ar@").rsplit("@", 1)[0]
    reply = token(config.secret_key, reminder.id, "reply")
    unsubscribe = token(config.secret_key, reminder.id, "unsubscribe")
    bounce = token(config.secret_key, reminder.id, "bounce")
    owner_email = config.owner_emails.get(customer.owner_slack_id or "") if customer else None
    return Outgoing(
        reminder_id=reminder.id,
        channel=reminder.channel or "email",
        to=(contact.email if reminder.channel == "email" else contact.phone) or "",
        to_name=contact.name,
        # From the account owner when one is configured (replies still find the reminder through
        # Reply-To, bounces through the envelope sender); otherwise from ARBOT_FROM_EMAIL.
        from_email=owner_email or config.from_email,
        from_name=config.from_name,
        subject=reminder.subject,
        text=reminder.body_text or "",
        html=reminder.body_html,
        message_id=f"<arbot.{reminder.id}.{secrets.token_hex(8)}@{domain}>",
        reply_to=f"{local}+r.{reply}@{domain}",
        unsubscribe_mailto=f"mailto:{local}+u.{unsubscribe}@{domain}?subject=unsubscribe",
        envelope_from=f"bounce+{bounce}@{domain}",
        # A signed reminder id in the callback URL: a report that arrives before the provider's
        # id is stored still finds its reminder.
        status_callback=(
            f"{config.public_url.rstrip('/')}/webhooks/twilio/status"
            f"?r={token(config.secret_key, reminder.id, 'status')}"
            if config.public_url and reminder.channel == "sms"
            else None
        ),
        unsubscribe_url=f"{config.public_url.rstrip('/')}/unsubscribe/{unsubscribe}"
        if config.public_url
        else None,
        # A person's reply from an escalation's thread goes into the customer's conversation.
        in_reply_to=answer.in_reply_to if answer else None,
        references=answer.references if answer else None,
        written_by_person=answer is not None,
    )


def config_from(settings: Settings) -> SendConfig:
    if settings.secret_key is None:
        raise UserError(
            "set ARBOT_SECRET_KEY (any long random string) to sign reply and unsubscribe tokens"
        )
    if not settings.from_email:
        raise UserError("set ARBOT_FROM_EMAIL, the address reminders are sent from")
    start, end = settings.window()
    return SendConfig(
        from_email=settings.from_email,
        from_name=settings.business_name,
        secret_key=settings.secret_key.get_secret_value(),
        window=Window(start, end, settings.weekday_numbers()),
        public_url=settings.public_url,
        stale=StaleRules.from_settings(settings),
        owner_emails=dict(settings.owner_emails),
    )
