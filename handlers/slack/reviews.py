"""A bank payment under review: Apply one candidate, or Leave it unmatched."""

from __future__ import annotations

from functools import partial

from slack_bolt import Ack, App

from bot.escalations import notes
from bot.payments import bank_import, reviews
from handlers.slack.kit import Body, ListenerKit, clicker
from integrations.slack_ids import REVIEW_ANY
from integrations.stripe_links import links_from

ONLY_APPROVERS = "Only approvers can place payments. Ask someone in finance."


def register(app: App, kit: ListenerKit) -> None:
    app.action(REVIEW_ANY)(partial(on_review, kit))


def on_review(kit: ListenerKit, ack: Ack, body: Body) -> None:
    ack()
    kit.after_ack(body, decide)


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
    with runtime.writing() as session:
        reviews.redraw(session, kit.slack, int(review_text))
        settings = runtime.settings
        key = settings.stripe_api_key
        links = links_from(key.get_secret_value() if key else None, settings.stripe_api_base)
        notes.after_payment(
            session, kit.slack, outcome, settings.timezone, links, runtime.clock.now()
        )
