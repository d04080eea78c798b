"""The weekly review counts the seven days before its day: money collected by currency, reminders
sent, replies from people (not auto-replies or bounces), and escalations still open; it is
posted to the finance channel once on its day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from bot.core.clock import FixedClock
from bot.core.models import Customer, Escalation, InboundMessage, Payment, Reminder
from bot.core.runtime import Runtime
from bot.learning.weekly_review import review_text, weekly_review
from integrations.slack_chat import SlackChat
from scheduler.daily import weekly_review as weekly_review_job
from tests.scheduler.conftest import scheduled_runs

MONDAY = 0


def _payment(n: int, on: str, amount: str, currency: str) -> Payment:
    return Payment(
        source="bank",
        external_id=f"P-{n}",
        received_on=date.fromisoformat(on),
        amount=Decimal(amount),
        currency=currency,
        created_at=datetime(2026, 3, 16, tzinfo=UTC),
    )


def _inbound(at: str, automatic: bool = False, label: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel="email",
        received_at=datetime.fromisoformat(at),
        sender="someone@customer.example",
        raw="(raw)",
        text="(text)",
        automatic=automatic,
        label=label,
    )


def _week_of_activity(cli: Any, runtime: Runtime) -> None:
    assert cli("plan").code == 0  # three reminders for 2026-03-16
    with runtime.writing() as session:
        customer_id = session.scalars(select(Customer.id)).first()
        assert customer_id is not None
        session.add_all(
            [
                _payment(1, "2026-03-08", "999.00", "USD"),  # the week before: not counted
                _payment(2, "2026-03-09", "300.50", "USD"),
                _payment(3, "2026-03-12", "1200.00", "USD"),
                _payment(4, "2026-03-15", "80.00", "EUR"),
                _payment(5, "2026-03-16", "5.00", "USD"),  # today: next week's review
                _inbound("2026-03-11T15:00:00+00:00"),
                _inbound("2026-03-12T15:00:00+00:00", automatic=True),  # out of office
                _inbound("2026-03-13T15:00:00+00:00", automatic=True, label="bounce"),
                _inbound("2026-03-16T15:00:00+00:00"),  # today
                Escalation(customer_id=customer_id, reason="reply", state="open", opened_at=_at()),
                Escalation(customer_id=customer_id, reason="x", state="claimed", opened_at=_at()),
                Escalation(customer_id=customer_id, reason="y", state="resolved", opened_at=_at()),
            ]
        )
        sent = {1: "2026-03-10T15:00:00+00:00", 2: "2026-03-16T04:30:00+00:00"}  # 2: 00:30 NY
        for reminder_id, at in sent.items():
            session.execute(
                update(Reminder)
                .where(Reminder.id == reminder_id)
                .values(state="sent", sent_at=datetime.fromisoformat(at))
            )


def _at() -> datetime:
    return datetime(2026, 3, 12, 15, 0, tzinfo=UTC)


def test_the_review_counts_the_seven_days_before_its_day(
    ledger: None, cli: Any, slack_runtime: Runtime
) -> None:
    _week_of_activity(cli, slack_runtime)
    with slack_runtime.sessions() as session:
        review = weekly_review(session, date(2026, 3, 16), "America/New_York")

    assert (review.first_day, review.last_day) == (date(2026, 3, 9), date(2026, 3, 15))
    assert review.collected == {"EUR": Decimal("80.00"), "USD": Decimal("1500.50")}
    assert (review.reminders_sent, review.replies_received, review.escalations_open) == (1, 1, 2)
    assert review_text(review) == (
        "*Weekly review* (Mon 09 Mar to Sun 15 Mar 2026)\n"
        "• Collected: €80.00, $1,500.50\n"
        "• Reminders sent: 1\n"
        "• Replies received: 1\n"
        "• Escalations open: 2"
    )


def test_the_review_is_posted_to_the_finance_channel_once_on_its_day(
    ledger: None,
    cli: Any,
    slack_runtime: Runtime,
    slack_chat: SlackChat,
    slack_api: Any,
    clock: FixedClock,
) -> None:
    _week_of_activity(cli, slack_runtime)

    first = weekly_review_job(slack_runtime, slack_chat, "C0FINANCE", MONDAY, "a:1")
    again = weekly_review_job(slack_runtime, slack_chat, "C0FINANCE", MONDAY, "b:2")
    clock.set(datetime(2026, 3, 17, 14, 0, tzinfo=UTC))
    tuesday = weekly_review_job(slack_runtime, slack_chat, "C0FINANCE", MONDAY, "a:1")

    assert first == "posted to C0FINANCE: 1 sent, 1 replies, 2 escalations open"
    assert again == "the review of 2026-03-16 was already posted"
    assert tuesday == "no review on Tuesday"
    reviews = [
        c for c in slack_api.calls("chat.postMessage") if "Weekly review" in str(c.get("text"))
    ]
    assert len(reviews) == 1 and reviews[0]["channel"] == "C0FINANCE"
    assert "€80.00, $1,500.50" in reviews[0]["text"]
    assert [(r.job, r.instance) for r in scheduled_runs(slack_runtime)] == [
        ("weekly_review", "a:1")
    ]
