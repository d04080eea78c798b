"""`arbot import-payments` never keeps money in silence: what a bank payment could not apply (paid
more than its invoices owed) is said in the command's summary and handed to a person, as Stripe's
is, once per payment."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.core.models import Escalation, Event
from bot.core.runtime import start
from bot.core.settings import load_settings
from tests.support.ledger_files import row


def _bank(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount", "currency", "reference", "payer"])
        writer.writerows(rows)
    return path


def _acme(load: Any) -> None:
    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "due_date": "2026-02-01"}
    load(
        row(invoice_number="INV-1001", amount="100.00", balance="100.00", **acme),
        row(invoice_number="INV-1002", amount="300.00", balance="300.00", **acme),
    )


def _escalations(database_url: str) -> tuple[list[tuple[str, str, str | None]], int]:
    runtime = start(load_settings(env_file=None, database_url=database_url), upgrade=False)
    try:
        with runtime.sessions() as session:
            rows = session.execute(
                select(Escalation.reason, Escalation.state, Escalation.detail)
            ).all()
            added = session.scalar(
                select(func.count()).select_from(Event).where(Event.kind == "escalation.added")
            )
            return [tuple(r) for r in rows], int(added or 0)  # type: ignore[misc]
    finally:
        runtime.close()


def test_an_overpayment_is_said_and_handed_to_a_person_and_the_customer_is_not_chased(
    cli: Any, load: Any, plan: Any, database_url: str, tmp_path: Path
) -> None:
    _acme(load)
    bank = _bank(tmp_path / "over.csv", [["2026-03-10", "1000.00", "USD", "INV-1001", "Acme Inc"]])

    result = cli("import-payments", str(bank))

    assert result.code == 0, result.stderr
    assert "applied (100.00 USD)" in result.stdout
    assert "900.00 USD" in result.stdout and "unapplied" in result.stdout
    [(reason, state, detail)], _ = _escalations(database_url)
    assert (reason, state) == ("payment_unapplied", "open")
    assert detail is not None and "900.00" in detail and "INV-1001" in detail

    again = cli("import-payments", str(bank), "--json")

    assert json.loads(again.stdout)["already_imported"] == 1
    assert _escalations(database_url) == ([(reason, state, detail)], 0)  # nothing added twice
    day = plan()
    assert [r for r in day["reminders"] if r["customer"] == "C1"] == []
    assert any(h["customer"] == "C1" and h["reason"] == "escalated" for h in day["held"])


def test_the_json_summary_gives_what_was_left_unapplied_by_currency(
    cli: Any, load: Any, tmp_path: Path
) -> None:
    _acme(load)
    bank = _bank(tmp_path / "over.csv", [["2026-03-10", "1000.00", "USD", "INV-1001", "Acme Inc"]])

    doc = json.loads(cli("import-payments", str(bank), "--json").stdout)

    assert doc["amount_applied"] == {"USD": "100.00"}
    assert doc["amount_unapplied"] == {"USD": "900.00"}


def test_the_escalation_for_an_overpayment_is_posted_to_slack_with_the_import(
    runtime: Any, slack_api: Any, tmp_path: Path
) -> None:
    from bot.ledger.upsert import apply_batch
    from bot.payments.flows import receive_bank_payments
    from integrations.csv_ledger import read_ledger_csv
    from integrations.csv_payments import read_payments
    from integrations.slack_chat import SlackChat, web_client
    from tests.support.ledger_files import write

    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "due_date": "2026-02-01"}
    rows = [row(invoice_number="INV-1001", amount="100.00", balance="100.00", **acme)]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    runtime.settings = runtime.settings.model_copy(update={"finance_channel": "C0FIN"})
    bank = _bank(tmp_path / "over.csv", [["2026-03-10", "1000.00", "USD", "INV-1001", "Acme Inc"]])

    summary, _ = receive_bank_payments(
        runtime,
        read_payments(bank),
        "over.csv",
        slack=SlackChat(web_client("xoxb-test", slack_api.url)),
        links=None,
    )

    assert len(summary.escalations) == 1
    posted = json.dumps(slack_api.calls("chat.postMessage"))
    assert "Acme Inc" in posted and "900.00" in posted
    with runtime.sessions() as session:
        escalation = session.get(Escalation, summary.escalations[0])
        assert escalation is not None and escalation.slack_thread_ts is not None


def test_a_pick_that_applies_less_than_picked_says_so_and_hands_the_rest_over(
    runtime: Any, tmp_path: Path
) -> None:
    from bot.core.models import PaymentReview
    from bot.ledger.upsert import apply_batch
    from bot.payments import bank_import
    from integrations.csv_ledger import read_ledger_csv
    from integrations.csv_payments import read_payments
    from tests.support.ledger_files import write

    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    rows = [
        row(invoice_number="INV-1001", balance="100.00", due_date="2026-02-01", **acme),
        row(invoice_number="INV-1002", balance="100.00", due_date="2026-02-05", **acme),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    files = [
        _bank(tmp_path / "a.csv", [["2026-03-10", "100.00", "USD", "", "Acme Inc"]]),
        _bank(tmp_path / "b.csv", [["2026-03-11", "100.00", "USD", "INV-1001", "Acme Inc"]]),
    ]
    for path in files:
        with runtime.writing() as session:
            bank_import.import_payments(
                session, read_payments(path), path.name, runtime.clock.now()
            )
    with runtime.sessions() as session:
        review_id = session.scalars(select(PaymentReview.id)).one()

    with runtime.writing() as session:
        result, outcome = bank_import.decide_review(
            session, review_id, 0, "U0APPROVER", runtime.clock.now()
        )

    assert outcome.allocated == 0
    assert "Applied $0.00" in result and "$100.00 is left unapplied" in result
    assert "INV-1001" in result and "refund" in result
    with runtime.sessions() as session:
        [escalation] = session.scalars(select(Escalation)).all()
        assert escalation.reason == "payment_unapplied"
        assert escalation.detail is not None and "INV-1001" in escalation.detail
