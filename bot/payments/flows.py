"""After a payment is stored, told once: the Stripe webhook, `arbot import-payments`
(`receive_bank_payments`) and a person placing a bank payment in Slack all end in `after_payment`.

Each story commits its change in one write transaction; only after that commit are Stripe (the
payment links of what was paid are deactivated) and Slack (the plan cards of the reminders it
cancelled, the customer's escalation thread) called. What they miss, the sweep and the next
payment catch up.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from bot.core.models import StripeEvent
from bot.core.runtime import Runtime
from bot.escalations import posting as escalation_posting
from bot.escalations import thread_notes
from bot.escalations.notes import SlackOut, payment_notes
from bot.payments import links as payment_links
from bot.payments import reviews, unmatched_notices
from bot.payments.bank_import import BankImportSummary, import_payments
from bot.payments.record import PaymentOutcome
from bot.payments.stripe_charges import named_elsewhere, whose_charge
from bot.payments.stripe_events import PaymentNotRecordedYet, StripeResult, apply_event
from bot.planning import posting
from integrations.base.mrkdwn import Mrkdwn
from integrations.base.payments import BankPayment, PaymentLinks, StripeEventIn, StripePayments
from integrations.errors import SlackFailed, in_one_line

log = logging.getLogger(__name__)


def receive_stripe_event(
    runtime: Runtime,
    event: StripeEventIn,
    *,
    slack: SlackOut | None,
    links: PaymentLinks | None,
    stripe: StripePayments | None = None,
) -> StripeResult:
    """A verified Stripe event: applied to the ledger once (its id is stored with its effects),
    then, when it changed something, `after_payment` and any escalation it opened posted. Status
    "retry" when it must wait for its payment (nothing is stored: Stripe's next try is new). With
    `stripe`, a refund or dispute whose payment is not recorded is first looked up there, before
    the write: one of a charge made outside arbot's links is "ignored" at once. So is one about
    a payment link another workspace made (businesses that share a Stripe account each get every
    event of it): its invoice ids are that workspace's, not ids in this one's books; a refund or
    dispute whose PaymentIntent (asked of Stripe) names another workspace likewise. One that
    names only its charge is matched by the PaymentIntent Stripe names behind that charge."""
    elsewhere = other_books(runtime, event)
    if elsewhere is not None:
        log.info("Stripe event %s (%s) is for workspace %s", event.id, event.type, elsewhere)
        return StripeResult("ignored", f"its payment link is workspace {elsewhere}'s, not ours")
    charge = whose_charge(runtime, event, stripe)  # asked with no transaction open
    if charge.elsewhere is not None:  # a refund or dispute: its PaymentIntent names the workspace
        log.info("Stripe event %s (%s) is for workspace %s", event.id, event.type, charge.elsewhere)
        return StripeResult(
            "ignored", f"its payment link is workspace {charge.elsewhere}'s, not ours"
        )
    try:
        with runtime.writing() as session:
            result = apply_event(
                session,
                event,
                runtime.clock.now(),
                dict(runtime.settings.escalation_routes),
                outside_arbot=charge.outside_arbot,
                payment_intent=charge.payment_intent,
                timezone=runtime.settings.timezone,
            )
            if result.status == "unmatched":  # owed with the event, so it is never lost
                unmatched_notices.owe(session, runtime.clock.now(), event.id, result.detail)
    except PaymentNotRecordedYet as exc:
        log.info("Stripe event %s (%s) waits for its payment: %s", event.id, event.type, exc)
        return StripeResult("retry", str(exc))
    except IntegrityError:
        with runtime.sessions() as session:
            if session.get(StripeEvent, event.id) is None:
                raise  # not the event stored twice: a real error, and Stripe retries
        # the same event, stored a moment ago by another replica
        return StripeResult("duplicate", f"event {event.id} was handled")
    if result.status == "applied":
        # The ledger is right from here on: Stripe gets its 2xx whatever Slack or the link
        # deactivation do; what they miss, the sweep and the next payment catch up.
        try:
            after_payment(runtime, result.outcome, slack=slack, links=links)
            _escalated(runtime, result, slack)
        except Exception:
            log.exception("after Stripe event %s: Slack or Stripe not updated", event.id)
    if result.status == "unmatched":
        _tell_finance(runtime, slack, event, result.detail)
    return result


def other_books(runtime: Runtime, event: StripeEventIn) -> str | None:
    """The workspace whose payment link the event is about, when that is another workspace
    (integrations.base.payments.WORKSPACE_KEY); None for this one's, or a link made before links
    named their workspace."""
    return named_elsewhere(runtime, event.object.get("metadata"))


def _tell_finance(
    runtime: Runtime, slack: SlackOut | None, event: StripeEventIn, text: str
) -> None:
    """Money no customer's escalation can carry: the finance channel hears, now or, when Slack
    refuses, from the sweep (bot/payments/unmatched_notices.py)."""
    channel = runtime.settings.finance_channel
    if slack is None or not channel:
        log.error(
            "Stripe event %s needs a person; no Slack finance channel to tell: %s", event.id, text
        )
        return
    try:
        unmatched_notices.post_waiting(runtime, slack, channel)
    except Exception:
        log.exception("Stripe event %s: the finance channel was not told: %s", event.id, text)


def after_payment(
    runtime: Runtime,
    outcome: PaymentOutcome,
    *,
    slack: SlackOut | None,
    links: PaymentLinks | None,
) -> dict[int, Mrkdwn]:
    """Once a payment (or refund) is committed: retire the payment links of the invoices it paid
    or changed, re-draw the plan cards of the reminders it cancelled and say what happened in each
    customer's open escalation thread. Returns the notes (the CLI prints them without Slack)."""
    payment_links.retire(runtime, links, outcome.closed + outcome.reduced)
    with runtime.sessions() as session:
        notes = payment_notes(session, outcome)
        if slack is None:
            return notes
        try:  # a redraw Slack refuses is owed, and the sweep draws it again
            posting.refresh(session, slack, outcome.cancelled, runtime.settings.timezone)
        except SlackFailed as exc:  # the ledger is right; Slack catches up on the next change
            log.error("Slack not updated after a payment: %s", exc.error)
    if notes:  # owed first, so a note Slack refuses now is posted by the sweep
        with runtime.writing() as session:
            for customer_id, text in notes.items():
                thread_notes.owe_note(session, customer_id, text, runtime.clock.now())
        thread_notes.post_owed(runtime, slack)
    return notes


def _escalated(runtime: Runtime, result: StripeResult, slack: SlackOut | None) -> None:
    """Post the escalation the event opened; one already in Slack hears why in its thread (the
    note its reason owes it, which the sweep posts if Slack refuses it now)."""
    post_escalations(runtime, slack)


def post_escalations(
    runtime: Runtime, slack: SlackOut | None, refused: list[str] | None = None
) -> None:
    """Post the escalations a payment opened; one already in Slack hears why in its thread.
    What Slack refuses now, the sweep posts; Slack's refusals are added to `refused`, and once
    Slack cannot be reached no note is tried either."""
    if slack is None:
        return
    said: list[str] = []
    escalation_posting.post_new(runtime, slack, refused=said)
    if refused is not None:
        refused.extend(said)
    if said and said[-1].startswith("unreachable"):
        return
    thread_notes.post_owed(runtime, slack)


def receive_bank_payments(
    runtime: Runtime,
    payments: list[BankPayment],
    source: str,
    *,
    slack: SlackOut | None,
    links: PaymentLinks | None,
) -> tuple[BankImportSummary, dict[int, Mrkdwn]]:
    """A bank feed's payments: matched and applied in one write transaction; then `after_payment`,
    the escalations opened for money left unapplied, and each payment that matched more than one
    way posted for a person to place. Returns the summary and the notes `after_payment` made."""
    with runtime.writing() as session:
        summary = import_payments(
            session,
            payments,
            source,
            runtime.clock.now(),
            routes=runtime.settings.escalation_routes,
        )
    # The payments are stored: whatever fails from here on (Slack, or the database busy with
    # another writer) is logged in one line and told in the summary, and the rest still goes.
    notes: dict[int, Mrkdwn] = {}
    try:
        notes = after_payment(runtime, summary.outcome, slack=slack, links=links)
    except Exception as exc:
        _not_told(summary, source, "the payments' notes", exc)
    refused: list[str] = []
    if summary.escalations and slack is not None:
        try:  # what Slack does not take now, the sweep posts
            post_escalations(runtime, slack, refused)
        except SlackFailed as exc:
            refused.append(exc.error)
            log.info(
                "bank payments of %s: escalations not posted: Slack said %s", source, exc.error
            )
        except Exception as exc:
            _not_told(summary, source, "the escalations and their notes", exc)
        try:
            with runtime.sessions() as session:
                waiting = escalation_posting.without_thread(session, summary.escalations)
        except Exception as exc:
            _not_told(summary, source, "the escalations", exc)
            waiting = summary.escalations
        summary.escalations_not_posted = len(waiting)
        summary.escalations_refused = refused[0] if refused and waiting else None
    channel = runtime.settings.finance_channel
    if refused and refused[-1].startswith("unreachable"):  # each review would wait in turn
        summary.slack_refused = refused[-1]
    elif slack is not None and channel:
        review_refusals: list[str] = []
        try:
            posted = reviews.post_open(runtime, slack, channel, review_refusals)
        except Exception as exc:
            _not_told(summary, source, "the payments to review", exc)
            posted = []
        summary.reviews_posted = len(set(posted) & set(summary.reviews))
        summary.slack_refused = review_refusals[0] if review_refusals else None
    return summary, notes


def _not_told(summary: BankImportSummary, source: str, what: str, exc: Exception) -> None:
    """A failure once the payments are stored: one line in the log, the first kept for the
    summary (the sweep posts what is still owed)."""
    why = in_one_line(exc)
    log.error("bank payments of %s: %s not all posted to Slack: %s", source, what, why)
    if summary.not_told is None:
        summary.not_told = why
