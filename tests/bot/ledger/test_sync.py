"""`arbot connect quickbooks` and `arbot sync` end to end against the local QuickBooks fake: the
tokens stored encrypted, the ledger filled, a payment in the source stopping the follow-up, a
malformed record reported while the rest syncs, and sent reminders noted on the invoice."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Event, Invoice, Payment, Reminder, SourceToken, SyncState
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from tests.support.fake_quickbooks import (
    CLIENT_ID,
    CLIENT_SECRET,
    REALM,
    FakeQuickBooks,
    customer,
    invoice,
    payment,
)

KEY = "sync-test-secret-key-0123456789"


@pytest.fixture
def qb(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks().start()
    monkeypatch.setenv("QUICKBOOKS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("QUICKBOOKS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("QUICKBOOKS_API_URL", fake.url)
    monkeypatch.setenv("QUICKBOOKS_TOKEN_URL", fake.token_url)
    monkeypatch.setenv("QUICKBOOKS_AUTHORIZE_URL", fake.authorize_url)
    monkeypatch.setenv("ARBOT_SECRET_KEY", KEY)
    fake.customers = [
        customer("1", "Amy's Bird Sanctuary", "birds@amy.example", "(650) 555-3311"),
        customer("2", "Bill's Windsurf Shop", "bill@windsurf.example", "(415) 555-0199"),
    ]
    fake.invoices = [
        invoice("130", "1", "1037", 362.07, 362.07, due="2026-03-09"),
        invoice("131", "2", "1038", 85.0, 85.0, due="2026-03-09"),
    ]
    yield fake
    fake.stop()


def _connect(cli: Any, monkeypatch: pytest.MonkeyPatch, qb: FakeQuickBooks) -> Any:
    """Answer the prompt with the address the browser lands on (state read from the URL printed)."""
    import re

    class Stdin(io.StringIO):
        def readline(self, *args: Any) -> str:  # type: ignore[override]
            printed = sys.stdout.getvalue() if hasattr(sys.stdout, "getvalue") else ""
            state = re.search(r"state=([\w-]+)", printed)
            return (
                f"http://localhost:8765/callback?code=the-code&state={state.group(1) if state else ''}"
                f"&realmId={REALM}\n"
            )

    monkeypatch.setattr(sys, "stdin", Stdin())
    return cli("connect", "quickbooks")


def _rt(database_url: str) -> Runtime:
    return start(
        load_settings(env_file=None, database_url=database_url, secret_key=KEY), upgrade=False
    )


def test_connect_stores_the_tokens_encrypted_and_sync_fills_the_ledger(
    cli: Any, monkeypatch: pytest.MonkeyPatch, qb: FakeQuickBooks, database_url: str
) -> None:
    connected = _connect(cli, monkeypatch, qb)
    assert connected.code == 0, connected.stderr
    assert "Connected QuickBooks" in connected.stdout

    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            stored = session.scalars(select(SourceToken)).one()
        assert stored.tenant_id == REALM
        assert "qb-refresh" not in stored.ciphertext and "qb-access" not in stored.ciphertext

        synced = cli("sync")
        assert synced.code == 0, synced.stderr
        assert "quickbooks: 2 new invoice(s)" in synced.stdout
        with rt.sessions() as session:
            rows = session.execute(
                select(Invoice.number, Invoice.external_id, Invoice.balance)
            ).all()
            state = session.get(SyncState, "quickbooks")
        assert sorted(rows) == [
            ("1037", "130", Decimal("362.07")),
            ("1038", "131", Decimal("85.00")),
        ]
        assert state is not None and state.cursor
    finally:
        rt.close()


def test_a_payment_in_quickbooks_stops_the_waiting_reminder_and_notes_go_back(
    cli: Any, monkeypatch: pytest.MonkeyPatch, qb: FakeQuickBooks, database_url: str
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    rt = _rt(database_url)
    try:
        with rt.writing() as session:
            run_plan(
                session,
                PlanRules.from_settings(rt.settings),
                date(2026, 3, 16),
                rt.clock.now(),
                False,
            )
            reminders = {r.customer_id: r for r in session.scalars(select(Reminder))}
            assert len(reminders) == 2, [
                (r.customer_id, r.state, r.cancel_reason) for r in reminders.values()
            ]
            # Amy's reminder went out earlier today (as the send worker would record it)
            amy = session.scalars(select(Invoice).where(Invoice.number == "1037")).one()
            sent = reminders[amy.customer_id]
            sent.state = "sent"
            session.add(
                Event(
                    at=rt.clock.now(),
                    actor="system",
                    kind="reminder.sent",
                    customer_id=amy.customer_id,
                    reminder_id=sent.id,
                    payload={},
                )
            )
        # Bill pays in QuickBooks; one record comes back broken
        qb.invoices[1] = invoice(
            "131", "2", "1038", 85.0, 0.0, due="2026-03-09", updated="2026-03-16T09:00:00-07:00"
        )
        qb.payments = [
            payment("200", "2", 85.0, [("131", 85.0)], updated="2026-03-16T09:00:00-07:00")
        ]
        qb.invoices.append(
            invoice(
                "132",
                "1",
                "1039",
                10.0,
                10.0,
                due="not-a-date",
                updated="2026-03-16T09:00:00-07:00",
            )
        )

        synced = cli("sync")

        assert synced.code == 0, synced.stderr
        assert "1 paid" in synced.stdout and "1 waiting reminder(s) cancelled" in synced.stdout
        assert "1039" in synced.stderr or "132" in synced.stderr  # the broken record, by name
        with rt.sessions() as session:
            bill = session.scalars(select(Invoice).where(Invoice.number == "1038")).one()
            reminder = session.scalars(
                select(Reminder).where(Reminder.customer_id == bill.customer_id)
            ).one()
            recorded = session.scalars(select(Payment)).one()
        assert bill.status == "paid"
        assert (reminder.state, reminder.cancel_reason) == ("cancelled", "paid")
        assert (recorded.source, recorded.external_id, bill.balance) == (
            "quickbooks",
            "200",
            Decimal(0),
        )
        notes = [r for r in qb.requests if r.method == "POST" and r.path.endswith("/attachable")]
        assert len(notes) == 1 and "payment reminder" in notes[0].body["Note"]
        assert notes[0].body["AttachableRef"][0]["EntityRef"] == {"type": "Invoice", "value": "130"}

        assert cli("sync").code == 0  # nothing new: no second note
        assert (
            len([r for r in qb.requests if r.method == "POST" and r.path.endswith("/attachable")])
            == 1
        )
    finally:
        rt.close()


def test_records_no_ledger_may_hold_are_skipped_by_name_and_field_and_the_rest_syncs(
    cli: Any, monkeypatch: pytest.MonkeyPatch, qb: FakeQuickBooks, database_url: str
) -> None:
    qb.customers.append(customer("3", "Acme \u202eDTL"))
    qb.invoices += [
        invoice("132", "2", "1039", 40.0, 40.0, due="9999-12-31"),
        # a customer QuickBooks did not return, named only by the invoice
        invoice("133", "4", "1040", 50.0, 50.0, CustomerRef={"value": "4", "name": "Zed\x00"}),
    ]
    assert _connect(cli, monkeypatch, qb).code == 0
    synced = cli("sync")
    assert synced.code == 0, synced.stderr
    assert "quickbooks: 2 new invoice(s)" in synced.stdout
    errors = " ".join(synced.stderr.split())  # the console wraps long lines
    assert "skipped customer 3: customer Acme \\u202eDTL: DisplayName contains a control" in errors
    assert "skipped invoice 132: invoice 1039 (QuickBooks Id 132): DueDate 9999-12-31 is" in errors
    assert "skipped customer 4: customer Zed\\u0000 (4), name: contains a control" in errors
    assert "skipped invoice 133: invoice 1040 of customer 4, is not stored" in errors
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            assert sorted(session.scalars(select(Invoice.number))) == ["1037", "1038"]
            problems = session.scalars(select(Event).where(Event.kind == "sync.problem")).all()
        assert len(problems) == 4
    finally:
        rt.close()


def test_sync_without_a_connection_says_what_to_do(cli: Any) -> None:
    result = cli("sync")
    assert result.code == 1 and "arbot connect quickbooks" in result.stderr


def test_connect_freshbooks_picks_the_business_and_sync_reads_it(
    cli: Any, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    import re

    from tests.support import fake_freshbooks as fb

    fake = fb.FakeFreshBooks().start()
    try:
        for name, value in {
            "FRESHBOOKS_CLIENT_ID": fb.CLIENT_ID,
            "FRESHBOOKS_CLIENT_SECRET": fb.CLIENT_SECRET,
            "FRESHBOOKS_API_URL": fake.url,
            "FRESHBOOKS_TOKEN_URL": fake.token_url,
            "FRESHBOOKS_AUTHORIZE_URL": fake.authorize_url,
            "ARBOT_SECRET_KEY": KEY,
        }.items():
            monkeypatch.setenv(name, value)
        fake.clients = [fb.client(11, "Lakeview Clinic", "ap@lakeview.example", "(312) 555-0142")]
        fake.invoices = [fb.invoice(501, 11, "0001", "400.00", "400.00", due_date="2026-03-09")]

        class Stdin(io.StringIO):
            def readline(self, *args: Any) -> str:  # type: ignore[override]
                state = re.search(r"state=([\w-]+)", sys.stdout.getvalue())  # type: ignore[attr-defined]
                return f"https://localhost:8765/callback?code=the-code&state={state.group(1) if state else ''}\n"

        monkeypatch.setattr(sys, "stdin", Stdin())
        ambiguous = cli("connect", "freshbooks")
        assert ambiguous.code == 1 and "--tenant" in ambiguous.stderr  # two businesses: pick one

        fake.tokens.codes.add("the-code")
        connected = cli("connect", "freshbooks", "--tenant", "Brightwater Supply Co.")
        assert connected.code == 0, connected.stderr
        synced = cli("sync")
        assert synced.code == 0, synced.stderr
        assert "freshbooks: 1 new invoice(s)" in synced.stdout
    finally:
        fake.stop()
