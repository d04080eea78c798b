"""The plan's read-only views: a card's *Preview* (the whole message, as the customer will read
it) and the header's *Show all* (every customer held back that day, and why). Each opens a modal
at once (a click's trigger lasts three seconds); approvers see them anywhere, others in the
finance channel only, where the cards are."""

from __future__ import annotations

from datetime import date
from functools import partial

from slack_bolt import App

from bot.planning import held, posting
from handlers.slack.kit import ListenerKit, on_form_click
from handlers.slack.payload import Body, OddPayload, action_value, clicked, clicker
from integrations.slack_blocks import card_step
from integrations.slack_ids import Action
from integrations.slack_plan_views import held_modal, preview_modal

NOT_HERE = "The plan's messages are shown to approvers and in the finance channel only."


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.PREVIEW)(partial(on_form_click, kit, open_preview))
    app.action(Action.SHOW_HELD)(partial(on_form_click, kit, open_held))


def _may_see(kit: ListenerKit, channel: str | None, user: str) -> bool:
    if kit.allows(user) or (
        channel is not None and channel == kit.runtime.settings.finance_channel
    ):
        return True
    kit.tell(channel, user, NOT_HERE)
    return False


def open_preview(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    user, channel, reminder_id = clicked(body)
    if not _may_see(kit, channel, user):
        return
    with kit.runtime.sessions() as session:
        card = posting.card_of(session, reminder_id, kit.runtime.settings.timezone)
    if card is None:
        kit.tell(channel, user, "This reminder no longer exists.")
        return
    view = preview_modal(
        card.customer_name,
        card_step(card).capitalize(),
        card.channel,
        card.contact,
        card.subject if card.channel == "email" else None,
        card.preview or "",
    )
    kit.open_view(trigger_id, view, channel, user)


def open_held(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    user, channel = clicker(body)
    try:
        day = date.fromisoformat(action_value(body))
    except ValueError:
        raise OddPayload("actions[0].value does not name a plan's day") from None
    if not _may_see(kit, channel, user):
        return
    with kit.runtime.sessions() as session:
        who = held.held_on(session, day)
    kit.open_view(trigger_id, held_modal(day, who or []), channel, user)
