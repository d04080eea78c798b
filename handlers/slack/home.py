"""App Home: today's queue, the open escalations and aging, redrawn each time a person opens it.
Amounts are shown to approvers only."""

from __future__ import annotations

from functools import partial
from typing import Any

from slack_bolt import App

from bot.core.labels import reason_label, state_label
from bot.core.runtime import Runtime
from bot.escalations import service
from bot.ledger.aging import aging_report
from handlers.slack.commands import todays_plan
from handlers.slack.kit import ListenerKit
from handlers.slack.payload import OddPayload, event_text
from integrations.base.mrkdwn import join, mention, mrkdwn
from integrations.slack_blocks import home_view
from integrations.slack_text import aging_text

ESCALATIONS_SHOWN = 30


def register(app: App, kit: ListenerKit) -> None:
    app.event("app_home_opened")(partial(on_home, kit))


def on_home(kit: ListenerKit, event: dict[str, Any]) -> None:
    user = event_text(event, "user")
    if user is None:
        raise OddPayload("event.user is missing or not text")
    kit.slack.client.views_publish(user_id=user, view=home_for(kit.runtime, kit.allows(user)))


def home_for(runtime: Runtime, trusted: bool) -> dict[str, Any]:
    day = runtime.today()
    with runtime.sessions() as session:
        queue = todays_plan(runtime, trusted)
        escalations = service.unresolved(session, limit=ESCALATIONS_SHOWN)
        aging = (
            aging_text(aging_report(session, day).as_json())
            if trusted
            else mrkdwn("Balances are shown to approvers only.")
        )
    lines = [
        mrkdwn(
            "• ",
            name,
            ": ",
            reason_label(reason),
            mrkdwn(" (", mention(owner), ")") if owner else "",
            ", ",
            state_label(state),
        )
        for name, reason, owner, state in escalations
    ] or [mrkdwn("No open escalations.")]
    return home_view(queue, join(lines, "\n"), aging)
