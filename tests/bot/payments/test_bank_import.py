"""`arbot import-payments` end to end: the bank CSV matched against the ledger, what is applied,
what waits for a person in Slack, and re-importing the same file changing nothing."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from threading import Event, Thread, current_thread
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.orm import Session

from bot.core.errors import UserError
from bot.core.models import (
    Customer,
    Invoice,
    Payment,
    PaymentAllocation,
    PaymentReview,
    Reminder,
)
from bot.core.models import Event as AuditEvent
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.ledger.upsert import apply_batch
from bot.payments import bank_import
from bot.payments import reviews as review_posting
from bot.payments.bulk_record import PaymentsInBulk
from bot.payments.reconcile import Allocation, Matcher
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from integrations.csv_payments import read_payments
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write
from tests.support.slack_requests import PATIENCE, wait_for

HEADER = ["date", "amount", "currency", "reference", "payer"]


def _bank(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _ledger(tmp_path: Path) -> Path:
    return write(
        tmp_path / "ledger.csv",
        [
            row(
                invoice_number="INV-1001",
                amount="1200.00",
                balance="1200.00",
                due_date="2026-03-09",
            ),
            row(
                invoice_number="INV-1002", amount="450.00", balance="450.00", due_date="2026-03-09"
            ),
            row(
                customer_id="C-2",
                customer_name="Harbor Dental LLC",
                invoice_number="INV-2001",
                amount="800.00",
                balance="800.00",
                email="billing@harbor.example",
                due_date="2026-03-09",
            ),
            row(
                customer_id="C-2",
                customer_name="Harbor Dental LLC",
                invoice_number="INV-2002",
                amount="800.00",
                balance="800.00",
                email="billing@harbor.example",
                due_date="2026-03-10",
            ),
        ],
    )


def _balances(database_url: str) -> dict[str, tuple[Decimal, str]]:
    runtime = start(load_settings(env_file=None, database_url=database_url), upgrade=False)
    try:
        with runtime.sessions() as session:
            rows = session.execute(select(Invoice.number, Invoice.balance, Invoice.status)).all()
            return {n: (b, s) for n, b, s in rows}
    finally:
        runtime.close()


def test_import_payments_applies_the_sure_ones_and_holds_the_rest(
    cli: Any, database_url: str, tmp_path: Path
) -> None:
    assert cli("import-csv", str(_ledger(tmp_path))).code == 0
    bank = _bank(
        tmp_path / "bank.csv",
        [
            ["2026-03-14", "1200.00", "USD", "Payment INV-1001 thanks", "RIDGELINE ROOFING"],
            ["2026-03-14", "800.00", "USD", "March", "Harbor Dental"],  # two invoices of 800
            ["2026-03-14", "99.00", "USD", "", "Nobody we know"],
        ],
    )

    result = cli("import-payments", str(bank), "--json")

    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["applied"], doc["to_review"], doc["already_imported"]) == (1, 2, 0)
    assert doc["invoices_paid"] == 1
    assert doc["amount_applied"] == {"USD": "1200.00"}
    balances = _balances(database_url)
    assert balances["INV-1001"] == (Decimal(0), "paid")
    assert balances["INV-2001"] == (Decimal("800.00"), "open")  # ambiguous: a person decides
    assert balances["INV-2002"] == (Decimal("800.00"), "open")

    again = cli("import-payments", str(bank), "--json")

    assert json.loads(again.stdout)["already_imported"] == 3
    assert _balances(database_url) == balances


def test_the_amount_applied_is_written_to_each_currencys_own_decimal_places(
    cli: Any, tmp_path: Path
) -> None:
    others = {"phone": "", "sms_consent": "", "due_date": "2026-03-09"}
    ledger = write(
        tmp_path / "ledger.csv",
        [
            row(invoice_number="INV-1001", **others),
            row(
                customer_id="C-3",
                customer_name="Kyoto Tile Works",
                email="ap@kyoto.example",
                invoice_number="INV-3001",
                currency="JPY",
                amount="5000",
                balance="5000",
                **others,
            ),
            row(
                customer_id="C-4",
                customer_name="Gulf Freight",
                email="ap@gulf.example",
                invoice_number="INV-4001",
                currency="KWD",
                amount="1.250",
                balance="1.250",
                **others,
            ),
        ],
    )
    assert cli("import-csv", str(ledger)).code == 0
    bank = _bank(
        tmp_path / "bank.csv",
        [
            ["2026-03-14", "5000", "JPY", "Payment INV-3001", "Kyoto Tile Works"],
            ["2026-03-14", "1.25", "KWD", "Payment INV-4001", "Gulf Freight"],
        ],
    )

    result = cli("import-payments", str(bank), "--json")

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["amount_applied"] == {"JPY": "5000", "KWD": "1.250"}
    usd = _bank(
        tmp_path / "usd.csv", [["2026-03-14", "1200", "USD", "Payment INV-1001", "Ridgeline"]]
    )
    text = cli("import-payments", str(usd))
    assert text.code == 0, text.stderr
    assert "usd.csv: 1 payment(s) applied (1200.00 USD)" in text.stdout


def test_a_bad_bank_file_says_which_row_and_field_and_imports_nothing(
    cli: Any, database_url: str, tmp_path: Path
) -> None:
    assert cli("import-csv", str(_ledger(tmp_path))).code == 0
    bank = _bank(
        tmp_path / "bank.csv",
        [
            ["2026-03-14", "1200.00", "USD", "INV-1001", "Ridgeline"],
            ["2026-03-14", "12,00.0x", "USD", "INV-1002", "Ridgeline"],
        ],
    )

    result = cli("import-payments", str(bank))

    assert result.code == 1
    assert "bank.csv" in result.stderr and "row 3" in result.stderr and "amount" in result.stderr
    assert _balances(database_url)["INV-1001"] == (Decimal("1200.00"), "open")


@pytest.fixture
def ledger_runtime(runtime: Runtime, tmp_path: Path) -> Runtime:
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(_ledger(tmp_path)), runtime.clock.now())
        run_plan(
            session,
            PlanRules.from_settings(runtime.settings),
            runtime.today(),
            runtime.clock.now(),
            False,
        )
    return runtime


def test_a_person_picks_one_candidate_once(ledger_runtime: Runtime, tmp_path: Path) -> None:
    rt = ledger_runtime
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        summary = bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    [review_id] = summary.reviews

    with rt.writing() as session:
        result, outcome = bank_import.decide_review(
            session, review_id, 1, "U0APPROVER", rt.clock.now()
        )
    with rt.writing() as session:
        second, _ = bank_import.decide_review(session, review_id, 0, "U0SECOND", rt.clock.now())

    assert result == "applied" and second.startswith("already applied")
    with rt.sessions() as session:
        balances = dict(session.execute(select(Invoice.number, Invoice.balance)).all())
        allocated = session.scalar(select(func.sum(PaymentAllocation.amount)))
        cancelled = session.scalars(
            select(Reminder.cancel_reason).where(Reminder.state == "cancelled")
        ).all()
    assert balances["INV-2002"] == Decimal(0) and balances["INV-2001"] == Decimal("800.00")
    assert allocated == Decimal("800.00")  # never more than the payment, never twice
    assert len(outcome.closed) == 1
    # Harbor's one reminder quoted both invoices: its amounts are stale now
    assert cancelled == ["superseded"]


def test_review_messages_fit_slacks_limits_and_carry_the_options(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    from tests.support.fake_slack import validate_blocks

    rt = ledger_runtime
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    posted = review_posting.post_open(
        rt, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FIN"
    )
    assert len(posted) == 1
    message = slack_api.calls("chat.postMessage")[-1]
    assert validate_blocks(message["blocks"]) == []
    text = json.dumps(message["blocks"])
    assert "INV-2001" in text and "INV-2002" in text and "Leave unmatched" in text
    with rt.sessions() as session:
        review = session.scalars(select(PaymentReview)).one()
        assert review.slack_ts is not None
        assert session.scalar(select(func.count()).select_from(Payment)) == 1


def test_a_review_slack_did_not_take_is_posted_by_the_next_sweep(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    from bot.escalations.sweeps import sweep

    rt = ledger_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "channel_not_found")
    assert review_posting.post_open(rt, chat, "C0FIN") == []

    settings = rt.settings.model_copy(update={"finance_channel": "C0FIN"})
    rt.settings = settings  # type: ignore[misc]
    report = sweep(rt, chat)

    assert len(report.reviews_posted) == 1
    with rt.sessions() as session:
        assert session.scalars(select(PaymentReview.slack_ts)).one() is not None


def test_a_review_another_process_is_posting_is_left_to_it_until_its_claim_lapses(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    from datetime import timedelta

    rt = ledger_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
        review = session.scalars(select(PaymentReview)).one()
        review.slack_claimed_at = rt.clock.now()  # another replica is posting it right now
        review_id = review.id

    assert review_posting.post_open(rt, chat, "C0FIN") == []
    assert slack_api.calls("chat.postMessage") == []

    with rt.writing() as session:  # ... and died doing it
        review = session.get(PaymentReview, review_id)
        assert review is not None
        review.slack_claimed_at = rt.clock.now() - timedelta(minutes=11)
    assert review_posting.post_open(rt, chat, "C0FIN") == [review_id]
    assert review_posting.post_open(rt, chat, "C0FIN") == []  # posted once


def test_a_review_slack_refused_is_given_back_at_once(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    rt = ledger_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "fatal_error")
    assert review_posting.post_open(rt, chat, "C0FIN") == []
    with rt.sessions() as session:
        review = session.scalars(select(PaymentReview)).one()
        assert review.slack_claimed_at is None and review.slack_ts is None
    assert review_posting.post_open(rt, chat, "C0FIN") == [review.id]


# --- Two writers at once (PostgreSQL, where they run side by side) ------------------------------

POSTGRES_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]


def _backend(session: Session, pids: list[int]) -> None:
    pids.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _waits_for_the_ledger_lock(runtime: Runtime, pids: list[int]) -> bool:
    """Whether the backend in `pids` is waiting for an advisory lock (the ledger's)."""
    if not pids:
        return False
    with runtime.sessions() as session:
        waiting = session.execute(
            text("SELECT wait_event FROM pg_stat_activity WHERE pid = :pid"), {"pid": pids[0]}
        ).scalar()
    return waiting == "advisory"


@contextmanager
def _paused_before_invoice_updates(runtime: Runtime) -> Iterator[tuple[Event, Event]]:
    """(reached, go): a thread named "import" stops before it updates invoices until `go`."""
    reached, go = Event(), Event()

    def pause(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if current_thread().name == "import" and statement.startswith("UPDATE invoices"):
            reached.set()
            assert go.wait(PATIENCE)

    event.listen(runtime.engine, "before_cursor_execute", pause)
    try:
        yield reached, go
    finally:
        event.remove(runtime.engine, "before_cursor_execute", pause)


def _in_thread(name: str, work: Callable[[], None], failures: list[BaseException]) -> Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # the test reads it
            failures.append(exc)

    thread = Thread(target=run, name=name)
    thread.start()
    return thread


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
def test_the_same_file_imported_twice_at_once_records_each_payment_once(
    ledger_runtime: Runtime, tmp_path: Path
) -> None:
    rt = ledger_runtime
    bank = _bank(
        tmp_path / "b.csv",
        [
            ["2026-03-14", "1200.00", "USD", "INV-1001", "Ridgeline Roofing"],
            ["2026-03-14", "800.00", "USD", "March", "Harbor Dental"],
        ],
    )
    payments = read_payments(bank)
    pids: list[int] = []
    failures: list[BaseException] = []
    second: list[bank_import.BankImportSummary] = []

    def import_again() -> None:
        with rt.writing() as session:
            _backend(session, pids)
            second.append(bank_import.import_payments(session, payments, "b.csv", rt.clock.now()))

    with rt.writing() as session:
        first = bank_import.import_payments(session, payments, "b.csv", rt.clock.now())
        thread = _in_thread("second", import_again, failures)
        wait_for(lambda: _waits_for_the_ledger_lock(rt, pids))
    thread.join(PATIENCE)

    assert failures == []
    assert (first.applied, first.to_review, first.already_imported) == (1, 1, 0)
    assert (second[0].applied, second[0].to_review, second[0].already_imported) == (0, 0, 2)
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Payment)) == 2
        assert session.scalar(select(func.count()).select_from(PaymentReview)) == 1
        assert session.scalar(select(func.sum(PaymentAllocation.amount))) == Decimal("1200.00")


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
def test_a_persons_pick_waits_for_an_import_in_progress_and_no_invoice_is_paid_twice(
    ledger_runtime: Runtime, tmp_path: Path
) -> None:
    rt = ledger_runtime
    ambiguous = _bank(
        tmp_path / "a.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]]
    )
    with rt.writing() as session:
        summary = bank_import.import_payments(
            session, read_payments(ambiguous), "a.csv", rt.clock.now()
        )
    [review_id] = summary.reviews
    with rt.sessions() as session:
        review = session.get(PaymentReview, review_id)
        assert review is not None
        numbers = dict(session.execute(select(Invoice.id, Invoice.number)).all())
    options = [numbers[c["allocations"][0]["invoice_id"]] for c in review.candidates]
    paying = _bank(
        tmp_path / "p.csv", [["2026-03-15", "800.00", "USD", "INV-2001", "Harbor Dental"]]
    )
    pids: list[int] = []
    failures: list[BaseException] = []
    imported: list[bank_import.BankImportSummary] = []
    picked: list[str] = []

    def run_import() -> None:
        with rt.writing() as session:
            imported.append(
                bank_import.import_payments(session, read_payments(paying), "p.csv", rt.clock.now())
            )

    def pick() -> None:
        with rt.writing() as session:
            _backend(session, pids)
            picked.append(
                bank_import.decide_review(
                    session, review_id, options.index("INV-2001"), "U0APPROVER", rt.clock.now()
                )[0]
            )

    with _paused_before_invoice_updates(rt) as (reached, go):
        importing = _in_thread("import", run_import, failures)
        wait_for(reached.is_set)  # matched, about to write what it matched
        picking = _in_thread("pick", pick, failures)
        wait_for(lambda: _waits_for_the_ledger_lock(rt, pids))
        go.set()
        importing.join(PATIENCE)
        picking.join(PATIENCE)

    assert failures == [] and imported[0].applied == 1 and len(picked) == 1
    # the pick applied nothing, and says so: the whole payment is left unapplied
    assert picked[0].startswith("Applied $0.00") and "$800.00 is left unapplied" in picked[0]
    with rt.sessions() as session:
        paid = session.scalar(
            select(func.sum(PaymentAllocation.amount))
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .where(Invoice.number == "INV-2001")
        )
    assert paid == Decimal("800.00")
    assert _balances(rt.settings.database_url)["INV-2001"] == (Decimal(0), "paid")


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
def test_an_import_whose_invoices_changed_under_it_is_refused_whole(
    ledger_runtime: Runtime, tmp_path: Path
) -> None:
    rt = ledger_runtime
    paying = _bank(tmp_path / "p.csv", [["2026-03-15", "1200.00", "USD", "INV-1001", "Ridgeline"]])
    failures: list[BaseException] = []

    def run_import() -> None:
        with rt.writing() as session:
            bank_import.import_payments(session, read_payments(paying), "p.csv", rt.clock.now())

    with _paused_before_invoice_updates(rt) as (reached, go):
        importing = _in_thread("import", run_import, failures)
        wait_for(reached.is_set)
        with rt.writing() as session:  # a writer that does not take the ledger's lock
            session.execute(
                update(Invoice).where(Invoice.number == "INV-1001").values(balance=Decimal(700))
            )
        go.set()
        importing.join(PATIENCE)

    assert len(failures) == 1 and isinstance(failures[0], UserError)
    assert "nothing was recorded: import the file again" in str(failures[0])
    assert _balances(rt.settings.database_url)["INV-1001"] == (Decimal(700), "open")
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Payment)) == 0
        received = select(func.count()).where(AuditEvent.kind == "payment.received")
        assert session.scalar(received) == 0


def test_a_bank_file_cancels_the_reminders_of_what_it_paid_paid_or_superseded(
    ledger_runtime: Runtime, tmp_path: Path
) -> None:
    rt = ledger_runtime
    bank = _bank(
        tmp_path / "b.csv",
        [
            ["2026-03-14", "1650.00", "USD", "INV-1001 INV-1002", "Ridgeline Roofing"],
            ["2026-03-14", "800.00", "USD", "INV-2001", "Harbor Dental"],
        ],
    )
    with rt.writing() as session:
        summary = bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    with rt.sessions() as session:
        reasons = dict(
            session.execute(
                select(Reminder.customer_id, Reminder.cancel_reason).where(
                    Reminder.state == "cancelled"
                )
            ).all()
        )
        customers = dict(session.execute(select(Invoice.number, Invoice.customer_id)).all())
    assert summary.applied == 2 and len(summary.outcome.cancelled) == 2
    assert reasons == {customers["INV-1001"]: "paid", customers["INV-2001"]: "superseded"}


def test_payments_whose_invoices_changed_since_they_were_read_store_nothing(
    ledger_runtime: Runtime, tmp_path: Path
) -> None:
    """The invoices' new balances are written on the condition of the balances read; one that
    changed in between refuses the whole file, on both databases' ways of writing them."""
    bank = _bank(
        tmp_path / "b.csv",
        [
            ["2026-03-14", "1200.00", "USD", "INV-1001", "Ridgeline Roofing"],
            ["2026-03-14", "100.00", "USD", "INV-1002", "Ridgeline Roofing"],
        ],
    )
    paid, part = read_payments(bank)
    now = ledger_runtime.clock.now()
    with ledger_runtime.writing() as session:
        invoices = bank_import.open_invoices(session)
        ids = {invoice.number: invoice.id for invoice in invoices}
        recorded = PaymentsInBulk(bank_import.SOURCE, invoices, now)
        recorded.pay(paid, None, [Allocation(ids["INV-1001"], Decimal("1200.00"))])
        recorded.pay(part, None, [Allocation(ids["INV-1002"], Decimal("100.00"))])
        session.execute(
            update(Invoice).where(Invoice.number == "INV-1002").values(balance=Decimal("449.00"))
        )
        with pytest.raises(UserError, match="the open invoices changed"):
            recorded.store(session)
        session.rollback()

    with ledger_runtime.writing() as session:
        invoices = bank_import.open_invoices(session)
        ids = {invoice.number: invoice.id for invoice in invoices}
        recorded = PaymentsInBulk(bank_import.SOURCE, invoices, now)
        recorded.pay(paid, None, [Allocation(ids["INV-1001"], Decimal("1200.00"))])
        recorded.pay(part, None, [Allocation(ids["INV-1002"], Decimal("100.00"))])
        recorded.store(session)
    with ledger_runtime.sessions() as session:
        stored = dict(session.execute(select(Invoice.number, Invoice.balance)).all())
        statuses = dict(session.execute(select(Invoice.number, Invoice.status)).all())
    assert stored["INV-1001"] == Decimal(0) and statuses["INV-1001"] == "paid"
    assert stored["INV-1002"] == Decimal("350.00") and statuses["INV-1002"] == "open"


def test_a_file_is_matched_against_only_the_invoices_it_can_name_and_decided_as_over_the_book(
    ledger_runtime: Runtime, tmp_path: Path
) -> None:
    """Only the payers' invoices and those whose number a reference may name are read; each
    payment is decided as a matcher over every open invoice decides it."""
    bank = _bank(
        tmp_path / "b.csv",
        [
            ["2026-03-14", "450.00", "USD", "", "Ridgeline Roofing"],  # the payer's exact amount
            ["2026-03-14", "800.00", "USD", "INV-2001", "Someone Else"],  # named by number only
            ["2026-03-14", "1200.00", "USD", "re 2001", "RIDGELINE ROOFING INC"],  # another's
        ],
    )
    payments = read_payments(bank)
    with ledger_runtime.writing() as session:
        names = {c: [name] for c, name in session.execute(select(Customer.id, Customer.name))}
        book = bank_import.open_invoices(session)
        read = bank_import.invoices_to_match(session, payments, names)
    assert sorted(i.number for i in read) == ["INV-1001", "INV-1002", "INV-2001"]
    over_book = Matcher(book, customer_aliases=names)
    over_read = Matcher(read, customer_aliases=names, references=[p.reference for p in payments])
    rules = []
    for paid in payments:
        decision = over_book.decide(paid)
        assert over_read.decide(paid) == decision
        rules.append(decision.auto.rule if decision.auto else decision.review_reason)
        if decision.auto is not None:
            over_book.apply(decision.auto)
            over_read.apply(decision.auto)
    assert rules[:2] == ["exact_amount", "reference"] and "already paid" in str(rules[2])


@pytest.mark.parametrize("scanning", [True, False])
def test_the_open_invoices_are_read_alike_by_a_scan_or_through_the_status_index(
    ledger_runtime: Runtime, monkeypatch: pytest.MonkeyPatch, scanning: bool
) -> None:
    with ledger_runtime.writing() as session:
        session.execute(update(Invoice).where(Invoice.number == "INV-1002").values(status="paid"))
        session.execute(update(Invoice).where(Invoice.number == "INV-2002").values(balance=0))
        monkeypatch.setattr(bank_import, "_scanning_is_cheaper", lambda _session: scanning)
        read = sorted(bank_import.open_invoices(session))
        session.rollback()
    assert [(i.number, i.customer_name, i.balance) for i in read] == [
        ("INV-1001", "Ridgeline Roofing", Decimal("1200.00")),
        ("INV-2001", "Harbor Dental LLC", Decimal("800.00")),
    ]


def test_a_payment_matching_seven_invoices_offers_all_seven_in_slack(
    runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    rows = [
        row(
            invoice_number=f"INV-300{n}",
            amount="100.00",
            balance="100.00",
            due_date=f"2026-02-1{n}",
        )
        for n in range(1, 8)
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "100.00", "USD", "", "Ridgeline Roofing"]])
    with runtime.writing() as session:
        summary = bank_import.import_payments(
            session, read_payments(bank), "b.csv", runtime.clock.now()
        )
    assert summary.to_review == 1

    review_posting.post_open(runtime, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FIN")

    blocks = slack_api.calls("chat.postMessage")[-1]["blocks"]
    text = json.dumps(blocks)
    assert "INV-3006" in text and "INV-3007" in text
    assert '"Apply 7"' in text
