"""Payment plans: instalments agreed with a customer, recorded from an escalation's thread.

A plan covers one open invoice or all of the account's open invoices in one currency; its
instalments (dates in the future, increasing, amounts in the invoices' currency) sum to their
balance. While it runs the invoices' ladder waits (their `payment_plan` flag, a hold the planner
and the send check know), and each instalment gets the playbook's `instalment` reminder.

Payments are not tied to instalments one by one: whatever has come off the invoices' balance
since the plan was agreed counts against the instalments in date order, whichever way it arrived
(sync, Stripe, a bank file). An instalment not covered `grace_days` after its date is missed: the
plan ends, and the sweep reopens the thread for the owner. An invoice of the plan voided in the
ledger (or written off) went without a payment: the plan ends at the next check, none of it
counted as paid, and a person has the account again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import Customer, Invoice, PaymentPlan, PlanInstalment, Reminder
from bot.core.money import decimal_str, format_money
from bot.core.vocabulary import WAITING, InvoiceStatus
from bot.escalations import service
from bot.escalations.plan_checks import Entry, check_entries
from bot.ledger.accounts import cancel_waiting
from bot.reminders import state

MAX_INSTALMENTS = 6  # rows of the form
ACCOUNT = "account"  # the plan covers every open invoice, not one
STEP_PREFIX = "instalment-"  # an instalment reminder's step key: instalment-<plan>-<seq>


def plan_invoices(session: Session, customer_id: int, scope: str) -> list[Invoice]:
    """The open invoices a plan would cover: one (`scope` is its number), or all (ACCOUNT)."""
    invoices = [i for i in service.open_invoices(session, customer_id) if not i.disputed]
    if scope != ACCOUNT:
        invoices = [i for i in invoices if i.number == scope]
        if not invoices:
            raise UserError(f"invoice {scope} is not open (or is disputed): pick another one")
    if not invoices:
        raise UserError("this account has no open, undisputed invoice to put on a plan")
    currencies = {i.currency for i in invoices}
    if len(currencies) > 1:
        raise UserError(
            "the open invoices are in several currencies "
            f"({', '.join(sorted(currencies))}): record a plan per invoice"
        )
    return invoices


def balance_of(invoices: Sequence[Invoice]) -> tuple[Decimal, str]:
    return sum((i.balance for i in invoices), Decimal(0)), invoices[0].currency


def record(
    session: Session,
    escalation_id: int,
    user: str,
    scope: str,
    instalments: list[tuple[date, Decimal]],
    now: datetime,
    today: date | None = None,
) -> PaymentPlan:
    """Store the plan, put its invoices on hold, and resolve the escalation ("Payment plan
    agreed"): the instalment reminders need the account out of a person's hands. Every
    instalment must fall after `today`, the business's date (Runtime.today(), as the form
    checked it); without it, the date of `now` in UTC, which in the business's evening west of
    UTC is already tomorrow."""
    escalation = service.load(session, escalation_id)
    if active_plan(session, escalation.customer_id) is not None:
        raise UserError("this account already has a payment plan running")
    invoices = plan_invoices(session, escalation.customer_id, scope)
    total, currency = balance_of(invoices)
    entries = [Entry(d, str(a)) for d, a in instalments]
    checked = check_entries(entries, total, currency, today or now.date())
    if checked.errors:  # the balance moved while the form was open
        raise UserError(next(iter(checked.errors.values())))
    plan = PaymentPlan(
        customer_id=escalation.customer_id,
        escalation_id=escalation_id,
        invoice_ids=[i.id for i in invoices],
        currency=currency,
        total=total,
        state="active",
        created_by=user,
        created_at=now,
    )
    session.add(plan)
    try:
        session.flush()
    except IntegrityError:  # another form recorded one a moment ago
        raise UserError("this account already has a payment plan running") from None
    for seq, (due_on, amount) in enumerate(checked.instalments, start=1):
        session.add(PlanInstalment(plan_id=plan.id, seq=seq, due_on=due_on, amount=amount))
    for invoice in invoices:
        invoice.payment_plan, invoice.updated_at = True, now
    cancel_waiting(session, escalation.customer_id, "payment_plan", now)
    audit.record(
        session,
        now,
        "plan.recorded",
        actor=user,
        customer_id=escalation.customer_id,
        payload={
            "plan": plan.id,
            "invoices": [i.number for i in invoices],
            "instalments": [
                [d.isoformat(), decimal_str(a, currency)] for d, a in checked.instalments
            ],
            "currency": currency,
        },
    )
    outcome = f"Payment plan agreed: {len(checked.instalments)} instalments"
    service.resolve(session, escalation_id, user, outcome, now)
    return plan


def still_disputed(session: Session, customer_id: int) -> list[str]:
    """The numbers of the customer's open invoices that are disputed: a plan leaves them out, and
    they stay held (each morning's plan lists them as disputed) after the plan resolves the
    escalation, so the thread says so."""
    return [i.number for i in service.open_invoices(session, customer_id) if i.disputed]


def cancel(session: Session, escalation_id: int, user: str, now: datetime) -> Progress:
    """End the customer's running plan at a person's word (from its escalation's thread): its
    invoices leave the hold and the instalment reminders still waiting are cancelled, so the
    ladder resumes with the next morning's plan. Recorded in the history with what was paid.
    Refused when no plan is running (ended, or cancelled a moment ago by someone else)."""
    escalation = service.load(session, escalation_id)
    plan = active_plan(session, escalation.customer_id)
    if plan is None:
        raise UserError("this account has no payment plan running, so there is nothing to cancel")
    ended = session.execute(
        update(PaymentPlan)
        .where(PaymentPlan.id == plan.id, PaymentPlan.state == "active")
        .values(state="cancelled", ended_at=now)
        .execution_options(synchronize_session=False)
    )
    if ended.rowcount != 1:  # type: ignore[attr-defined]
        raise UserError("this payment plan has just ended (paid, missed or cancelled)")
    session.refresh(plan)
    return _cancelled(session, plan, user, now)


def _cancelled(
    session: Session, plan: PaymentPlan, actor: str, now: datetime, **why: object
) -> Progress:
    """End the plan as cancelled: its invoices leave the hold, its instalment reminders still
    waiting are cancelled, and the history says what was paid (and `why`, when the ledger ended
    it)."""
    _end(session, plan, "cancelled", now)
    state.cancel(
        session,
        None,
        from_states=WAITING,
        reason="plan_cancelled",
        now=now,
        where=[
            Reminder.customer_id == plan.customer_id,
            Reminder.step_key.startswith(f"{STEP_PREFIX}{plan.id}-"),
        ],
    )
    done = progress(session, plan.customer_id)
    assert done is not None
    audit.record(
        session,
        now,
        "plan.cancelled",
        actor=actor,
        customer_id=plan.customer_id,
        payload={
            "plan": plan.id,
            "paid": decimal_str(done.paid, plan.currency),
            "total": decimal_str(plan.total, plan.currency),
            "currency": plan.currency,
            "instalments_paid": done.paid_count,
            "instalments": len(done.steps),
            **why,
        },
    )
    return done


def active_plan(session: Session, customer_id: int) -> PaymentPlan | None:
    return session.scalars(
        select(PaymentPlan).where(
            PaymentPlan.customer_id == customer_id, PaymentPlan.state == "active"
        )
    ).first()


def latest_plan(session: Session, customer_id: int) -> PaymentPlan | None:
    return session.scalars(
        select(PaymentPlan)
        .where(PaymentPlan.customer_id == customer_id)
        .order_by(PaymentPlan.id.desc())
    ).first()


def instalments_of(session: Session, plan_id: int) -> list[PlanInstalment]:
    return list(
        session.scalars(
            select(PlanInstalment)
            .where(PlanInstalment.plan_id == plan_id)
            .order_by(PlanInstalment.seq)
        )
    )


def paid_so_far(session: Session, plan: PaymentPlan) -> Decimal:
    """What has come off the plan's invoices since it was agreed (never below zero)."""
    left = sum(
        session.scalars(
            select(Invoice.balance).where(
                Invoice.id.in_(plan.invoice_ids), Invoice.status == "open"
            )
        ),
        Decimal(0),
    )
    return max(plan.total - left, Decimal(0))


def voided(session: Session, invoice_ids: Iterable[int]) -> dict[int, str]:
    """Those of these invoices voided in the ledger (or written off), by id: their number. No
    money came off them, so none of it counts against a plan's instalments."""
    rows = session.execute(
        select(Invoice.id, Invoice.number).where(
            Invoice.id.in_(sorted(set(invoice_ids))),
            Invoice.status.in_([InvoiceStatus.VOID, InvoiceStatus.WRITTEN_OFF]),
        )
    )
    return {invoice_id: number for invoice_id, number in rows}


def running(session: Session) -> list[tuple[PaymentPlan, list[PlanInstalment], Decimal]]:
    """Every active plan with its instalments and what has been paid, in three queries however
    many plans run (the sweep and the morning plan read them all)."""
    active = list(
        session.scalars(
            select(PaymentPlan).where(PaymentPlan.state == "active").order_by(PaymentPlan.id)
        )
    )
    if not active:
        return []
    by_plan: dict[int, list[PlanInstalment]] = {p.id: [] for p in active}
    for instalment in session.scalars(
        select(PlanInstalment)
        .join(PaymentPlan, PaymentPlan.id == PlanInstalment.plan_id)
        .where(PaymentPlan.state == "active")
        .order_by(PlanInstalment.plan_id, PlanInstalment.seq)
    ):
        by_plan.setdefault(instalment.plan_id, []).append(instalment)
    left = {  # the invoices held by a running plan carry its flag
        invoice_id: balance if status == "open" else Decimal(0)
        for invoice_id, balance, status in session.execute(
            select(Invoice.id, Invoice.balance, Invoice.status).where(
                Invoice.payment_plan.is_(True)
            )
        )
    }
    out = []
    for plan in active:
        if all(i in left for i in plan.invoice_ids):
            owed = sum((left[i] for i in plan.invoice_ids), Decimal(0))
            paid = max(plan.total - owed, Decimal(0))
        else:  # a flag cleared by hand: read this plan's invoices themselves
            paid = paid_so_far(session, plan)
        out.append((plan, by_plan[plan.id], paid))
    return out


def undisputed_open(session: Session, invoice_ids: Iterable[int]) -> dict[int, Decimal]:
    """The open, undisputed balance of each of these invoices (0 for the rest): what a plan's
    reminder may ask for, since a disputed invoice is asked for nothing until a person resolves
    the dispute (RULES A9)."""
    wanted = sorted(set(invoice_ids))
    out = dict.fromkeys(wanted, Decimal(0))
    for invoice_id, balance in session.execute(
        select(Invoice.id, Invoice.balance).where(
            Invoice.id.in_(wanted), Invoice.status == "open", Invoice.disputed.is_(False)
        )
    ):
        out[invoice_id] = max(balance, Decimal(0))
    return out


def still_owed(instalments: Sequence[PlanInstalment], paid: Decimal) -> list[Decimal]:
    """What each instalment still lacks once `paid` is counted against them in date order."""
    owed, counted = [], Decimal(0)
    for instalment in instalments:
        counted += instalment.amount
        owed.append(min(instalment.amount, max(counted - paid, Decimal(0))))
    return owed


@dataclass(frozen=True)
class Step:
    """One instalment as people see it."""

    seq: int
    due_on: date
    amount: Decimal
    owed: Decimal
    state: str  # "paid" | "missed" | "due"


@dataclass(frozen=True)
class Progress:
    plan_id: int
    state: str
    currency: str
    total: Decimal
    paid: Decimal
    steps: list[Step]

    @property
    def paid_count(self) -> int:
        return sum(1 for s in self.steps if s.state == "paid")

    def summary(self) -> str:
        """ "Payment plan: 1 of 3 instalments paid ($400.00 of $1,200.00), next $400.00 on …"."""
        head = (
            f"Payment plan ({self.state}): {self.paid_count} of {len(self.steps)} instalments "
            f"paid ({format_money(self.paid, self.currency)} of "
            f"{format_money(self.total, self.currency)})"
        )
        upcoming = next((s for s in self.steps if s.state == "due"), None)
        if upcoming is not None and self.state == "active":
            head += f", next {format_money(upcoming.owed, self.currency)} on {upcoming.due_on}"
        return head

    def lines(self) -> list[str]:
        marks = {"paid": "paid", "missed": "*missed*", "due": "to come"}
        return [
            f"{s.seq}. {s.due_on.isoformat()}: {format_money(s.amount, self.currency)} · "
            f"{marks[s.state]}"
            + (
                f" ({format_money(s.owed, self.currency)} still owed)"
                if s.state != "paid" and s.owed != s.amount
                else ""
            )
            for s in self.steps
        ]


def progress(session: Session, customer_id: int) -> Progress | None:
    """The latest plan of the customer, with each instalment paid, missed or to come."""
    plan = latest_plan(session, customer_id)
    if plan is None:
        return None
    instalments = instalments_of(session, plan.id)
    paid = paid_so_far(session, plan)
    if voided(session, plan.invoice_ids):  # its balance is gone, not paid: what was, before
        paid = sum((i.amount for i in instalments if i.paid_on is not None), Decimal(0))
    steps = [
        Step(
            i.seq,
            i.due_on,
            i.amount,
            owed,
            "paid" if owed == 0 else ("missed" if i.missed_at is not None else "due"),
        )
        for i, owed in zip(instalments, still_owed(instalments, paid), strict=True)
    ]
    return Progress(plan.id, plan.state, plan.currency, plan.total, paid, steps)


@dataclass(frozen=True)
class Missed:
    customer_id: int
    plan_id: int
    escalation_id: int | None
    seq: int
    due_on: date
    owed: Decimal
    currency: str


def check_plans(session: Session, today: date, grace_days: int, now: datetime) -> list[Missed]:
    """Mark instalments newly covered paid; end plans fully paid (completed) and plans whose
    first instalment not covered is past its date plus grace (missed); a plan with an invoice
    voided (or written off) is cancelled first, nothing of it counted (_voided_under). The
    invoices of an ended plan leave the hold. Returns the misses, for the owner to be told."""
    missed: list[Missed] = []
    plans = running(session)
    gone = voided(session, (i for plan, _, _ in plans for i in plan.invoice_ids))
    for plan, instalments, paid in plans:
        if any(i in gone for i in plan.invoice_ids):
            _voided_under(session, plan, [gone[i] for i in plan.invoice_ids if i in gone], now)
            continue
        owed = still_owed(instalments, paid)
        for instalment, lacking in zip(instalments, owed, strict=True):
            if lacking == 0 and instalment.paid_on is None:
                instalment.paid_on = today
                _event(session, now, plan, "instalment.paid", instalment)
        late = next(
            (
                (i, lacking)
                for i, lacking in zip(instalments, owed, strict=True)
                if lacking > 0 and i.due_on + timedelta(days=grace_days) < today
            ),
            None,
        )
        if all(lacking == 0 for lacking in owed):
            _end(session, plan, "completed", now)
            audit.record(
                session, now, "plan.completed", customer_id=plan.customer_id,
                payload={"plan": plan.id},
            )  # fmt: skip
        elif late is not None:
            instalment, lacking = late
            instalment.missed_at = now
            _end(session, plan, "missed", now)
            _event(session, now, plan, "instalment.missed", instalment, owed=lacking)
            missed.append(
                Missed(
                    plan.customer_id,
                    plan.id,
                    plan.escalation_id,
                    instalment.seq,
                    instalment.due_on,
                    lacking,
                    plan.currency,
                )
            )
    return missed


def _voided_under(session: Session, plan: PaymentPlan, numbers: list[str], now: datetime) -> None:
    """An invoice of the plan was voided (or written off): its balance went without a payment,
    so the instalments no longer say what is owed. The plan ends (cancelled, by the ledger)
    without counting that balance as paid, and a person has the account, to agree what is left."""
    _cancelled(session, plan, audit.SYSTEM, now, voided=numbers)
    customer = session.get(Customer, plan.customer_id)
    assert customer is not None
    service.open_or_add(
        session,
        plan.customer_id,
        "plan_invoice_voided",
        now,
        detail=(
            f"{', '.join(numbers)} voided in the ledger while the payment plan ran: the plan "
            "has ended; agree what is left"
        ),
        owner=customer.owner_slack_id,
    )


def _end(session: Session, plan: PaymentPlan, state: str, now: datetime) -> None:
    plan.state, plan.ended_at = state, now
    for invoice in session.scalars(select(Invoice).where(Invoice.id.in_(plan.invoice_ids))):
        invoice.payment_plan, invoice.updated_at = False, now


def _event(
    session: Session,
    now: datetime,
    plan: PaymentPlan,
    kind: str,
    instalment: PlanInstalment,
    owed: Decimal | None = None,
) -> None:
    payload: dict[str, object] = {
        "plan": plan.id,
        "seq": instalment.seq,
        "due_on": instalment.due_on.isoformat(),
        "amount": decimal_str(instalment.amount, plan.currency),
        "currency": plan.currency,
    }
    if owed is not None:
        payload["owed"] = decimal_str(owed, plan.currency)
    audit.record(session, now, kind, customer_id=plan.customer_id, payload=payload)


@dataclass(frozen=True)
class NextInstalment:
    """The instalment a customer's reminder would be about: the first one not yet covered."""

    plan_id: int
    seq: int
    count: int
    due_on: date
    owed: Decimal
    currency: str
    invoice_ids: tuple[int, ...]

    @property
    def step_key(self) -> str:
        """The reminder's step: one per instalment (a plan's instalment is reminded once)."""
        return f"{STEP_PREFIX}{self.plan_id}-{self.seq}"


def next_instalments(session: Session) -> dict[int, NextInstalment]:
    """Per customer with a running plan, its first instalment not yet covered nor missed; its
    `owed` is what the reminder asks for (asked_for)."""
    out: dict[int, NextInstalment] = {}
    active = running(session)
    open_now = undisputed_open(session, (i for plan, _, _ in active for i in plan.invoice_ids))
    for plan, instalments, paid in active:
        owed = still_owed(instalments, paid)
        for instalment, lacking in zip(instalments, owed, strict=True):
            if lacking > 0 and instalment.missed_at is None:
                out[plan.customer_id] = NextInstalment(
                    plan.id,
                    instalment.seq,
                    len(instalments),
                    instalment.due_on,
                    asked_for(lacking, plan, open_now),
                    plan.currency,
                    tuple(plan.invoice_ids),
                )
                break
    return out


def asked_for(lacking: Decimal, plan: PaymentPlan, open_now: dict[int, Decimal]) -> Decimal:
    """What an instalment's reminder asks for: what the instalment still lacks, but never more
    than the plan's invoices still owe undisputed (a disputed invoice's money is not asked for,
    nor a voided one's)."""
    return min(lacking, sum((open_now.get(i, Decimal(0)) for i in plan.invoice_ids), Decimal(0)))


def is_instalment_step(step_key: str) -> bool:
    return step_key.startswith(STEP_PREFIX)


def instalment_asks(session: Session, step_keys: Iterable[str]) -> dict[str, tuple[Decimal, str]]:
    """What each instalment reminder asks for, by its step key, and the plan's currency (not its
    invoices' balances): while its plan runs and the instalment is not covered, what its
    message says (next_instalments: what it still lacks, never more than is owed undisputed);
    else the instalment's amount. Keys naming no instalment are left out."""
    wanted: dict[tuple[int, int], str] = {}
    for key in step_keys:
        plan_text, _, seq_text = key[len(STEP_PREFIX) :].partition("-")
        if is_instalment_step(key) and plan_text.isdigit() and seq_text.isdigit():
            wanted[(int(plan_text), int(seq_text))] = key
    if not wanted:
        return {}
    rows = session.execute(
        select(
            PlanInstalment.plan_id, PlanInstalment.seq, PlanInstalment.amount, PaymentPlan.currency
        )
        .join(PaymentPlan, PaymentPlan.id == PlanInstalment.plan_id)
        .where(PlanInstalment.plan_id.in_(sorted({plan for plan, _ in wanted})))
    )
    asks = {
        wanted[(plan, seq)]: (amount, currency)
        for plan, seq, amount, currency in rows
        if (plan, seq) in wanted
    }
    plan_ids = {plan for plan, _ in wanted}
    active = [found for found in running(session) if found[0].id in plan_ids]
    open_now = undisputed_open(session, (i for plan, _, _ in active for i in plan.invoice_ids))
    for plan, instalments, paid in active:
        for instalment, lacking in zip(instalments, still_owed(instalments, paid), strict=True):
            step_key = wanted.get((plan.id, instalment.seq))
            if step_key is not None and lacking > 0:
                asks[step_key] = (asked_for(lacking, plan, open_now), plan.currency)
    return asks


def instalment_amounts(session: Session, step_key: str) -> list[tuple[Decimal, str]]:
    """The amounts an instalment reminder's message may state from data, each with the plan's
    currency: what it asks for (`instalment_asks`), the instalment's own amount and the plan's
    total. Empty for a step key naming no instalment."""
    asks = instalment_asks(session, [step_key])
    if step_key not in asks:
        return []
    plan_text, _, seq_text = step_key[len(STEP_PREFIX) :].partition("-")
    found = session.execute(
        select(PlanInstalment.amount, PaymentPlan.total, PaymentPlan.currency)
        .join(PaymentPlan, PaymentPlan.id == PlanInstalment.plan_id)
        .where(PlanInstalment.plan_id == int(plan_text), PlanInstalment.seq == int(seq_text))
    ).first()
    amounts = [asks[step_key]]
    if found is not None:
        amount, total, currency = found
        amounts += [(amount, currency), (total, currency)]
    return amounts


def instalment_owed(session: Session, step_key: str) -> Decimal | None:
    """For an instalment reminder's step key, what that instalment still lacks (0 once paid);
    None when the key names no instalment of a running plan."""
    if not is_instalment_step(step_key):
        return None
    plan_text, _, seq_text = step_key[len(STEP_PREFIX) :].partition("-")
    if not (plan_text.isdigit() and seq_text.isdigit()):
        return None
    plan = session.get(PaymentPlan, int(plan_text))
    if plan is None or plan.state != "active":
        return Decimal(0) if plan is not None and plan.state == "completed" else None
    instalments = instalments_of(session, plan.id)
    owed = still_owed(instalments, paid_so_far(session, plan))
    for instalment, lacking in zip(instalments, owed, strict=True):
        if instalment.seq == int(seq_text):
            return lacking
    return None
