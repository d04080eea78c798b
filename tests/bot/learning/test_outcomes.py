"""What followed each touch: money credited to the last touch of an invoice before it came in
(none before the first touch), replies and escalations per customer window, and the step table
and weekly portfolio figures on small ledgers whose answers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count

from sqlalchemy import update

from bot.core.models import (
    Customer,
    Escalation,
    InboundMessage,
    Invoice,
    Reminder,
    ReminderInvoice,
)
from bot.core.runtime import Runtime
from bot.learning.metrics import portfolio
from bot.learning.outcomes import TouchOutcome, effectiveness, outcomes
from bot.ledger.aging import aging_report
from bot.payments.record import record_payment
from tests.conftest import NOW

ZONE = "America/New_York"
TODAY = date(2026, 3, 16)  # the test clock's day in New York


def at(day: date, hour: int = 15) -> datetime:
    """An instant on `day` (15:00 UTC is 10:00 or 11:00 in New York: the same day there)."""
    return datetime.combine(day, time(hour), UTC)


class Ledger:
    """A small ledger written straight through the ORM; payments go through `record_payment`,
    as every source's do."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._ids = count(1)

    def customer(self, tier: str = "standard") -> int:
        n = next(self._ids)
        with self.runtime.writing() as session:
            customer = Customer(
                source="csv",
                external_id=f"C-{n}",
                name=f"Customer {n}",
                tier=tier,
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(customer)
            session.flush()
            return customer.id

    def invoice(
        self,
        customer_id: int,
        total: str,
        *,
        issued: date,
        due: date,
        currency: str = "USD",
    ) -> int:
        n = next(self._ids)
        with self.runtime.writing() as session:
            invoice = Invoice(
                customer_id=customer_id,
                source="csv",
                external_id=f"INV-{n}",
                number=f"INV-{n}",
                issue_date=issued,
                due_date=due,
                currency=currency,
                total=Decimal(total),
                balance=Decimal(total),
                status="open",
                created_at=at(issued),
                updated_at=at(issued),
            )
            session.add(invoice)
            session.flush()
            return invoice.id

    def touch(
        self,
        customer_id: int,
        invoice_ids: list[int],
        sent: datetime,
        *,
        step: str = "plus7",
        channel: str = "email",
        due: date | None = None,
        planned: date | None = None,
    ) -> int:
        n = next(self._ids)
        with self.runtime.writing() as session:
            reminder = Reminder(
                customer_id=customer_id,
                channel=channel,
                plan_date=planned or sent.date(),
                step_key=step,
                action="remind",
                state="sent",
                idempotency_key=f"touch-{n}",
                sent_at=sent,
                created_at=sent,
                updated_at=sent,
            )
            session.add(reminder)
            session.flush()
            for invoice_id in invoice_ids:
                invoice_due = due or session.get_one(Invoice, invoice_id).due_date
                session.add(
                    ReminderInvoice(
                        reminder_id=reminder.id,
                        invoice_id=invoice_id,
                        step_key=step,
                        due_date=invoice_due,
                    )
                )
            return reminder.id

    def pay(self, invoice_id: int | None, amount: str, on: date, currency: str = "USD") -> None:
        with self.runtime.writing() as session:
            customer_id = session.get_one(Invoice, invoice_id).customer_id if invoice_id else None
            record_payment(
                session,
                source="bank",
                external_id=f"pay-{next(self._ids)}",
                customer_id=customer_id,
                received_on=on,
                amount=Decimal(amount),
                currency=currency,
                invoice_ids=[invoice_id] if invoice_id else [],
                now=NOW,
            )

    def close_in_ledger(self, invoice_id: int, paid_at: datetime) -> None:
        """Paid in the accounting system, with no payment recorded here (a CSV re-import)."""
        with self.runtime.writing() as session:
            session.execute(
                update(Invoice)
                .where(Invoice.id == invoice_id)
                .values(status="paid", balance=Decimal(0), paid_at=paid_at, updated_at=paid_at)
            )

    def reply(
        self, customer_id: int, received: datetime, label: str | None, automatic: bool = False
    ) -> None:
        with self.runtime.writing() as session:
            session.add(
                InboundMessage(
                    channel="email",
                    received_at=received,
                    sender="ap@customer.example",
                    raw="...",
                    text="...",
                    customer_id=customer_id,
                    automatic=automatic,
                    label=label,
                )
            )

    def escalate(self, customer_id: int, opened: datetime, reason: str = "dispute") -> None:
        with self.runtime.writing() as session:
            session.add(
                Escalation(customer_id=customer_id, reason=reason, state="open", opened_at=opened)
            )


def outcome_of(runtime: Runtime, reminder_id: int, since: date, until: date) -> TouchOutcome:
    with runtime.sessions() as session:
        found = {o.reminder_id: o for o in outcomes(session, since, until, ZONE)}
    return found[reminder_id]


FEB = date(2026, 2, 1)


def test_a_payment_after_two_touches_is_credited_to_the_last_one(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "1000.00", issued=date(2026, 1, 2), due=FEB)
    first = ledger.touch(acme, [invoice], at(date(2026, 2, 8)), step="plus7")
    second = ledger.touch(acme, [invoice], at(date(2026, 2, 15)), step="plus14")
    ledger.pay(invoice, "1000.00", date(2026, 2, 20))

    with runtime.sessions() as session:
        found = outcomes(session, date(2026, 2, 1), date(2026, 2, 28), ZONE)
    assert [o.reminder_id for o in found] == [first, second]
    earlier, later = found
    assert (later.outcome, later.days_to_paid) == ("paid", 5)
    assert later.collected == {"USD": Decimal("1000.00")}
    assert (earlier.outcome, earlier.collected, earlier.days_to_paid) == ("nothing", {}, None)
    # Asked about the first touch alone, the second still closes its window.
    assert outcome_of(runtime, first, date(2026, 2, 8), date(2026, 2, 8)).outcome == "nothing"


def test_a_payment_before_any_touch_is_credited_to_none(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "500.00", issued=date(2026, 1, 2), due=FEB)
    ledger.pay(invoice, "200.00", date(2026, 2, 7))  # the day before the touch
    touch = ledger.touch(acme, [invoice], at(date(2026, 2, 8)))

    found = outcome_of(runtime, touch, FEB, TODAY)
    assert (found.outcome, found.collected) == ("nothing", {})


def test_a_payment_on_the_day_of_the_touch_follows_it(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "500.00", issued=date(2026, 1, 2), due=FEB)
    touch = ledger.touch(acme, [invoice], at(date(2026, 2, 8)))
    ledger.pay(invoice, "500.00", date(2026, 2, 8))

    found = outcome_of(runtime, touch, FEB, TODAY)
    assert (found.outcome, found.days_to_paid) == ("paid", 0)


def test_a_part_payment_is_partly_paid_and_the_rest_goes_to_the_touch_it_followed(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "1000.00", issued=date(2026, 1, 2), due=FEB)
    first = ledger.touch(acme, [invoice], at(date(2026, 2, 8)), step="plus7")
    ledger.pay(invoice, "400.00", date(2026, 2, 10))
    second = ledger.touch(acme, [invoice], at(date(2026, 2, 15)), step="plus14")
    ledger.pay(invoice, "600.00", date(2026, 2, 27))

    partly = outcome_of(runtime, first, FEB, TODAY)
    assert (partly.outcome, partly.days_to_paid) == ("partly_paid", None)
    assert partly.collected == {"USD": Decimal("400.00")}
    rest = outcome_of(runtime, second, FEB, TODAY)
    assert (rest.outcome, rest.days_to_paid) == ("paid", 12)
    assert rest.collected == {"USD": Decimal("600.00")}


def test_a_touch_covering_two_invoices_of_which_one_is_paid_is_partly_paid(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    paid = ledger.invoice(acme, "300.00", issued=date(2026, 1, 2), due=FEB)
    open_one = ledger.invoice(acme, "700.00", issued=date(2026, 1, 5), due=date(2026, 2, 4))
    touch = ledger.touch(acme, [paid, open_one], at(date(2026, 2, 8)))
    ledger.pay(paid, "300.00", date(2026, 2, 9))

    found = outcome_of(runtime, touch, FEB, TODAY)
    assert (found.outcome, found.collected) == ("partly_paid", {"USD": Decimal("300.00")})
    assert found.day == 7  # planned on 8 Feb; the earliest due date it covered is 1 Feb


def test_an_invoice_closed_in_the_ledger_without_a_payment_counts_on_its_paid_day(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "800.00", issued=date(2026, 1, 2), due=FEB)
    touch = ledger.touch(acme, [invoice], at(date(2026, 2, 8)))
    ledger.close_in_ledger(invoice, at(date(2026, 2, 11)))

    found = outcome_of(runtime, touch, FEB, TODAY)
    assert (found.outcome, found.days_to_paid) == ("paid", 3)
    assert found.collected == {"USD": Decimal("800.00")}


def test_a_reply_labelled_dispute_counts_as_replied_and_later_replies_go_to_the_next_touch(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "900.00", issued=date(2026, 1, 2), due=FEB)
    other = ledger.invoice(acme, "100.00", issued=date(2026, 1, 2), due=FEB)
    first = ledger.touch(acme, [invoice], at(date(2026, 3, 2)), step="plus30")
    ledger.reply(acme, at(date(2026, 3, 2), 16), None, automatic=True)  # out of office
    ledger.reply(acme, at(date(2026, 3, 3)), "dispute")
    ledger.escalate(acme, at(date(2026, 3, 3), 16))
    ledger.reply(acme, at(date(2026, 3, 4)), "question")  # not the first: the label stays
    second = ledger.touch(acme, [other], at(date(2026, 3, 9)), step="plus35")
    ledger.reply(acme, at(date(2026, 3, 10)), "promise_to_pay")

    disputed = outcome_of(runtime, first, FEB, TODAY)
    assert (disputed.outcome, disputed.reply_label) == ("replied", "dispute")
    assert disputed.escalated is True
    promised = outcome_of(runtime, second, FEB, TODAY)
    assert (promised.outcome, promised.reply_label, promised.escalated) == (
        "replied",
        "promise_to_pay",
        False,
    )


def test_an_automatic_reply_or_a_bounce_is_not_a_reply_and_an_escalation_alone_is_escalated(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "900.00", issued=date(2026, 1, 2), due=FEB)
    touch = ledger.touch(acme, [invoice], at(date(2026, 3, 2)))
    ledger.reply(acme, at(date(2026, 3, 2), 16), None, automatic=True)
    ledger.reply(acme, at(date(2026, 3, 2), 17), "bounce")
    ledger.escalate(acme, at(date(2026, 3, 5)), reason="bounce")

    found = outcome_of(runtime, touch, FEB, TODAY)
    assert (found.outcome, found.replied, found.escalated) == ("escalated", False, True)


def test_touches_outside_the_days_asked_for_are_left_out(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "900.00", issued=date(2026, 1, 2), due=FEB)
    ledger.touch(acme, [invoice], at(date(2026, 2, 8)), step="plus7")
    ledger.touch(acme, [invoice], at(date(2026, 2, 15)), step="plus14")
    with runtime.sessions() as session:
        found = outcomes(session, date(2026, 2, 9), date(2026, 2, 14), ZONE)
    assert found == []


# --- The step table -------------------------------------------------------------------------


def test_the_step_table_counts_touches_payments_replies_escalations_and_cash(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)

    def one_touch(
        total: str, *, tier: str = "standard", channel: str = "email", currency: str = "USD"
    ) -> tuple[int, int]:
        customer = ledger.customer(tier)
        invoice = ledger.invoice(
            customer, total, issued=date(2026, 1, 2), due=FEB, currency=currency
        )
        step = "gentle" if tier == "strategic" else "plus7"
        day = FEB + timedelta(days=3 if tier == "strategic" else 7)
        ledger.touch(customer, [invoice], at(day), step=step, channel=channel)
        return customer, invoice

    _, paid_in_3 = one_touch("100.00")
    ledger.pay(paid_in_3, "100.00", date(2026, 2, 11))
    _, paid_in_10 = one_touch("200.00")
    ledger.pay(paid_in_10, "200.00", date(2026, 2, 18))
    _, paid_in_20 = one_touch("300.00")
    ledger.pay(paid_in_20, "300.00", date(2026, 2, 28))
    asked, partly = one_touch("400.00")
    ledger.pay(partly, "50.00", date(2026, 2, 9))
    ledger.reply(asked, at(date(2026, 2, 9)), "question")
    ledger.escalate(asked, at(date(2026, 2, 9), 16))
    one_touch("500.00", channel="sms")
    _, euro = one_touch("1000.00", tier="strategic", currency="EUR")
    ledger.pay(euro, "1000.00", date(2026, 2, 6), currency="EUR")

    with runtime.sessions() as session:
        rows = effectiveness(outcomes(session, FEB, TODAY, ZONE))

    assert [(r.tier, r.step_key, r.channel, r.day) for r in rows] == [
        ("strategic", "gentle", "email", 3),
        ("standard", "plus7", "email", 7),
        ("standard", "plus7", "sms", 7),
    ]
    strategic, email, sms = rows
    assert (strategic.touches, strategic.paid_within) == (1, {7: 1, 14: 1, 30: 1})
    assert strategic.collected == {"EUR": Decimal("1000.00")}
    assert email.touches == 4
    assert email.paid_within == {7: 1, 14: 2, 30: 3}
    assert (email.replied, email.escalated) == (1, 1)
    assert email.collected == {"USD": Decimal("650.00")}
    assert email.paid_percent(14) == Decimal("50.0")
    assert (email.reply_percent, email.escalation_percent) == (Decimal("25.0"), Decimal("25.0"))
    assert (sms.touches, sms.paid_within, sms.replied, sms.collected) == (
        1,
        {7: 0, 14: 0, 30: 0},
        0,
        {},
    )


# --- The portfolio, week by week ------------------------------------------------------------


def test_weekly_buckets_dso_cash_and_paid_by_day_30_on_a_known_ledger(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    late = ledger.invoice(acme, "1000.00", issued=date(2026, 1, 1), due=date(2026, 1, 31))
    part = ledger.invoice(acme, "500.00", issued=date(2026, 2, 1), due=date(2026, 3, 3))
    ledger.invoice(acme, "250.00", issued=date(2026, 3, 1), due=date(2026, 3, 31))
    old = ledger.invoice(acme, "400.00", issued=date(2025, 11, 1), due=date(2025, 12, 1))
    quick = ledger.invoice(acme, "300.00", issued=date(2026, 1, 10), due=date(2026, 2, 10))
    ledger.invoice(acme, "100.00", issued=date(2026, 2, 10), due=date(2026, 2, 20), currency="EUR")
    ledger.pay(part, "200.00", date(2026, 3, 10))
    ledger.pay(old, "400.00", date(2026, 3, 12))
    ledger.pay(quick, "300.00", date(2026, 3, 5))
    ledger.pay(None, "50.00", date(2026, 3, 11))  # a bank payment matching no invoice
    assert late

    with runtime.sessions() as session:
        weeks = portfolio(session, TODAY, weeks=12, timezone=ZONE)
        today_aging = aging_report(session, date(2026, 3, 15))

    assert len(weeks) == 12
    assert (weeks[0].first_day, weeks[-1].last_day) == (date(2025, 12, 22), date(2026, 3, 15))
    before, last = weeks[-2], weeks[-1]
    assert (before.first_day, before.last_day) == (date(2026, 3, 2), date(2026, 3, 8))
    usd = {"current": "250", "1-30": "300", "31-60": "1000", "61-90": "0", "90+": "0"}
    assert last.aging["USD"] == {k: Decimal(v) for k, v in usd.items()}
    assert last.overdue("USD") == Decimal("1300.00")
    # 1550 open over 2050 invoiced in the last 90 days, times 90.
    assert last.dso == {"EUR": Decimal("90.0"), "USD": Decimal("68.0")}
    assert last.collected == {"EUR": Decimal(0), "USD": Decimal("650.00")}
    assert (last.reached_30, last.paid_by_30, last.paid_by_30_percent) == (1, 1, Decimal("100.0"))

    usd = {"current": "250", "1-30": "500", "31-60": "1000", "61-90": "0", "90+": "400"}
    assert before.aging["USD"] == {k: Decimal(v) for k, v in usd.items()}
    assert before.dso["USD"] == Decimal("94.4")  # 2150 / 2050 x 90
    assert before.collected["USD"] == Decimal("300.00")
    assert (before.reached_30, before.paid_by_30) == (1, 0)  # the January invoice, still open
    assert (weeks[1].reached_30, weeks[1].paid_by_30) == (1, 0)  # December's, paid in March

    # The latest week agrees with the aging report of the same day.
    assert last.aging["USD"] == today_aging.currencies["USD"].buckets
    assert last.dso["USD"] == today_aging.currencies["USD"].dso


def test_an_invoice_closed_in_the_ledger_leaves_the_balances_on_its_paid_day(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    invoice = ledger.invoice(acme, "800.00", issued=date(2026, 1, 2), due=FEB)
    ledger.close_in_ledger(invoice, at(date(2026, 3, 11)))
    with runtime.sessions() as session:
        before, last = portfolio(session, TODAY, weeks=2, timezone=ZONE)
    assert before.aging["USD"]["31-60"] == Decimal("800.00")
    assert last.open_total("USD") == Decimal(0)
    assert last.collected["USD"] == Decimal(0)  # no payment was recorded here
