"""A bank payment placed from its review card."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.runtime import Runtime
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_a_bank_payment_is_placed_from_its_review_card(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    from bot.core.models import Invoice, PaymentReview
    from bot.ledger.upsert import apply_batch
    from bot.payments import bank_import, reviews
    from integrations.csv_ledger import read_ledger_csv
    from integrations.csv_payments import read_payments

    rows = [row(invoice_number="I-1"), row(invoice_number="I-2", due_date="2026-02-20")]
    with slack_runtime.writing() as session:
        batch = read_ledger_csv(write(tmp_path / "l.csv", rows))
        apply_batch(session, batch, slack_runtime.clock.now())
    bank = tmp_path / "bank.csv"  # 1,200 from Ridgeline, who owes two invoices of 1,200
    bank.write_text(
        "date,amount,currency,reference,payer\n2026-03-14,1200.00,USD,March,Ridgeline Roofing\n"
    )
    with slack_runtime.writing() as session:
        summary = bank_import.import_payments(
            session, read_payments(bank), "bank.csv", slack_runtime.clock.now()
        )
    posted = reviews.post_open(
        slack_runtime, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FINANCE"
    )
    assert summary.to_review == 1 and posted
    with slack_runtime.sessions() as session:
        review = session.scalars(select(PaymentReview)).one()
        options = len(review.candidates)
    assert options == 2

    served.click("review_apply_1", f"{review.id}:1", message_ts=review.slack_ts or "")

    def applied() -> bool:
        with slack_runtime.sessions() as session:
            return session.get(PaymentReview, review.id).state == "applied"  # type: ignore[union-attr]

    wait_for(applied)
    with slack_runtime.sessions() as session:
        assert Decimal(0) in set(session.scalars(select(Invoice.balance)))
    card = wait_for(
        lambda: (
            "Applied by" in json.dumps(slack_api.messages[(review.slack_channel, review.slack_ts)])
        )
    )
    assert card


def test_a_pick_whose_invoice_was_paid_meanwhile_says_what_was_left_unapplied(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    from bot.core.models import Escalation, Invoice, Payment, PaymentAllocation, PaymentReview
    from bot.ledger.upsert import apply_batch
    from bot.payments import bank_import, reviews
    from integrations.csv_ledger import read_ledger_csv
    from integrations.csv_payments import read_payments

    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    rows = [
        row(invoice_number="INV-1001", balance="100.00", due_date="2026-02-01", **acme),
        row(invoice_number="INV-1002", balance="100.00", due_date="2026-02-05", **acme),
    ]
    rt = slack_runtime
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), rt.clock.now())
    header = "date,amount,currency,reference,payer\n"
    doubtful = tmp_path / "a.csv"  # 100 from Acme, who owes two invoices of 100
    doubtful.write_text(header + "2026-03-10,100.00,USD,,Acme Inc\n")
    paying = tmp_path / "b.csv"  # then INV-1001 is paid by another payment
    paying.write_text(header + "2026-03-11,100.00,USD,INV-1001,Acme Inc\n")
    for path in (doubtful, paying):
        with rt.writing() as session:
            bank_import.import_payments(session, read_payments(path), path.name, rt.clock.now())
    reviews.post_open(rt, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FINANCE")
    with rt.sessions() as session:
        review = session.scalars(select(PaymentReview)).one()
        review_id, ts, channel = review.id, review.slack_ts or "", review.slack_channel

    served.click("review_apply_1", f"{review_id}:1", message_ts=ts)  # INV-1001, paid meanwhile

    told = wait_for(
        lambda: [c["text"] for c in slack_api.calls("chat.postEphemeral") if "$100.00" in c["text"]]
    )
    assert "left unapplied" in told[-1] and "refund" in told[-1] and "INV-1001" in told[-1]
    with rt.sessions() as session:
        payment = session.get(Payment, session.get(PaymentReview, review_id).payment_id)  # type: ignore[union-attr]
        assert payment is not None
        assert (
            session.scalars(
                select(PaymentAllocation).where(PaymentAllocation.payment_id == payment.id)
            ).all()
            == []
        )
        assert session.scalars(
            select(Invoice.balance).where(Invoice.number == "INV-1002")
        ).one() == Decimal("100.00")
        escalation = session.scalars(select(Escalation)).one()
        assert escalation.reason == "payment_unapplied" and "100.00" in (escalation.detail or "")
    card = wait_for(lambda: json.dumps(slack_api.messages.get((channel, ts), "")))
    assert wait_for(
        lambda: "left unapplied" in json.dumps(slack_api.messages.get((channel, ts), ""))
    ), card
