"""The outbox: approved reminders reach customers exactly once, inside their send window.

approved → sending (committed before the provider is called) → sent; or back to approved with a
later send_after after a transient error; or failed after a permanent one. Claiming re-checks, in
the same transaction, everything that may have changed since approval: a payment, a dispute, a
pause, an opt-out, an escalation (bot/reminders/stale.py, the check approval makes too, with the
same rules), and the send window. A reminder found still `sending` after its lease
(the worker died mid-send) is never re-sent: it becomes `unknown` and a person decides.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from bot.core.errors import UserError
from bot.core.models import Contact, Customer, Reminder
from bot.core.settings import Settings
from bot.core.tokens import token
from bot.core.vocabulary import ReminderAction, ReminderState
from bot.escalations.service import open_or_add
from bot.planning.send_window import Window, candidate_zones, next_send_time
from bot.reminders import state
from bot.reminders.stale import StaleRules, why_stale
from bot.reminders.state import APPROVED, FAILED, SENDING, SENT, UNKNOWN, AuditEvent
from integrations.base.outbound import Delivery, Outgoing

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 5
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
BATCH = 50


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
    waiting_for_sender: list[int] = field(default_factory=list)
    outage: str | None = None  # the sender's account or configuration failed: the run stopped

    def changed(self) -> list[int]:
        return [*self.sent, *self.cancelled, *self.failed, *self.unknown]


def recover(session: Session, now: datetime) -> list[int]:
    """`sending` past its lease means a worker died mid-send: mark `unknown`, never re-send."""
    return state.transition(
        session,
        None,
        from_states=(SENDING,),
        to=UNKNOWN,
        now=now,
        events=[("reminder.unknown", {})],
        where=[Reminder.updated_at < now - LEASE],
        error="the sender stopped while sending; check whether it went out",
    )


def due_now(now: datetime, channels: set[str]) -> ColumnElement[bool]:
    return and_(
        Reminder.state == APPROVED,
        Reminder.action == ReminderAction.REMIND,
        Reminder.channel.in_(channels),
        or_(Reminder.send_after.is_(None), Reminder.send_after <= now),
    )


def claim(
    session: Session,
    now: datetime,
    config: SendConfig,
    report: FlushReport,
    channels: set[str],
    limit: int = BATCH,
) -> tuple[list[Outgoing], int]:
    """Claim what is due now, re-checking each reminder; commit `sending` before any send.
    Returns the claimed messages and how many reminders were looked at."""
    query = (
        select(Reminder).where(due_now(now, channels)).order_by(Reminder.send_after, Reminder.id)
    )
    query = query.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # replicas share the queue
    claimed: list[Outgoing] = []
    rows = session.scalars(query).all()
    for reminder in rows:
        contact = session.get(Contact, reminder.contact_id) if reminder.contact_id else None
        customer = session.get(Customer, reminder.customer_id)
        assert customer is not None
        reason = why_stale(session, reminder, now, config.stale)
        if reason:
            _cancel(session, reminder, reason, now)
            report.cancelled[reminder.id] = reason
            continue
        assert contact is not None
        later = _next_in_window(reminder, customer, contact, now, config.window)
        if later is NO_WINDOW:  # it could wait forever: a person decides instead
            _cancel(session, reminder, "no_send_window", now)
            open_or_add(
                session,
                customer.id,
                "no_send_window",
                now,
                detail="no sending hours in the contact's timezone(s)",
                reminder_id=reminder.id,
            )
            report.cancelled[reminder.id] = "no_send_window"
            continue
        if later is not None:
            reminder.send_after = later
            reminder.updated_at = now
            report.rescheduled.append(reminder.id)
            continue
        outgoing = replace(_outgoing(reminder, customer, contact, config), date=now)
        if state.transition(
            session,
            [reminder.id],
            from_states=(APPROVED,),
            to=SENDING,
            now=now,
            events=[],  # its Event is the provider's answer (record), or `unknown` (recover)
            attempts=Reminder.attempts + 1,
            message_id=outgoing.message_id,
            reply_token=outgoing.reply_to.split("+", 1)[1].split("@", 1)[0]
            if outgoing.reply_to
            else None,
        ):
            claimed.append(outgoing)
    return claimed, len(rows)


NO_WINDOW = datetime.max.replace(tzinfo=UTC)  # no moment to send can be found at all


def _next_in_window(
    reminder: Reminder, customer: Customer, contact: Contact, now: datetime, window: Window
) -> datetime | None:
    """None when now is inside the contact's window; otherwise when it next opens (NO_WINDOW
    when the contact's timezones share no sending hours, or none is known)."""
    zones = candidate_zones(contact.timezone or customer.timezone, contact.phone)
    allowed = next_send_time(now, zones, window)
    if allowed == now:
        return None
    return allowed or NO_WINDOW


def _cancel(session: Session, reminder: Reminder, reason: str, now: datetime) -> None:
    state.cancel(session, [reminder.id], from_states=(APPROVED,), reason=reason, now=now)


def _outgoing(
    reminder: Reminder, customer: Customer, contact: Contact, config: SendConfig
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
    )


def record(
    session: Session, outgoing: Outgoing, delivery: Delivery, now: datetime, report: FlushReport
) -> None:
    """Store what the provider said. Each change is conditional on the reminder still being
    `sending`; if it is not (another worker marked it unknown meanwhile), nothing else is
    written: no event, no escalation, no contact change."""
    reminder = session.get(Reminder, outgoing.reminder_id)
    assert reminder is not None

    def move(to: ReminderState, events: list[AuditEvent], **values: Any) -> bool:
        if state.transition(
            session, [reminder.id], from_states=(SENDING,), to=to, now=now, events=events, **values
        ):
            return True
        log.warning("reminder %s was no longer sending when its result came back", reminder.id)
        return False

    status = delivery.status
    if status == "transient" and reminder.attempts >= MAX_ATTEMPTS:
        status = "permanent"
    if status == "sent":
        sent = ("reminder.sent", {"channel": outgoing.channel, "message_id": outgoing.message_id})
        if move(SENT, [sent], sent_at=now, provider_message_id=delivery.provider_id, error=None):
            report.sent.append(reminder.id)
    elif status == "transient":
        wait = BACKOFF[min(reminder.attempts - 1, len(BACKOFF) - 1)]
        retrying = ("reminder.retrying", {"error": delivery.error, "in": str(wait)})
        if move(APPROVED, [retrying], send_after=now + wait, error=delivery.error):
            report.retrying.append(reminder.id)
    elif status == "outage":
        # Our account or configuration, not this customer: put it back untouched (no Event).
        if move(APPROVED, [], attempts=reminder.attempts - 1, error=delivery.error):
            report.outage = delivery.error
    elif status == "unknown":
        if move(UNKNOWN, [("reminder.unknown", {"error": delivery.error})], error=delivery.error):
            report.unknown.append(reminder.id)
    elif move(FAILED, [("reminder.failed", {"error": delivery.error})], error=delivery.error):
        if (delivery.address_unusable or delivery.opted_out) and reminder.contact_id:
            kind = "opted_out" if delivery.opted_out else "unusable"
            column = f"{outgoing.channel}_{kind}_at"  # email_unusable_at, sms_opted_out_at, ...
            session.execute(
                update(Contact).where(Contact.id == reminder.contact_id).values({column: now})
            )
        open_or_add(
            session,
            reminder.customer_id,
            "send_failed",
            now,
            detail=delivery.error,
            reminder_id=reminder.id,
        )
        report.failed.append(reminder.id)


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
