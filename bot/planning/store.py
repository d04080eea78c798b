"""Running the day's plan: load, compute, and (unless it is a dry run) store it in one transaction.

A reminder is stored as `planned` (or `approved` when every step it carries is auto-approve), with
its rendered message, the invoices and steps it covers, and the playbook version that produced it.
A step is recorded once per invoice and due date under a unique constraint, and a reminder's
idempotency key is its customer and day: running the plan twice stores nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from json.encoder import encode_basestring_ascii as _quoted  # json.dumps's quoting of a text
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import insert_rows, new_ids
from bot.core.collector import bulk_work
from bot.core.locks import PLAN_LOCK, schema_lock
from bot.core.models import Event, Reminder, ReminderAttachment, ReminderInvoice
from bot.core.vocabulary import AUTO_APPROVER, TRUSTED_APPROVER
from bot.escalations import service
from bot.learning.trust import Place, trusted_steps
from bot.learning.trust_rules import review_trust
from bot.learning.versions import active_version, bundle_of, ensure_active, load_checked
from bot.payments.links import PreparedLinks, PreparingLinks, payment_link
from bot.planning import control
from bot.planning import facts as plan_data
from bot.planning.cash_effect import CashEffectOrder
from bot.planning.facts import CustomerFacts, InvoiceFacts
from bot.planning.planner import DayPlanner, Plan, PlanItem, PlanRules, compute_plan
from integrations.base.payments import PaymentLinks
from playbooks.render import Renderer

WRITE_EVERY = 2000  # reminders stored at a time


@dataclass
class PlanRun:
    plan: Plan
    playbook_version: int
    reminder_ids: dict[int, int]  # customer id -> stored reminder id (empty on a dry run)
    attach_by_default: bool = False  # ARBOT_ATTACH_INVOICE_PDF, for steps that do not say


def run_plan(
    session: Session,
    rules: PlanRules,
    day: date,
    now: datetime,
    dry_run: bool,
    links: PaymentLinks | None = None,
) -> PlanRun:
    """Plan the day. Payment links are made only for a stored plan (a dry run makes none).
    Customers are read and planned one at a time, and a stored plan is written every
    WRITE_EVERY reminders, so that not every row to write is held at once."""
    with bulk_work():  # few full passes of the garbage collector (bot/core/collector.py)
        return _run_plan(session, rules, day, now, dry_run, links)


def _run_plan(
    session: Session,
    rules: PlanRules,
    day: date,
    now: datetime,
    dry_run: bool,
    links: PaymentLinks | None,
) -> PlanRun:
    schema_lock(session, PLAN_LOCK)  # one plan at a time (on PostgreSQL; SQLite serialises)
    if not dry_run:  # trust a step lost is taken back before the plan (bot/learning/trust.py)
        review_trust(session, now)
    version = ensure_active(session, now)
    bundle = bundle_of(version)
    history = plan_data.load_history(session)
    history.control = control_group(session, rules, now)

    def link_for(customer: CustomerFacts, invoices: list[InvoiceFacts]) -> str | None:
        return payment_link(session, None if dry_run else links, customer, invoices, now)

    planner = DayPlanner(
        history, bundle.playbook, rules, day, now, Renderer(bundle.templates), link_for
    )
    order = CashEffectOrder(session, day, rules.business_timezone)
    for customer in plan_data.stream_customers(session):
        order.see(customer)
        planner.add(customer)
    writer = (
        None
        if dry_run
        else PlanWriter(
            session,
            day,
            version.id,
            now,
            rules.attach_invoice_pdf,
            trusted=set(trusted_steps(session)),
            undo=rules.undo,
        )
    )
    if writer is not None:
        # Stored in the order the cards are posted within a tier (bot/planning/cash_effect.py),
        # WRITE_EVERY at a time; the payment model is learned once for the whole plan.
        ordered = order.apply(planner.plan.items)
        for end in range(WRITE_EVERY, len(ordered) + WRITE_EVERY, WRITE_EVERY):
            writer.write(ordered[:end])
    ids = writer.ids if writer is not None else {}
    return PlanRun(
        plan=planner.plan,
        playbook_version=version.version,
        reminder_ids=ids,
        attach_by_default=rules.attach_invoice_pdf,
    )


def prepare_links(
    session: Session, rules: PlanRules, day: date, now: datetime, links: PaymentLinks
) -> PreparedLinks:
    """Stage one of a stored plan with processor links: work the plan out on a read-only session
    and make at the processor the links it will carry, so that no network call happens while the
    plan's write transaction is open. Nothing is written; `run_plan` then stores the plan with
    the links made here (`PreparedLinks`), and makes none itself."""
    version = active_version(session)
    bundle = bundle_of(version) if version is not None else load_checked(None)
    customers = plan_data.load_customers(session)
    history = plan_data.load_history(session)
    history.control = control.control_members(
        session, rules.control_share, rules.pilot.scope_covers
    )
    preparing = PreparingLinks(links)

    def link_for(customer: CustomerFacts, invoices: list[InvoiceFacts]) -> str | None:
        return payment_link(session, preparing, customer, invoices, now, store=False)

    compute_plan(
        customers, history, bundle.playbook, rules, day, now, Renderer(bundle.templates), link_for
    )
    session.rollback()
    return PreparedLinks(preparing.made, preparing.refused)


def control_group(session: Session, rules: PlanRules, now: datetime) -> dict[int, datetime]:
    """Give the customers in the pilot's scope met for the first time their holdout group, then
    return the control group (customer id -> since when)."""
    control.assign_new(session, rules.control_share, now, rules.pilot.scope_covers)
    return control.control_members(session)


def idempotency_key(customer_id: int, day: date) -> str:
    return f"plan:{customer_id}:{day.isoformat()}"


REMINDER_COLUMNS = (
    "id",
    "customer_id",
    "contact_id",
    "channel",
    "plan_date",
    "step_key",
    "action",
    "tone",
    "playbook_version_id",
    "state",
    "cancel_reason",
    "approved_by",
    "approved_at",
    "idempotency_key",
    "subject",
    "body_text",
    "body_html",
    "send_after",
    "attempts",
    "language",
    "created_at",
    "updated_at",
)
STATE = REMINDER_COLUMNS.index("state")
LINK_COLUMNS = ("reminder_id", "invoice_id", "step_key", "due_date")
ATTACHMENT_COLUMNS = ("reminder_id", "invoice_id")
# An event's payload is written as its JSON text, as json.dumps writes it (a plan writes one or
# two events for each reminder, and their payloads have two shapes).
# An escalation the plan opens, in the order of its values (bot/escalations/service.py).
ESCALATION_COLUMNS = (
    "customer_id",
    "reminder_id",
    "reason",
    "detail",
    "state",
    "owner_slack_id",
    "opened_at",
)
EVENT_COLUMNS = ("at", "actor", "kind", "customer_id", "invoice_id", "reminder_id", "payload")


class PlanWriter:
    """Writes a stored plan's reminders, the invoices and steps each covers, its escalations and
    their audit events, a part at a time, with set-based statements (COPY on PostgreSQL): each
    reminder's id is taken first, so nothing is read back."""

    def __init__(
        self,
        session: Session,
        day: date,
        version_id: int,
        now: datetime,
        attach_by_default: bool = False,
        trusted: set[Place] | None = None,
        undo: timedelta = timedelta(0),
    ) -> None:
        self.session, self.day, self.version_id, self.now = session, day, version_id, now
        self.trusted = trusted or set()  # steps that earned trust: their reminders can be undone
        self.undo = undo
        self.attach_by_default = attach_by_default  # ARBOT_ATTACH_INVOICE_PDF
        self.written = 0  # how many of the plan's items are stored
        self.ids: dict[int, int] = {}  # customer id -> stored reminder id

    def write(self, items: list[PlanItem]) -> None:
        """Store `items` from the first not yet stored."""
        new = items[self.written :]
        if not new:
            return
        session, now = self.session, self.now
        reminder_ids = new_ids(session, core_table(Reminder), len(new))
        reminders: list[tuple[Any, ...]] = []
        links: list[tuple[Any, ...]] = []
        copies: list[tuple[Any, ...]] = []  # the invoices whose copies each email carries
        events: list[tuple[Any, ...]] = []
        escalations: list[tuple[Any, ...]] = []
        add_link, add_event = links.append, events.append
        for item, reminder_id in zip(new, reminder_ids, strict=True):
            customer_id = item.customer.id
            self.ids[customer_id] = reminder_id
            trusted = bool(self.trusted) and any(
                (item.ladder, d.step.key) in self.trusted for d in item.due
            )
            row = _reminder_row(
                reminder_id, item, self.day, self.version_id, now, trusted, self.undo
            )
            reminders.append(row)
            numbers = []
            for d in item.due:
                invoice = d.invoice
                add_link((reminder_id, invoice.id, d.step.key, invoice.due_date))
                numbers.append(invoice.number)
            if item.carries_copies(self.attach_by_default):
                copies.extend((reminder_id, d.invoice.id) for d in item.due)
            planned = (
                f'{{"step": {_quoted(item.step.key)}, "action": {_quoted(item.action)}, '
                f'"channel": {_json_text(item.channel)}, '
                f'"invoices": [{", ".join(map(_quoted, numbers))}], '
                f'"state": {_quoted(row[STATE])}}}'
            )
            add_event(
                (now, audit.SYSTEM, "reminder.planned", customer_id, None, reminder_id, planned)
            )
            if item.action == "escalate":
                escalations.append(
                    (
                        customer_id,
                        reminder_id,
                        item.reason or "playbook",
                        ", ".join(numbers),
                        "open",
                        item.escalate_to,
                        now,
                    )
                )
                opened = (
                    f'{{"reason": {_json_text(item.reason)}, '
                    f'"owner": {_json_text(item.escalate_to)}}}'
                )
                add_event(
                    (now, audit.SYSTEM, "escalation.opened", customer_id, None, reminder_id, opened)
                )
        insert_rows(session, core_table(Reminder), REMINDER_COLUMNS, reminders)
        insert_rows(session, core_table(ReminderInvoice), LINK_COLUMNS, links)
        insert_rows(session, core_table(ReminderAttachment), ATTACHMENT_COLUMNS, copies)
        joined = service.open_many(session, ESCALATION_COLUMNS, escalations, now)
        if joined:  # a reply opened theirs since the plan read them: its reason was added to it
            events = [
                one for one in events if not (one[2] == "escalation.opened" and one[3] in joined)
            ]
        insert_rows(session, core_table(Event), EVENT_COLUMNS, events, as_is=("payload",))
        self.written = len(items)


def _json_text(value: str | None) -> str:
    """A text or None as JSON, written as json.dumps writes it."""
    return "null" if value is None else _quoted(value)


def core_table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _reminder_row(
    reminder_id: int,
    item: PlanItem,
    day: date,
    version_id: int,
    now: datetime,
    trusted: bool = False,
    undo: timedelta = timedelta(0),
) -> tuple[Any, ...]:
    """The reminder's values, in the order of REMINDER_COLUMNS. One of a step that earned trust
    is approved by TRUSTED_APPROVER and goes out no sooner than the undo window allows."""
    auto = item.action == "remind" and item.auto_approve
    approver = TRUSTED_APPROVER if trusted else AUTO_APPROVER
    send_after = item.send_after
    if auto and trusted and (send_after is None or send_after < now + undo):
        send_after = now + undo
    message = item.message
    email = item.channel == "email"
    escalate = item.action == "escalate"
    return (
        reminder_id,
        item.customer.id,
        item.contact.id if item.contact else None,
        item.channel,
        day,
        item.step.key,
        item.action,
        item.step.tone,
        version_id,
        # An escalation is never sent: its step is recorded as done and the Escalation row (open)
        # holds the account for a person.
        "cancelled" if escalate else ("approved" if auto else "planned"),  # state
        "escalated" if escalate else None,  # cancel_reason
        approver if auto else None,  # approved_by
        now if auto else None,  # approved_at
        idempotency_key(item.customer.id, day),
        message.subject if message and email else None,
        (message.text if email else message.sms) if message else None,  # body_text
        message.html if message and email else None,  # body_html
        send_after,
        0,  # attempts
        item.language,
        now,  # created_at
        now,  # updated_at
    )
