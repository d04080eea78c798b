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
