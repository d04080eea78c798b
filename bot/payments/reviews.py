"""Payment reviews in Slack: post each open one to the finance channel, re-draw it once decided."""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.core import slack_claims
from bot.core.labels import state_label
from bot.core.models import Customer, Invoice, Payment, PaymentAllocation, PaymentReview
from bot.core.money import format_money
from bot.core.runtime import Runtime
from bot.payments.bank_import import candidates_of
from integrations.base.mrkdwn import actor, mrkdwn
from integrations.base.slack import ReviewOption, ReviewView, SlackPort
from integrations.errors import SlackFailed, in_one_line

log = logging.getLogger(__name__)
UNREACHABLE = "unreachable"  # how a SlackFailed that had no answer from Slack begins its error
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
        decided = mrkdwn(
            state_label(review.state).capitalize(), " by ", actor(review.decided_by or "")
        )
    if review.state == "applied":
        allocated = session.scalar(
            select(func.coalesce(func.sum(PaymentAllocation.amount), 0)).where(
                PaymentAllocation.payment_id == payment.id
            )
        )
        left = payment.amount - Decimal(allocated or 0)
        if left > 0:
            decided = mrkdwn(
                decided or "",
                f": {format_money(left, payment.currency)} of it left unapplied "
                "(a refund may be owed; the customer's escalation has it)",
            )
    return ReviewView(review.id, described, why, tuple(options), review.state, decided)


def post_open(
    runtime: Runtime, slack: SlackPort, channel: str, refused: list[str] | None = None
) -> list[int]:
    """Post every open review Slack does not have yet, each claimed in a short write first so
    that no transaction is open while Slack is called and no other process posts it too; a claim
    Slack refused is given back for the next sweep. Returns the ids posted; Slack's refusals
    (its error codes) are added to `refused`. Slack refusing, or out of reach, is expected: it is
    logged in one line, and once Slack cannot be reached the rest wait for the sweep too."""
    with runtime.sessions() as session:
        pending = list(
            session.scalars(
                select(PaymentReview.id)
                .where(PaymentReview.state == "open", PaymentReview.slack_ts.is_(None))
                .order_by(PaymentReview.id)
            )
        )
    posted = []
    for review_id in pending:
        try:
            if _post_claimed(runtime, slack, review_id, channel):
                posted.append(review_id)
        except SlackFailed as exc:  # the sweep posts it later
            log.info("payment review %s not posted: Slack said %s", review_id, exc.error)
            if refused is not None:
                refused.append(exc.error)
            if exc.error.startswith(UNREACHABLE):
                break  # the others would wait for it in turn
        except Exception as exc:  # the others still go; the sweep posts this one later
            why = in_one_line(exc)
            log.error("payment review %s not posted: %s", review_id, why)
            if refused is not None:
                refused.append(why)
    return posted


def _post_claimed(runtime: Runtime, slack: SlackPort, review_id: int, channel: str) -> bool:
    now = runtime.clock.now()
    with runtime.writing() as session:
        if not slack_claims.claim(
            session,
            PaymentReview,
            review_id,
            now,
            PaymentReview.state == "open",
            PaymentReview.slack_ts.is_(None),
        ):
            return False  # posted meanwhile, or another process is posting it
        review = session.get(PaymentReview, review_id)
        assert review is not None
        view = view_of(session, review)
    try:
        posted_channel, ts = slack.post_review(channel, view)
    except Exception:
        slack_claims.give_back(runtime, PaymentReview, review_id)  # the next sweep posts it
        raise
    with runtime.writing() as session:
        session.execute(
            update(PaymentReview)
            .where(PaymentReview.id == review_id)
            .values(slack_channel=posted_channel, slack_ts=ts, slack_claimed_at=None)
            .execution_options(synchronize_session=False)
        )
    return True


def redraw(session: Session, slack: SlackPort, review_id: int) -> None:
    review = session.get(PaymentReview, review_id)
    if review and review.slack_channel and review.slack_ts:
        slack.update_review(review.slack_channel, review.slack_ts, view_of(session, review))
