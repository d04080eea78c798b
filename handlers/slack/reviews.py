"""A bank payment under review: Apply one candidate, or Leave it unmatched."""

from __future__ import annotations

from functools import partial

from slack_bolt import App

from bot.payments import bank_import, reviews
from bot.payments.flows import after_payment, post_escalations
from handlers.slack.kit import ListenerKit, on_click
from handlers.slack.payload import Body, OddPayload, action_value, clicker, record_id
from integrations.slack_ids import REVIEW_ANY
from integrations.wiring import links_for

ONLY_APPROVERS = "Only approvers can place payments. Ask someone in finance."
MOST_OPTIONS = 99  # a review lists at most ten candidates; its buttons carry 1 to 10, 0 to leave


def register(app: App, kit: ListenerKit) -> None:
    app.action(REVIEW_ANY)(partial(on_click, kit, decide))


def review_and_option(value: str) -> tuple[int, int]:
    """A review button's value: `<review id>:<candidate, from 1; 0 leaves it unmatched>`."""
    review_text, _, option_text = value.partition(":")
    review_id = record_id(review_text, "actions[0].value")
    if not (option_text.isascii() and option_text.isdigit() and int(option_text) <= MOST_OPTIONS):
        raise OddPayload("actions[0].value names no candidate payment")
    return review_id, int(option_text)


def decide(kit: ListenerKit, body: Body) -> None:
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    review_id, option = review_and_option(action_value(body))
    runtime = kit.runtime
    with runtime.writing() as session:
        result, outcome = bank_import.decide_review(
            session,
            review_id,
            option - 1 if option else None,
            user,
            runtime.clock.now(),
            routes=runtime.settings.escalation_routes,
        )
    if result.startswith("already"):
        kit.tell(channel, user, f"Nothing changed: this payment was {result}.")
        return
    # The payment's consequences first (its links retired, its notes): a failed redraw of this
    # message must not leave a paid invoice's link live.
    after_payment(runtime, outcome, slack=kit.slack, links=links_for(runtime.settings))
    if result not in (bank_import.APPLIED, bank_import.LEFT_UNMATCHED):
        kit.tell(channel, user, result)  # some of it is left unapplied, and escalated
        post_escalations(runtime, kit.slack)
    with runtime.sessions() as session:
        reviews.redraw(session, kit.slack, review_id)
