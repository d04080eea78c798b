"""One run of the whole loop in simulated time against a behaviour model: one arm on one seed.

A run plays a prepared SQLite database (the opening ledger and the playbook to follow, in a
temporary folder) day by day. With follow-up, each business day is planned (`run_plan`), every
reminder is approved, and the send worker "sends" into a counting sender; without, nothing is
planned or sent. Then simulated customers act: an open invoice is paid with a probability that
depends on its tier, how late it is and whether a reminder about it arrived that day; a customer
who got a reminder may reply or dispute. Every draw is keyed by the seed and what it is about
(this invoice, this day), so every arm on a seed bills the same invoices and faces the same
customers: the only difference between arms is the follow-up (`bot.simulation.bench` runs them).

The figures come from the model's assumed (or fitted) probabilities, never from real customers;
`bot.simulation.report.describe` says so in plain words. The model is in `bot.simulation.model`.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.models import (
    Customer,
    Escalation,
    Invoice,
    Payment,
    PaymentAllocation,
    PlaybookVersion,
    Reminder,
    ReminderInvoice,
)
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from bot.escalations import service as escalations
from bot.learning.versions import activate, ensure_active
from bot.ledger.aging import aging_report
from bot.ledger.sample import sample_rows
from bot.ledger.upsert import apply_batch
from bot.payments.record import record_payment
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.sending import flush
from bot.reminders.stale import StaleRules
from bot.simulation.model import BehaviourModel
from bot.simulation.report import RunFigures
from integrations.base.ledger import CustomerRecord, InvoiceRecord, LedgerBatch
from integrations.base.outbound import Delivery, Outgoing, Sender
from playbooks.loader import Bundle
from playbooks.model import TIER_NAMES

SOURCE = "simulation"
BILLED = "SIM-"  # the numbers of invoices billed during a run
ACTOR = "simulation"
SIMULATION_START = date(2026, 3, 16)  # a Monday; the CLI passes today instead
SAMPLE_DAYS = 150  # the sample ledger's invoices were issued over this many days
DEFAULT_CUSTOMERS = 90
DEFAULT_INVOICES = 320
MORNING = time(8, 0)
EVENING = time(18, 0)
CENTS = Decimal("0.01")
PLUS_30 = timedelta(days=30)


class CountingSender:
    """Stands in for SMTP and Twilio: every message "goes out" and is counted by channel."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def __enter__(self) -> CountingSender:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: Outgoing) -> Delivery:
        self.sent[message.channel] += 1
        return Delivery("sent", provider_id=f"{SOURCE}-{message.reminder_id}")


@dataclass(frozen=True, slots=True)
class _Like:
    """An invoice of the opening ledger, as a model for the ones billed during the run."""

    total: Decimal
    terms: timedelta
    currency: str


@dataclass(frozen=True, slots=True)
class _Account:
    """A customer of the opening ledger and the invoices new ones are modelled on."""

    source: str
    external_id: str
    name: str
    invoices: tuple[_Like, ...]


@dataclass
class _Run:
    """What one run needs from day to day."""

    runtime: Runtime
    clock: FixedClock
    model: BehaviourModel
    seed: int
    opening: list[_Account]
    sender: CountingSender = field(default_factory=CountingSender)
    billed: int = 0
    replies: int = 0
    disputes: int = 0


def sample_ledger(start_day: date, customers: int = DEFAULT_CUSTOMERS) -> list[dict[str, str]]:
    """The bundled sample ledger with `customers` customers, as ledger CSV rows: what `simulate`
    runs on unless it is given another ledger."""
    return sample_rows(
        start_day, customers=customers, invoices=customers * DEFAULT_INVOICES // DEFAULT_CUSTOMERS
    )


def prepare(
    base: Settings, database: Path, ledger: LedgerBatch, start_day: date
) -> tuple[int, int]:
    """The opening ledger and the bundled playbook (as version 1, active) in a fresh database;
    returns how many customers and invoices the ledger holds."""
    if database.exists():
        raise UserError(f"{database}: already exists; the simulation starts from an empty file")
    clock = FixedClock(datetime.combine(start_day, MORNING, ZoneInfo("UTC")))
    with _runtime(base, database, clock) as runtime:
        clock.set(_morning(runtime, start_day))
        with runtime.writing() as session:
            apply_batch(session, ledger, clock.now())
            ensure_active(session, clock.now())
            customers = session.scalar(select(func.count()).select_from(Customer)) or 0
            invoices = session.scalar(select(func.count()).select_from(Invoice)) or 0
    return customers, invoices


def install_playbook(
    base: Settings, database: Path, start_day: date, content: str, label: str
) -> None:
    """Make a playbook (a stored version's content) the active one in a prepared database."""
    clock = FixedClock(datetime.combine(start_day, MORNING, ZoneInfo("UTC")))
    with _runtime(base, database, clock) as runtime, runtime.writing() as session:
        latest = session.scalar(select(func.max(PlaybookVersion.version))) or 0
        version = PlaybookVersion(
            name=Bundle.from_json(content, label).playbook.name,
            version=latest + 1,
            content=content,
            status="proposed",
            proposed_by=ACTOR,
            rationale=label,
            created_at=clock.now(),
        )
        session.add(version)
        session.flush()
        activate(session, version.version, ACTOR, clock.now())


def play(
    base: Settings,
    database: Path,
    start_day: date,
    days: int,
    seed: int,
    model: BehaviourModel,
    follow_up: bool,
) -> RunFigures:
    """One arm on one seed: `days` calendar days on a prepared database (which it changes)."""
    if not 1 <= days <= 730:
        raise UserError(f"simulate between 1 and 730 days, not {days}")
    clock = FixedClock(datetime.combine(start_day, MORNING, ZoneInfo("UTC")))
    with _runtime(base, database, clock) as runtime:
        run = _Run(runtime, clock, model, seed, _opening(runtime))
        business_days = runtime.settings.weekday_numbers()
        rules = PlanRules.from_settings(runtime.settings)
        for offset in range(days):
            day = start_day + timedelta(days=offset)
            if day.weekday() not in business_days:
                continue
            clock.set(_morning(runtime, day))
            _bill(run, day)
            touched: dict[int, str] = {}
            if follow_up:
                touched = _follow_up(run, rules, day)
            _customers_act(run, day, touched)
        return _figures(run, start_day, start_day + timedelta(days=days - 1))


@contextmanager
def _runtime(base: Settings, database: Path, clock: FixedClock) -> Iterator[Runtime]:
    """The simulation's own database, sender and secret, with the sending rules of `base`."""
    settings = base.model_copy(
        update={
            "database_url": f"sqlite:///{database}",
            "business_name": "Simulated Supply Co.",
            "from_email": "ar@simulation.example",
            "secret_key": SecretStr("simulation-only-not-a-secret"),
        }
    )
    runtime = start(settings, clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()  # the last connection checkpoints the WAL into the file


def _morning(runtime: Runtime, day: date) -> datetime:
    return datetime.combine(day, MORNING, ZoneInfo(runtime.settings.timezone))


def _draw(seed: int, *parts: object) -> float:
    """The same number for the same thing on the same day, in both runs."""
    return random.Random(":".join(str(p) for p in (seed, *parts))).random()


def _opening(runtime: Runtime) -> list[_Account]:
    """The customers of the opening ledger with their invoices, read once per run."""
    with runtime.sessions() as session:
        rows = session.execute(
            select(Customer.source, Customer.external_id, Customer.name, Invoice)
            .join(Invoice, Invoice.customer_id == Customer.id)
            .where(Invoice.number.not_like(f"{BILLED}%"))
            .order_by(Customer.source, Customer.external_id, Invoice.number)
        ).all()
    grouped: dict[tuple[str, str, str], list[_Like]] = defaultdict(list)
    for source, external_id, name, invoice in rows:
        like = _Like(invoice.total, invoice.due_date - invoice.issue_date, invoice.currency)
        grouped[(source, external_id, name)].append(like)
    return [_Account(*key, tuple(likes)) for key, likes in grouped.items()]


def _bill(run: _Run, day: date) -> None:
    """New invoices for the customers of the opening ledger (in their own source, so they stay
    the same customers), at the pace each was billed there."""
    if run.model.billing_factor == 0:
        return
    batches: dict[str, LedgerBatch] = {}
    for account in run.opening:
        # the sample's invoices per calendar day, spread over five business days a week
        rate = len(account.invoices) / SAMPLE_DAYS * 7 / 5 * run.model.billing_factor
        if _draw(run.seed, "bill", account.external_id, day) >= rate:
            continue
        batch = batches.setdefault(account.source, LedgerBatch(account.source, f"billing on {day}"))
        batch.customers[account.external_id] = CustomerRecord(account.external_id, account.name)
        batch.invoices.append(_new_invoice(run.seed, account, day))
    if not batches:
        return
    with run.runtime.writing() as session:
        for batch in batches.values():
            apply_batch(session, batch, run.clock.now())
            run.billed += len(batch.invoices)


def _new_invoice(seed: int, account: _Account, day: date) -> InvoiceRecord:
    rng = random.Random(f"{seed}:invoice:{account.external_id}:{day.isoformat()}")
    model = account.invoices[rng.randrange(len(account.invoices))]
    scale = Decimal(rng.randrange(70, 131)) / 100
    total = (model.total * scale).quantize(CENTS, ROUND_HALF_UP)
    return InvoiceRecord(
        customer_external_id=account.external_id,
        number=f"{BILLED}{day:%Y%m%d}-{account.external_id}",
        issue_date=day,
        due_date=day + model.terms,
        currency=model.currency,
        total=total,
        balance=total,
    )


def _follow_up(run: _Run, rules: PlanRules, day: date) -> dict[int, str]:
    """Plan, approve everything, send at each moment a reminder may go out; return the invoices
    a reminder reached today (invoice id -> channel)."""
    runtime, clock = run.runtime, run.clock
    stale_rules = StaleRules.from_settings(runtime.settings)
    with runtime.writing() as session:
        run_plan(session, rules, day, clock.now(), dry_run=False)
        for tier in TIER_NAMES:
            approvals.approve_all(session, day, tier, ACTOR, clock.now(), rules=stale_rules)
    zone = ZoneInfo(runtime.settings.timezone)
    evening = datetime.combine(day, EVENING, zone)
    cutoff = datetime.combine(day + timedelta(days=1), MORNING, zone)
    with runtime.sessions() as session:
        due = session.scalars(
            select(Reminder.send_after).where(
                Reminder.state == "approved", Reminder.send_after < cutoff
            )
        )
        moments = sorted({moment for moment in due if moment is not None})
    began = clock.now()
    senders: dict[str, Sender] = {"email": run.sender, "sms": run.sender}
    for moment in moments:
        clock.set(max(moment, clock.now()))
        flush(runtime, senders)
    clock.set(max(evening, clock.now()))
    with runtime.sessions() as session:
        reached = session.execute(
            select(ReminderInvoice.invoice_id, Reminder.channel)
            .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
            .where(Reminder.state == "sent", Reminder.sent_at >= began)
        ).all()
    return {invoice_id: channel or "email" for invoice_id, channel in reached}


def _customers_act(run: _Run, day: date, touched: dict[int, str]) -> None:
    """Each open invoice may be paid; each customer reached today may reply or dispute."""
    model, now = run.model, run.clock.now()
    with run.runtime.writing() as session:
        open_invoices = session.execute(
            select(Invoice, Customer.tier, Customer.external_id)
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(Invoice.status == "open", Invoice.balance > 0, Invoice.issue_date <= day)
            .order_by(Invoice.id)
        ).all()
        reached: dict[int, str] = {}
        for invoice, tier, external_id in open_invoices:
            channel = touched.get(invoice.id)
            if channel is not None:
                reached[invoice.customer_id] = external_id
            p = model.pay_probability(
                tier, (day - invoice.due_date).days, channel, invoice.disputed
            )
            if _draw(run.seed, "pay", invoice.number, day) < p:
                _pay(session, invoice, day, now)
        for customer_id, external_id in sorted(reached.items()):
            if _draw(run.seed, "reply", external_id, day) < model.reply_after_touch:
                run.replies += 1
            if _draw(run.seed, "dispute", external_id, day) < model.dispute_after_touch:
                escalations.dispute(session, customer_id, "simulated dispute", now, actor=ACTOR)
                run.disputes += 1


def _pay(session: Session, invoice: Invoice, day: date, now: datetime) -> None:
    record_payment(
        session,
        source=SOURCE,
        external_id=f"{invoice.number}:{day.isoformat()}",
        customer_id=invoice.customer_id,
        received_on=day,
        amount=invoice.balance,
        currency=invoice.currency,
        invoice_ids=[invoice.id],
        now=now,
        payer=ACTOR,
    )


def _figures(run: _Run, first_day: date, last_day: date) -> RunFigures:
    with run.runtime.sessions() as session:
        collected = {
            currency: Decimal(amount)
            for currency, amount in session.execute(
                select(Payment.currency, func.sum(Payment.amount))
                .where(Payment.source == SOURCE)
                .group_by(Payment.currency)
                .order_by(Payment.currency)
            )
        }
        payments = (
            session.scalar(
                select(func.count()).select_from(Payment).where(Payment.source == SOURCE)
            )
            or 0
        )
        report = aging_report(session, last_day)
        handed = session.scalar(select(func.count(distinct(Escalation.customer_id)))) or 0
        paid_on = dict(
            session.execute(
                select(PaymentAllocation.invoice_id, func.min(Payment.received_on))
                .join(Payment, Payment.id == PaymentAllocation.payment_id)
                .where(Payment.source == SOURCE)
                .group_by(PaymentAllocation.invoice_id)
            ).all()
        )
        # the invoices whose 30th day after due falls within the run: could they be paid by then?
        reachable = session.execute(
            select(Invoice.id, Invoice.due_date).where(
                Invoice.due_date >= first_day - PLUS_30,
                Invoice.due_date <= last_day - PLUS_30,
                Invoice.status.in_(("open", "paid")),
            )
        ).all()
    paid_in_time = sum(
        1
        for invoice_id, due in reachable
        if invoice_id in paid_on and paid_on[invoice_id] <= due + PLUS_30
    )
    return RunFigures(
        collected=collected,
        dso={code: aging.dso for code, aging in report.currencies.items()},
        open_at_end={code: aging.total for code, aging in report.currencies.items()},
        payments=payments,
        escalations=handed,
        paid_by_plus_30=(
            (Decimal(paid_in_time) / len(reachable)).quantize(Decimal("0.0001"))
            if reachable
            else None
        ),
        invoices_due_plus_30=len(reachable),
        sent=dict(sorted(run.sender.sent.items())),
        replies=run.replies,
        disputes=run.disputes,
        billed=run.billed,
    )
