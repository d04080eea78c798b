"""What following up might be worth: the whole loop run in simulated time against a behaviour model.

Two runs over the same ledger, the same model and the same seed, each on a throwaway SQLite
database in a temporary folder. In the follow-up run, each business day is planned (`run_plan`),
every reminder is approved, and the send worker "sends" into a counting sender; in the other run
nothing is planned or sent. Then simulated customers act: an open invoice is paid with a
probability that depends on its tier, how late it is and whether a reminder about it arrived that
day; a customer who got a reminder may reply or dispute. Both runs draw the same random number for
the same invoice on the same day, so the only difference between them is the follow-up.

The figures come from the model's assumed probabilities, never from real customers; `describe`
says so in plain words.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import ConfigDict, Field, SecretStr, TypeAdapter, ValidationError
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from bot import approvals, escalations
from bot.aging import DSO_PERIOD_DAYS, aging_report
from bot.clock import FixedClock
from bot.errors import UserError
from bot.ledger import apply_batch
from bot.models import Customer, Escalation, Invoice, Payment, Reminder, ReminderInvoice
from bot.payments import record_payment
from bot.plan_store import run_plan
from bot.planner import PlanRules
from bot.playbook_versions import activate, propose
from bot.runtime import Runtime, start
from bot.sample_ledger import sample_rows, write_csv
from bot.sending import flush
from bot.settings import Settings, load_settings
from integrations.base import (
    CustomerRecord,
    Delivery,
    InvoiceRecord,
    LedgerBatch,
    Outgoing,
    Sender,
)
from integrations.csv_ledger import read_ledger_csv
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
DISCLAIMER = (
    "These figures come from a behaviour model with assumed probabilities, not from real "
    "customers: they show what the model implies, not what your customers will do."
)

Tier = Literal["strategic", "standard", "transactional"]
Probability = Annotated[float, Field(ge=0, le=1)]
Factor = Annotated[float, Field(ge=0, le=10)]


@dataclass(frozen=True)
class BehaviourModel:
    """How simulated customers behave. Probabilities are per invoice and business day unless the
    name says otherwise."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    # An invoice that is due is paid today with nothing said to the customer.
    pay_daily: dict[Tier, Probability] = field(
        default_factory=lambda: {"strategic": 0.025, "standard": 0.02, "transactional": 0.03}
    )
    # Invoices not yet due are paid at this share of that rate (a few customers pay early).
    not_yet_due_factor: Factor = 0.5
    # The unprompted rate halves every this many days past due (old debts pay less).
    halving_days_overdue: Annotated[int, Field(ge=1, le=3650)] = 60
    # Added to the day's probability when a reminder about the invoice arrived that day.
    pay_on_touch_day: dict[Tier, Probability] = field(
        default_factory=lambda: {"strategic": 0.08, "standard": 0.10, "transactional": 0.12}
    )
    # A text message's lift relative to an email's (texts are read sooner).
    sms_touch_factor: Factor = 1.2
    # Per customer who got a reminder that day: they write back / they dispute.
    reply_after_touch: Probability = 0.05
    dispute_after_touch: Probability = 0.01
    # A disputed invoice is paid at this share of the unprompted rate (until a person resolves it).
    disputed_pay_factor: Factor = 0.5
    # New invoices keep coming, at this multiple of the sample ledger's billing pace (0 = none).
    billing_factor: Factor = 1.0

    def pay_probability(
        self, tier: str, days_overdue: int, touched_by: str | None, disputed: bool
    ) -> float:
        """p(tier, days overdue, reminded today?) for one invoice on one business day."""
        base = float(self.pay_daily.get(tier, 0.0))  # type: ignore[call-overload]
        if days_overdue < 0:
            base *= self.not_yet_due_factor
        else:
            base *= 0.5 ** (days_overdue / self.halving_days_overdue)
        if disputed:
            base *= self.disputed_pay_factor
        lift = 0.0
        if touched_by is not None and not disputed:
            lift = float(self.pay_on_touch_day.get(tier, 0.0))  # type: ignore[call-overload]
            lift *= self.sms_touch_factor if touched_by == "sms" else 1.0
        return min(1.0, base + lift)


_MODEL = TypeAdapter(BehaviourModel)
_TIER_FIELDS = ("pay_daily", "pay_on_touch_day")


def load_model(path: Path) -> BehaviourModel:
    """Read a behaviour model from YAML; names left out keep their defaults. An error names the
    file and the field to fix."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected names and values, e.g. `reply_after_touch: 0.05`")
    defaults = BehaviourModel()
    for name in _TIER_FIELDS:
        if isinstance(data.get(name), dict):
            data[name] = {**getattr(defaults, name), **data[name]}
    try:
        return _MODEL.validate_python(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        known = ", ".join(f.name for f in fields(BehaviourModel))
        raise UserError(f"{path}: " + "; ".join(problems) + f" (known names: {known})") from None


@dataclass(frozen=True)
class RunFigures:
    """One run's outcome, per currency."""

    collected: dict[str, Decimal]  # paid by simulated customers during the run
    dso: dict[str, Decimal | None]  # days sales outstanding on the last day (as `arbot aging`)
    open_at_end: dict[str, Decimal]
    payments: int
    escalations: int  # accounts handed to a person (the simulation does not act for them)


@dataclass(frozen=True)
class SimulationResult:
    start: date
    end: date
    days: int
    seed: int
    customers: int
    invoices_at_start: int
    invoices_billed: int
    model: BehaviourModel
    follow_up: RunFigures
    no_follow_up: RunFigures
    sent: dict[str, int]  # channel -> reminders sent in the follow-up run
    replies: int
    disputes: int

    def collected_difference(self) -> dict[str, Decimal]:
        codes = sorted(set(self.follow_up.collected) | set(self.no_follow_up.collected))
        return {
            c: self.follow_up.collected.get(c, Decimal(0))
            - self.no_follow_up.collected.get(c, Decimal(0))
            for c in codes
        }

    def dso_difference(self) -> dict[str, Decimal | None]:
        result: dict[str, Decimal | None] = {}
        for code in sorted(set(self.follow_up.dso) | set(self.no_follow_up.dso)):
            with_, without = self.follow_up.dso.get(code), self.no_follow_up.dso.get(code)
            result[code] = None if with_ is None or without is None else with_ - without
        return result


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


@dataclass
class _Run:
    """What one run needs from day to day."""

    runtime: Runtime
    clock: FixedClock
    model: BehaviourModel
    seed: int
    sender: CountingSender = field(default_factory=CountingSender)
    billed: int = 0
    replies: int = 0
    disputes: int = 0


def simulate(
    days: int,
    seed: int,
    model: BehaviourModel,
    ledger_rows: list[dict[str, str]] | None = None,
    *,
    start_day: date = SIMULATION_START,
    customers: int = DEFAULT_CUSTOMERS,
    playbook: Path | None = None,
    settings: Settings | None = None,
) -> SimulationResult:
    """Run `days` calendar days from `start_day` with follow-up and without. `ledger_rows` are
    ledger CSV rows (default: the bundled sample ledger with `customers` customers); `playbook`
    simulates that playbook file instead of the bundled one. The sending rules (timezone, window,
    send days, frequency cap) are those of `settings` (default: the environment's), as for
    `arbot plan`; the database, sender and secrets are the simulation's own."""
    if not 1 <= days <= 730:
        raise UserError(f"simulate between 1 and 730 days, not {days}")
    rows = ledger_rows or sample_rows(
        start_day, customers=customers, invoices=customers * DEFAULT_INVOICES // DEFAULT_CUSTOMERS
    )
    with tempfile.TemporaryDirectory(prefix="arbot-simulation-") as folder:
        ledger = Path(folder) / "ledger.db"
        base = settings or load_settings(env_file=None)
        counts = _prepare(base, ledger, Path(folder) / "ledger.csv", rows, start_day, playbook)
        copy = Path(folder) / "no-follow-up.db"
        shutil.copy(ledger, copy)
        with_run = _play(base, ledger, start_day, days, seed, model, follow_up=True)
        without_run = _play(base, copy, start_day, days, seed, model, follow_up=False)
    follow, figures_with = with_run
    _, figures_without = without_run
    return SimulationResult(
        start=start_day,
        end=start_day + timedelta(days=days - 1),
        days=days,
        seed=seed,
        customers=counts[0],
        invoices_at_start=counts[1],
        invoices_billed=follow.billed,
        model=model,
        follow_up=figures_with,
        no_follow_up=figures_without,
        sent=dict(sorted(follow.sender.sent.items())),
        replies=follow.replies,
        disputes=follow.disputes,
    )


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


def _prepare(
    base: Settings,
    database: Path,
    csv_path: Path,
    rows: list[dict[str, str]],
    start_day: date,
    playbook: Path | None,
) -> tuple[int, int]:
    """The opening ledger, and the playbook to simulate, in a fresh database; returns how many
    customers and invoices the ledger holds."""
    clock = FixedClock(datetime.combine(start_day, MORNING, ZoneInfo("UTC")))
    with _runtime(base, database, clock) as runtime:
        clock.set(_morning(runtime, start_day))
        batch = read_ledger_csv(write_csv(csv_path, rows), runtime.settings.phone_region)
        with runtime.writing() as session:
            apply_batch(session, batch, clock.now())
            if playbook is not None:
                version = propose(session, playbook, ACTOR, "simulated playbook", clock.now())
                activate(session, version.version, ACTOR, clock.now())
            customers = session.scalar(select(func.count()).select_from(Customer)) or 0
            invoices = session.scalar(select(func.count()).select_from(Invoice)) or 0
    return customers, invoices


def _play(
    base: Settings,
    database: Path,
    start_day: date,
    days: int,
    seed: int,
    model: BehaviourModel,
    follow_up: bool,
) -> tuple[_Run, RunFigures]:
    clock = FixedClock(datetime.combine(start_day, MORNING, ZoneInfo("UTC")))
    with _runtime(base, database, clock) as runtime:
        run = _Run(runtime, clock, model, seed)
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
        return run, _figures(runtime, start_day + timedelta(days=days - 1))


def _draw(seed: int, *parts: object) -> float:
    """The same number for the same thing on the same day, in both runs."""
    return random.Random(":".join(str(p) for p in (seed, *parts))).random()


def _bill(run: _Run, day: date) -> None:
    """New invoices for the customers of the opening ledger (in their own source, so they stay
    the same customers), at the pace each was billed there."""
    if run.model.billing_factor == 0:
        return
    with run.runtime.writing() as session:
        opening = session.execute(
            select(Customer.source, Customer.external_id, Customer.name, Invoice)
            .join(Invoice, Invoice.customer_id == Customer.id)
            .where(Invoice.number.not_like(f"{BILLED}%"))
            .order_by(Customer.source, Customer.external_id, Invoice.number)
        ).all()
        by_customer: dict[tuple[str, str], list[Invoice]] = defaultdict(list)
        names: dict[str, str] = {}
        for source, external_id, name, invoice in opening:
            by_customer[(source, external_id)].append(invoice)
            names[external_id] = name
        batches: dict[str, LedgerBatch] = {}
        for (source, external_id), invoices in by_customer.items():
            # the sample's invoices per calendar day, spread over five business days a week
            rate = len(invoices) / SAMPLE_DAYS * 7 / 5 * run.model.billing_factor
            if _draw(run.seed, "bill", external_id, day) >= rate:
                continue
            batch = batches.setdefault(source, LedgerBatch(source, f"billing on {day}"))
            batch.customers[external_id] = CustomerRecord(external_id, names[external_id])
            batch.invoices.append(_new_invoice(run.seed, external_id, invoices, day))
        for batch in batches.values():
            apply_batch(session, batch, run.clock.now())
            run.billed += len(batch.invoices)


def _new_invoice(seed: int, external_id: str, like: list[Invoice], day: date) -> InvoiceRecord:
    rng = random.Random(f"{seed}:invoice:{external_id}:{day.isoformat()}")
    model = like[rng.randrange(len(like))]
    scale = Decimal(rng.randrange(70, 131)) / 100
    total = (model.total * scale).quantize(CENTS, ROUND_HALF_UP)
    return InvoiceRecord(
        customer_external_id=external_id,
        number=f"{BILLED}{day:%Y%m%d}-{external_id}",
        issue_date=day,
        due_date=day + (model.due_date - model.issue_date),
        currency=model.currency,
        total=total,
        balance=total,
    )


def _follow_up(run: _Run, rules: PlanRules, day: date) -> dict[int, str]:
    """Plan, approve everything, send at each moment a reminder may go out; return the invoices
    a reminder reached today (invoice id -> channel)."""
    runtime, clock = run.runtime, run.clock
    with runtime.writing() as session:
        run_plan(session, rules, day, clock.now(), dry_run=False)
        for tier in TIER_NAMES:
            approvals.approve_all(session, day, tier, ACTOR, clock.now())
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


def _figures(runtime: Runtime, last_day: date) -> RunFigures:
    with runtime.sessions() as session:
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
    return RunFigures(
        collected=collected,
        dso={code: aging.dso for code, aging in report.currencies.items()},
        open_at_end={code: aging.total for code, aging in report.currencies.items()},
        payments=payments,
        escalations=handed,
    )


def describe(result: SimulationResult) -> str:
    """The result as plain text, the disclaimer first."""
    lines = [
        f"Simulated {result.days} days ({result.start.isoformat()} to {result.end.isoformat()}), "
        f"seed {result.seed}: {result.customers} customers, {result.invoices_at_start} invoices "
        f"at the start, {result.invoices_billed} billed during the run.",
        DISCLAIMER,
        "",
        f"{'':28}{'with follow-up':>18}{'no follow-up':>18}{'difference':>18}",
    ]
    for code, difference in result.collected_difference().items():
        lines.append(
            f"{'Cash collected (' + code + ')':28}"
            f"{_money(result.follow_up.collected.get(code)):>18}"
            f"{_money(result.no_follow_up.collected.get(code)):>18}"
            f"{_money(difference, signed=True):>18}"
        )
    for code, days_fewer in result.dso_difference().items():
        lines.append(
            f"{'DSO on the last day (' + code + ')':28}"
            f"{_days(result.follow_up.dso.get(code)):>18}"
            f"{_days(result.no_follow_up.dso.get(code)):>18}"
            f"{_days(days_fewer, signed=True):>18}"
        )
    sent = ", ".join(f"{count} by {channel}" for channel, count in result.sent.items()) or "none"
    lines += [
        f"(DSO as `arbot aging` counts it: open balance / the last {DSO_PERIOD_DAYS} days' "
        f"invoicing x {DSO_PERIOD_DAYS}.)",
        "",
        f"Reminders sent in the follow-up run: {sent}. Customers wrote back {result.replies} "
        f"times (a person would answer; the model changes nothing for a reply) and disputed "
        f"{result.disputes} times. {result.follow_up.escalations} accounts went to a person, "
        "who does nothing in the simulation.",
    ]
    return "\n".join(lines)


def _money(amount: Decimal | None, signed: bool = False) -> str:
    if amount is None:
        return "-"
    return f"{amount:+,.2f}" if signed else f"{amount:,.2f}"


def _days(value: Decimal | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if signed else f"{value:.1f}"
