"""Payment reviews in Slack: post each open one to the finance channel, re-draw it once decided."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Customer, Invoice, Payment, PaymentReview
from bot.core.money import format_money
from bot.payments.bank_import import candidates_of
from integrations.base import ReviewOption, ReviewView, SlackPort

log = logging.getLogger(__name__)
RULES = {
    "reference": "invoice number in the reference",
    "exact_amount": "exact amount",
    "combination": "several invoices that add up",
    "partial": "part payment",
}


def view_of(session: Session, review: PaymentReview) -> ReviewView:
    payment = session.get(Payment, review.payment_id)
    assert payment is not None
    options = []
    for match in candidates_of(review):
        customer = session.get(Customer, match.customer_id)
        numbers = dict(
            session.execute(
                select(Invoice.id, Invoice.number).where(
                    Invoice.id.in_([a.invoice_id for a in match.allocations])
                )
            ).all()
        )
        parts = ", ".join(
            f"{numbers.get(a.invoice_id, a.invoice_id)} {format_money(a.amount, payment.currency)}"
            for a in match.allocations
        )
        name = customer.name if customer else f"customer {match.customer_id}"
        options.append(ReviewOption(f"{name}: {parts} ({RULES.get(match.rule, match.rule)})"))
    why = next((c.get("why") for c in review.candidates if c.get("why")), "") or ""
    ref = f", ref “{payment.reference}”" if payment.reference else ""
    described = (
        f"{format_money(payment.amount, payment.currency)} on {payment.received_on.isoformat()} "
        f"from {payment.payer or 'an unnamed payer'}{ref}"
    )
    decided = None
    if review.state != "open":
        decided = f"{review.state.replace('_', ' ')} by <@{review.decided_by}>"
    return ReviewView(review.id, described, why, tuple(options), review.state, decided)


def post_open(session: Session, slack: SlackPort, channel: str) -> list[int]:
    posted = []
    for review in session.scalars(
        select(PaymentReview)
        .where(PaymentReview.state == "open", PaymentReview.slack_ts.is_(None))
        .order_by(PaymentReview.id)
    ):
        try:
            review.slack_channel, review.slack_ts = slack.post_review(
                channel, view_of(session, review)
            )
        except Exception:  # the others still go; the sweep posts this one later
            log.exception("payment review %s not posted", review.id)
            continue
        posted.append(review.id)
    return posted


def redraw(session: Session, slack: SlackPort, review_id: int) -> None:
    review = session.get(PaymentReview, review_id)
    if review and review.slack_channel and review.slack_ts:
        slack.update_review(review.slack_channel, review.slack_ts, view_of(session, review))
