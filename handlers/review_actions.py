"""Bolt listeners for a bank payment under review: Apply one candidate, or Leave unmatched."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.escalations import notes
from bot.payments import bank_import, reviews
from handlers.listener_kit import ListenerKit
from integrations.stripe_links import links_from


def register(app: App, kit: ListenerKit) -> None:
    runtime, slack, allows, later, tell = kit.runtime, kit.slack, kit.allows, kit.later, kit.tell

    @app.action(re.compile(r"^review_(apply_\d+|leave)$"))
    def on_review(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        later(decide, body["user"]["id"], body.get("channel", {}).get("id"), body)

    def decide(body: dict[str, Any]) -> None:
        user, channel = body["user"]["id"], body.get("channel", {}).get("id")
        if not allows(user):
            tell(channel, user, "Only approvers can place payments. Ask someone in finance.")
            return
        review_text, _, option_text = body["actions"][0]["value"].partition(":")
        option = int(option_text)
        with runtime.writing() as session:
            result, outcome = bank_import.decide_review(
                session,
                int(review_text),
                option - 1 if option else None,
                user,
                runtime.clock.now(),
            )
        if result.startswith("already"):
            tell(channel, user, f"Nothing changed: this payment was {result}.")
            return
        with runtime.writing() as session:
            reviews.redraw(session, slack, int(review_text))
            settings = runtime.settings
            key = settings.stripe_api_key
            links = links_from(key.get_secret_value() if key else None, settings.stripe_api_base)
            notes.after_payment(
                session, slack, outcome, settings.timezone, links, runtime.clock.now()
            )
