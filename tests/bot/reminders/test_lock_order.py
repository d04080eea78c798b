"""On PostgreSQL, a payment, reply or ledger import that changes several reminders never deadlocks
with the send worker or a delivery report: each locks reminders in one order (send_after, id),
and a reminder before its contact. A deadlock would abort one of the two transactions, and with
it the payment, the reply or the import."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from bot.core.models import Contact, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.core.vocabulary import WAITING
from bot.ledger.upsert import ImportSummary, apply_batch
from bot.payments.record import cancel_for_invoices
from bot.reminders import state
from bot.reminders.delivery import sms_status
from bot.reminders.outbox import LEASE, FlushReport, recover
from bot.reminders.results import Handed, record
from bot.reminders.turns import Turns, settle
from bot.replies.email import handle_email
from bot.replies.match import ReplyRules
from bot.replies.sms import handle_sms
from integrations.base.inbound import Triage
from integrations.base.ledger import ContactRecord, CustomerRecord, LedgerBatch
from integrations.base.outbound import Delivery
from integrations.csv_ledger import read_ledger_csv
from integrations.email_in import parse
from tests.bot.reminders.test_outbox import (
    SECRET,
    _sender_env,
    approved,
    mail_env,
    smtp,
    states,
)
from tests.bot.reminders.test_stops_while_sending import (
    _claim_now,
    after_first_update,
    cancelled_events,
    meanwhile,
)
from tests.support.ledger_files import a_week_late, write

__all__ = ["mail_env", "smtp"]  # fixtures

pytestmark = pytest.mark.postgres
PHONE = "+13125550100"


@pytest.fixture(autouse=True)
def _postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writing transactions run one at a time (BEGIN IMMEDIATE)")


def two_sending(runtime: Runtime, tmp_path: Path, cli: Any) -> None:
    """Reminders 1 and 2 `sending`, 2 due first: (send_after, id) puts 2 before 1."""
    approved(cli, runtime, tmp_path, customers=2)
    now = runtime.clock.now()
    with runtime.writing() as session:
        for reminder_id, hours in ((1, 1), (2, 2)):
            session.execute(
                update(Reminder)
                .where(Reminder.id == reminder_id)
                .values(send_after=now - timedelta(hours=hours))
            )


def pay_both(now: Any) -> Any:
    """A payment import's cancel of reminders 1 and 2 (their invoices paid)."""
    return lambda session: state.cancel(
        session, [1, 2], from_states=WAITING, reason="paid", now=now
    )


def test_a_payment_does_not_wait_for_a_reminder_the_worker_cancelled_at_its_turn(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The worker cancelled reminder 1 at its turn (a reply asked it to stop) and is about to put
    reminder 2 back; a payment of both comes in between. It leaves 1 to the worker (its stop is
    already asked for) and asks 2 to stop, which the worker then cancels instead of putting it
    back."""
    two_sending(runtime, tmp_path, mail_env)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
        session.execute(update(Reminder).where(Reminder.id == 1).values(cancel_reason="replied"))
    worker = _sender_env(runtime, database_url)
    with ThreadPoolExecutor(1) as pool, worker.writing() as session:
        state.transition(
            session,
            [1],
            from_states=(state.SENDING,),
            to=state.CANCELLED,
            now=now,
            events=[("reminder.cancelled", {"reason": "replied"})],
            cancel_reason="replied",
        )
        payment = meanwhile(pool, runtime, pay_both(now))
        state.back_to_approved(session, [2], now=now, events=[])
    worker.close()
    assert payment.result() == []  # 2 was `sending`: asked to stop
    assert states(runtime) == {1: "cancelled", 2: "cancelled"}
    assert cancelled_events(runtime) == {1: {"reason": "replied"}, 2: {"reason": "paid"}}


def test_a_payment_while_the_worker_stores_a_sent_one_and_puts_another_back_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The worker stores its batch: reminder 1 sent, reminder 2 held at its turn (its window
    closed) and put back. Results are stored sent first, so 1 is written before 2; a payment of
    both comes right after 1's write. It waits for the worker, then cancels 2."""
    two_sending(runtime, tmp_path, mail_env)
    worker = _sender_env(runtime, database_url)
    claimed = {one.reminder_id: one for one in _claim_now(worker)}
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
    turns = Turns()
    sent = Delivery("sent", provider_id="p-1")
    turns.handed.append(Handed(claimed[1], claimed[1].outgoing, sent, now))
    turns.back(claimed[2], now)
    report = FlushReport()
    payments: list[Future[Any]] = []

    def pay() -> None:
        payments.append(meanwhile(pool, runtime, pay_both(now)))

    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(worker, pay),
        worker.writing() as session,
    ):
        settle(session, turns, report)
    worker.close()
    assert payments[0].result() == [2]
    assert report.sent == [1]
    assert states(runtime) == {1: "sent", 2: "cancelled"}
    assert cancelled_events(runtime) == {2: {"reason": "paid"}}


def test_a_recovery_of_reminders_past_their_lease_during_a_payment_of_them_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Reminders 1 and 2 are `sending` past their lease (their worker died), 2 due first. A
    payment of both locks them in (send_after, id) order and has taken 2 when the next run's
    recovery marks them `unknown`; the table holds 1 first, so a recovery that marked rows in
    the order it met them would hold 1 while waiting for 2, which the payment asks for next. It
    waits for the payment instead, holding neither, and then marks both with its stop."""
    two_sending(runtime, tmp_path, mail_env)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(
            update(Reminder).values(state="sending", updated_at=now - LEASE - timedelta(minutes=1))
        )
    with runtime.engine.connect() as connection:  # the table in id order: 1 met first
        connection.execute(text("CLUSTER reminders USING reminders_pkey"))
        connection.commit()
        met = connection.execute(text("SELECT id FROM reminders ORDER BY ctid")).scalars()
        assert list(met) == [1, 2]
    worker = _sender_env(runtime, database_url)
    with ThreadPoolExecutor(1) as pool, runtime.writing() as session:
        state.lock(session, [Reminder.id == 2])  # the payment's lock, as far as it has come
        recovery = meanwhile(pool, worker, lambda session: recover(session, now))
        assert pay_both(now)(session) == []  # both `sending`: asked to stop
    worker.close()
    assert recovery.result() == {1: "paid", 2: "paid"}
    assert states(runtime) == {1: "unknown", 2: "unknown"}


def both_held_back(runtime: Runtime, database_url: str) -> tuple[Runtime, Turns]:
    """The worker's claim of reminders 1 and 2, both now `sending` and held back at their turns:
    storing them puts them back to `approved`, or cancels those asked to stop meanwhile."""
    worker = _sender_env(runtime, database_url)
    claimed = {one.reminder_id: one for one in _claim_now(worker)}
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
    turns = Turns()
    for reminder_id in (1, 2):
        turns.back(claimed[reminder_id], now)
    return worker, turns


def while_the_worker_stores(
    runtime: Runtime, worker: Runtime, turns: Turns, work: Callable[[Session], Any]
) -> tuple[Any, FlushReport]:
    """Run `work` on `runtime`; right after its first change of a reminder, the worker stores
    `turns` (locking 2 then 1, as state.lock orders them). Returns what `work` returned and the
    worker's report."""
    report = FlushReport()
    stored: list[Future[Any]] = []

    def store() -> None:
        stored.append(meanwhile(pool, worker, lambda session: settle(session, turns, report)))

    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(runtime, store),
        runtime.writing() as session,
    ):
        done = work(session)
    worker.close()
    stored[0].result()
    return done, report


def test_a_payment_closing_one_invoice_and_reducing_another_waits_for_the_worker_storing_both(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """A bank file pays customer 2's invoice and part of customer 1's: reminder 1 is cancelled
    as superseded and reminder 2 as paid, each reason's cancel in turn, 1 first although 2 comes
    first in (send_after, id). The worker storing both (2, then 1) comes right after the first
    cancel; the payment has locked both already, in order, so the worker waits for it, then
    cancels each with the stop asked for."""
    two_sending(runtime, tmp_path, mail_env)
    worker, turns = both_held_back(runtime, database_url)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(
            update(Invoice).where(Invoice.customer_id == 2).values(status="paid", balance=0)
        )
        invoice_ids = list(session.scalars(select(Invoice.id).order_by(Invoice.customer_id)))

    def pay(session: Session) -> list[int]:
        return cancel_for_invoices(session, invoice_ids, now)

    cancelled, report = while_the_worker_stores(runtime, worker, turns, pay)
    assert cancelled == []  # both `sending`: asked to stop
    assert report.cancelled == {1: "superseded", 2: "paid"}
    assert states(runtime) == {1: "cancelled", 2: "cancelled"}
    assert cancelled_events(runtime) == {1: {"reason": "superseded"}, 2: {"reason": "paid"}}


def test_a_ledger_import_paying_one_invoice_and_moving_another_due_date_waits_for_the_worker(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """A ledger import pays customer 1's invoice and moves customer 2's due date: it cancels the
    paid first, then the moved, so reminder 1 before reminder 2, which comes first in
    (send_after, id). The worker storing both comes right after the first cancel; the import
    has locked every reminder it cancels already, in order, so the worker waits for it."""
    two_sending(runtime, tmp_path, mail_env)
    worker, turns = both_held_back(runtime, database_url)
    now = runtime.clock.now()
    paid, moved = a_week_late(2)
    batch = read_ledger_csv(
        write(
            tmp_path / "m.csv", [{**paid, "balance": "0.00"}, {**moved, "due_date": "2026-03-10"}]
        )
    )

    def import_it(session: Session) -> ImportSummary:
        return apply_batch(session, batch, now)

    summary, report = while_the_worker_stores(runtime, worker, turns, import_it)
    assert summary.cancelled_reminders == []  # both `sending`: asked to stop
    assert report.cancelled == {1: "paid", 2: "due_date_changed"}
    assert states(runtime) == {1: "cancelled", 2: "cancelled"}
    assert cancelled_events(runtime) == {1: {"reason": "paid"}, 2: {"reason": "due_date_changed"}}


def test_a_ledger_import_renaming_a_contact_and_paying_its_invoice_waits_for_a_refusal_of_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The mail server refused the address (550 5.1.1): the worker fails the email, then marks
    its contact's address unusable. A ledger import comes right after the email's change: it
    renames the contact and pays the invoice, whose waiting reminders it cancels. It locks them
    before it writes the contact, so it waits for the worker instead of holding the contact the
    worker needs next, and both are stored."""
    approved(mail_env, runtime, tmp_path, customers=1)
    worker = _sender_env(runtime, database_url)
    (claimed,) = _claim_now(worker)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
    refused = Delivery("permanent", error="550 5.1.1 user unknown", address_unusable=True)
    handed = Handed(claimed, claimed.outgoing, refused, now)
    (row,) = a_week_late(1)
    batch = read_ledger_csv(
        write(tmp_path / "m.csv", [{**row, "contact_name": "Dana Reyes", "balance": "0.00"}])
    )
    imports: list[Future[Any]] = []

    def import_now() -> None:
        imports.append(meanwhile(pool, runtime, lambda session: apply_batch(session, batch, now)))

    report = FlushReport()
    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(worker, import_now),
        worker.writing() as session,
    ):
        record(session, handed, report)
    worker.close()
    summary = imports[0].result()
    assert (summary.contacts_updated, summary.invoices_paid) == (1, ["I-1"])
    assert report.failed == [1] and states(runtime) == {1: "failed"}
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.name, contact.email_unusable_at) == ("Dana Reyes", now)


def withdrawing_import(runtime: Runtime, tmp_path: Path, cli: Any) -> Callable[[Session], Any]:
    """Reminder 1 a text `sending` to a contact with consent; returns a ledger import that
    withdraws the consent (and so cancels the contact's waiting texts)."""
    approved(cli, runtime, tmp_path, customers=1)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", channel="sms", updated_at=now))
        session.execute(update(Contact).values(phone=PHONE, sms_consent=True))
    withdrawn = ContactRecord(None, "ap@c1.example", PHONE, False, "m.csv row 2")
    batch = LedgerBatch(
        "csv", "m.csv", customers={"C-1": CustomerRecord("C-1", "Customer 1", contacts=[withdrawn])}
    )
    return lambda session: apply_batch(session, batch, now)


def test_a_ledger_import_withdrawing_consent_during_a_failure_report_of_a_text_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Twilio reports the text undelivered (30005, an unknown number): the report fails the text,
    then marks its contact's number unusable. In between, a ledger import withdraws the
    contact's consent to texts. The import waits for the report, and both are stored."""
    ledger = withdrawing_import(runtime, tmp_path, mail_env)
    now = runtime.clock.now()
    imports: list[Future[Any]] = []

    def import_now() -> None:
        imports.append(meanwhile(pool, runtime, ledger))

    twilio = _sender_env(runtime, database_url)
    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(twilio, import_now),
        twilio.writing() as session,
    ):
        sms_status(session, "SM1", "undelivered", "30005", now, reminder_id=1)
    twilio.close()
    assert imports[0].result().contacts_updated == 1
    assert states(runtime) == {1: "failed"}
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.sms_consent, contact.sms_unusable_at) == (False, now)


def test_a_ledger_import_withdrawing_consent_during_a_stop_report_of_a_text_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Twilio reports the text failed with 21610 (the person replied STOP): the report fails the
    text and opts the number out; a ledger import withdrawing the contact's consent comes right
    after the report's change of the contact. It waits for the report, and both are stored."""
    ledger = withdrawing_import(runtime, tmp_path, mail_env)
    now = runtime.clock.now()
    imports: list[Future[Any]] = []

    def import_now() -> None:
        imports.append(meanwhile(pool, runtime, ledger))

    twilio = _sender_env(runtime, database_url)
    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(twilio, import_now, table="contacts"),
        twilio.writing() as session,
    ):
        sms_status(session, "SM1", "failed", "21610", now, reminder_id=1)
    twilio.close()
    assert imports[0].result().contacts_updated == 1
    assert states(runtime) == {1: "failed"}
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.sms_consent, contact.sms_opted_out_at) == (False, now)


def test_a_stop_texted_while_the_worker_stores_a_refusal_of_the_same_text_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Twilio refused the text with 21610 (the number had replied STOP): the worker fails it,
    then opts its contact's number out. The STOP itself comes in right after the text's change;
    it waits for the worker, and the number is opted out once."""
    approved(mail_env, runtime, tmp_path, customers=1)
    worker = _sender_env(runtime, database_url)
    (claimed,) = _claim_now(worker)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", channel="sms", updated_at=now))
        session.execute(update(Contact).values(phone=PHONE, sms_consent=True))
    refused = Delivery("permanent", error="Twilio 21610", opted_out=True)
    handed = Handed(claimed, replace(claimed.outgoing, channel="sms", to=PHONE), refused, now)
    stops: list[Future[Any]] = []

    def texted_stop(session: Session) -> Any:
        return handle_sms(session, PHONE, "STOP", "SM9", now, ReplyRules("k" * 32), None, "Acme")

    def stop_now() -> None:
        stops.append(meanwhile(pool, runtime, texted_stop))

    report = FlushReport()
    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(worker, stop_now),
        worker.writing() as session,
    ):
        record(session, handed, report)
    worker.close()
    assert stops[0].result().outcome == "opt_out"
    assert report.failed == [1] and states(runtime) == {1: "failed"}
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert contact.sms_opted_out_at == now


def _bounce_of(reminder_id: int) -> bytes:
    """A mail server's delivery report: the reminder's address does not exist (5.1.1)."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        f"To: bounce+{token(SECRET, reminder_id, 'bounce')}@b.example\r\n"
        "Subject: Delivery Status Notification (Failure)\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        "Final-Recipient: rfc822; ap@c1.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_a_bounce_while_the_worker_stores_a_refusal_of_the_same_email_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The mail server refused the address (550 5.1.1): the worker fails the email, then marks
    its contact's address unusable. The bounce of the same email comes in right after the
    email's change; it waits for the worker, and one escalation holds both."""
    approved(mail_env, runtime, tmp_path, customers=1)
    worker = _sender_env(runtime, database_url)
    (claimed,) = _claim_now(worker)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
    refused = Delivery("permanent", error="550 5.1.1 user unknown", address_unusable=True)
    handed = Handed(claimed, claimed.outgoing, refused, now)
    raw = _bounce_of(1)
    bounces: list[Future[Any]] = []

    def bounced(session: Session) -> Any:
        return handle_email(session, parse(raw), raw, now, ReplyRules(SECRET), None)

    def bounce_now() -> None:
        bounces.append(meanwhile(pool, runtime, bounced))

    report = FlushReport()
    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(worker, bounce_now),
        worker.writing() as session,
    ):
        record(session, handed, report)
    worker.close()
    assert bounces[0].result().outcome == "bounce"
    assert report.failed == [1] and states(runtime) == {1: "failed"}
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert contact.email_unusable_at == now


def test_a_ledger_import_moving_the_address_while_the_worker_stores_a_refusal_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The mail server refused the address (550 5.1.1): the worker fails the email, then marks
    its contact's address unusable. In between, a ledger import gives the contact another
    address, which cancels the emails waiting for the old one. The import waits for the worker,
    and both are stored: the email failed, the contact at its new address without the mark."""
    approved(mail_env, runtime, tmp_path, customers=1)
    worker = _sender_env(runtime, database_url)
    (claimed,) = _claim_now(worker)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
    refused = Delivery("permanent", error="550 5.1.1 user unknown", address_unusable=True)
    handed = Handed(claimed, claimed.outgoing, refused, now)
    moved = ContactRecord(None, "billing@c1.example", None, None, None)
    batch = LedgerBatch(
        "csv", "m.csv", customers={"C-1": CustomerRecord("C-1", "Customer 1", contacts=[moved])}
    )
    imports: list[Future[Any]] = []

    def import_now() -> None:
        imports.append(meanwhile(pool, runtime, lambda session: apply_batch(session, batch, now)))

    report = FlushReport()
    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(worker, import_now),
        worker.writing() as session,
    ):
        record(session, handed, report)
    worker.close()
    assert imports[0].result().contacts_updated == 1
    assert report.failed == [1] and states(runtime) == {1: "failed"}
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.email, contact.email_unusable_at) == ("billing@c1.example", None)


def test_a_ledger_import_giving_a_new_number_during_a_failure_report_of_a_text_waits_for_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Twilio reports the text undelivered (30005, an unknown number): the report fails the text,
    then marks its contact's number unusable. In between, a ledger import gives the contact
    another number, with consent to texts at it, which cancels the texts waiting for the old
    one. The import waits for the report, and both are stored: the text failed, the contact at
    its new number (with its consent) without the old number's mark."""
    approved(mail_env, runtime, tmp_path, customers=1)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", channel="sms", updated_at=now))
        session.execute(update(Contact).values(phone=PHONE, sms_consent=True))
    renumbered = ContactRecord(None, "ap@c1.example", "+13125550177", True, "m.csv row 2")
    batch = LedgerBatch(
        "csv",
        "m.csv",
        customers={"C-1": CustomerRecord("C-1", "Customer 1", contacts=[renumbered])},
    )
    imports: list[Future[Any]] = []

    def import_now() -> None:
        imports.append(meanwhile(pool, runtime, lambda session: apply_batch(session, batch, now)))

    twilio = _sender_env(runtime, database_url)
    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(twilio, import_now),
        twilio.writing() as session,
    ):
        sms_status(session, "SM1", "undelivered", "30005", now, reminder_id=1)
    twilio.close()
    assert imports[0].result().contacts_updated == 1
    assert states(runtime) == {1: "failed"}
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.phone, contact.sms_consent, contact.sms_unusable_at) == (
        "+13125550177",
        True,
        None,
    )


def sharing_a_number(runtime: Runtime) -> None:
    """Customers 1 and 2's contacts share one phone number (a bookkeeper who does both)."""
    with runtime.writing() as session:
        session.execute(update(Contact).values(phone=PHONE, sms_consent=True))


@pytest.mark.parametrize(
    ("body", "triage"),
    [("STOP", None), ("Please stop texting me", Triage("opt_out", 0.9, None, "said stop"))],
)
def test_an_opt_out_from_a_number_two_customers_share_waits_for_the_worker_storing_both(
    mail_env: Any,
    runtime: Runtime,
    tmp_path: Path,
    database_url: str,
    body: str,
    triage: Triage | None,
) -> None:
    """A text asks to stop from a number customers 1 and 2 share: the opt-out cancels what waits
    for each customer, 1 first although reminder 2 comes first in (send_after, id). The worker
    storing both (2, then 1) comes right after the first cancel; the opt-out has locked both
    already, in order, so the worker waits for it, then cancels each with the stop asked for."""
    two_sending(runtime, tmp_path, mail_env)
    sharing_a_number(runtime)
    worker, turns = both_held_back(runtime, database_url)
    now = runtime.clock.now()

    def texted(session: Session) -> Any:
        return handle_sms(session, PHONE, body, "SM9", now, ReplyRules("k" * 32), triage, "Acme")

    result, report = while_the_worker_stores(runtime, worker, turns, texted)
    assert result.outcome == ("opt_out" if triage is None else "unmatched")
    assert report.cancelled == {1: "opted_out", 2: "opted_out"}
    assert states(runtime) == {1: "cancelled", 2: "cancelled"}
    with runtime.sessions() as session:
        opted_out = session.scalars(select(Contact.sms_opted_out_at)).all()
    assert opted_out == [now, now]
