"""A bank payment under review: Apply one candidate, or Leave it unmatched."""

from __future__ import annotations

from functools import partial

from slack_bolt import App

from bot.payments import bank_import, reviews
from bot.payments.flows import after_payment
from handlers.slack.kit import Body, ListenerKit, clicker, on_click
from integrations.slack_ids import REVIEW_ANY
from integrations.wiring import links_for

ONLY_APPROVERS = "Only approvers can place payments. Ask someone in finance."


def register(app: App, kit: ListenerKit) -> None:
    app.action(REVIEW_ANY)(partial(on_click, kit, decide))


def decide(kit: ListenerKit, body: Body) -> None:
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    review_text, _, option_text = body["actions"][0]["value"].partition(":")
    option = int(option_text)
    runtime = kit.runtime
    with runtime.writing() as session:
        result, outcome = bank_import.decide_review(
            session,
            int(review_text),
            option - 1 if option else None,
            user,
            runtime.clock.now(),
        )
    if result.startswith("already"):
        kit.tell(channel, user, f"Nothing changed: this payment was {result}.")
        return
    # The payment's consequences first (its links retired, its notes): a failed redraw of this
    # message must not leave a paid invoice's link live.
    after_payment(runtime, outcome, slack=kit.slack, links=links_for(runtime.settings))
    with runtime.sessions() as session:
        reviews.redraw(session, kit.slack, int(review_text))
