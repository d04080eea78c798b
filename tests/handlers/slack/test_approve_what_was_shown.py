"""A person approves exactly the message they were shown, end to end through the real ASGI app with
signed requests: an Approve (or Approve all) drawn before the reminder's message changed (an Edit,
an Edit then Undo, a new address) is refused for that reminder, said to the clicker, and its card
drawn again; buttons drawn before they carried the message's version approve nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.core.models import Contact, Event, Reminder
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from bot.planning import plan_posts, redraws
from handlers.slack.reminders import CHANGED_SINCE_DRAWN, DRAWN_BEFORE_VERSIONS
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import TODAY, approve_value, message_of, state_of
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

EDITED_OPENING = "A word from our new finance lead first."
REDRAFTED = "A new draft of this reminder, in other words."


def told(slack_api: Any, count: int = 1) -> list[str]:
    """What clickers were told (ephemeral: no click here carries an answerable response_url)."""
    calls = wait_for(lambda: len(slack_api.calls("chat.postEphemeral")) >= count and slack_api)
    return [call["text"] for call in calls.calls("chat.postEphemeral")]


def edit_then_undo(runtime: Runtime, served: Any, reminder_id: int) -> None:
    """A colleague edits the reminder (Save and approve), then undoes the approval: it waits
    again, saying what the colleague wrote."""
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None and reminder.body_text is not None
        body = f"{EDITED_OPENING}\n\n{reminder.body_text}"
        subject = reminder.subject or ""
    served.submit(
        "edit_reminder",
        f"{reminder_id}|C0FINANCE",
        {
            "subject": {"value": {"type": "plain_text_input", "value": subject}},
            "body": {"value": {"type": "plain_text_input", "value": body}},
        },
        user="U0SECOND",
    )
    wait_for(lambda: state_of(runtime, reminder_id) == "approved")
    served.click("undo", str(reminder_id), user="U0SECOND")
    wait_for(lambda: state_of(runtime, reminder_id) == "planned")


def drawn_approve(runtime: Runtime, slack_api: Any, reminder_id: int) -> str | None:
    """The card's Approve value as Slack shows it now; None while the card shows no Approve (an
    earlier redraw, still showing it approved, may be the last one Slack has yet)."""
    try:
        return approve_value(runtime, slack_api, reminder_id)
    except AssertionError:
        return None


def approvals_by(runtime: Runtime, user: str) -> int:
    with runtime.sessions() as session:
        return session.scalar(
            select(func.count()).where(Event.kind == "reminder.approved", Event.actor == user)
        )


def test_approve_on_a_card_drawn_before_an_edit_and_its_undo_is_refused_and_the_card_redrawn(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    shown = approve_value(posted, slack_api, 1)  # the card as the approver has it on screen
    edit_then_undo(posted, served, 1)
    served.click("approve", shown)
    assert told(slack_api) == [CHANGED_SINCE_DRAWN]
    assert state_of(posted, 1) == "planned"
    assert approvals_by(posted, "U0APPROVER") == 0
    # the card is drawn again, its Approve naming the message as it stands: that one approves
    wait_for(lambda: drawn_approve(posted, slack_api, 1) not in (None, shown))
    served.click("approve", drawn_approve(posted, slack_api, 1) or "")
    wait_for(lambda: state_of(posted, 1) == "approved")
    with posted.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None and reminder.approved_by == "U0APPROVER"
        assert (reminder.body_text or "").startswith(EDITED_OPENING)


def test_approve_on_a_card_drawn_before_its_contacts_address_changed_is_refused(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    shown = approve_value(posted, slack_api, 1)
    with posted.writing() as session:  # a ledger sync brings the contact's new address
        contact_id = session.scalar(select(Reminder.contact_id).where(Reminder.id == 1))
        session.execute(
            update(Contact).where(Contact.id == contact_id).values(email="billing@c1.example")
        )
    served.click("approve", shown)
    assert told(slack_api) == [CHANGED_SINCE_DRAWN]
    assert state_of(posted, 1) == "planned"
    wait_for(lambda: "billing@c1.example" in json.dumps(message_of(posted, slack_api, 1)))


def test_an_approve_drawn_before_buttons_named_the_message_approves_nothing_and_redraws(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("approve", "1")  # as Approve buttons posted before carried it: the id alone
    assert told(slack_api) == [DRAWN_BEFORE_VERSIONS]
    assert state_of(posted, 1) == "planned"
    wait_for(lambda: slack_api.calls("chat.update"))  # the card drawn again, with the version
    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: state_of(posted, 1) == "approved")


def header_button(slack_api: Any) -> dict[str, Any]:
    """The standard tier's Approve all, as the plan's header was posted."""
    header = slack_api.calls("chat.postMessage")[0]
    row = next(b for b in header["blocks"] if b["type"] == "actions")
    return next(e for e in row["elements"] if e["action_id"] == "approve_all_standard")


def test_approve_all_leaves_waiting_a_reminder_edited_since_the_header_was_drawn_and_names_it(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    shown = header_button(slack_api)["value"]
    edit_then_undo(posted, served, 2)
    served.click("approve_all_standard", shown)
    wait_for(lambda: state_of(posted, 1) == state_of(posted, 3) == "approved")
    assert state_of(posted, 2) == "planned"
    (text,) = told(slack_api)
    assert text.startswith("Approved 2 standard reminders")
    assert (
        "1 reminder left waiting, not approved (Customer 2): their message changed since this "
        "plan was drawn" in text
    )
    with posted.sessions() as session:  # its card is drawn again, for a new look
        ts = session.scalar(select(Reminder.slack_ts).where(Reminder.id == 2))
    wait_for(lambda: any(call["ts"] == ts for call in slack_api.calls("chat.update")))


def test_an_approve_all_drawn_before_buttons_named_the_messages_approves_nothing(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    for value in (f"{TODAY.isoformat()}|standard|1-3", f"{TODAY.isoformat()}|standard"):
        served.click("approve_all_standard", value)
    texts = told(slack_api, 2)
    assert len(texts) == 2
    for text in texts:
        assert text.startswith("3 reminders left waiting, not approved (Customer 1, Customer 2")
        assert "drawn before Approve all named the messages it approves" in text
    assert [state_of(posted, n) for n in (1, 2, 3)] == ["planned"] * 3
    assert approvals_by(posted, "U0APPROVER") == 0


def test_approve_all_leaves_waiting_a_reminder_whose_card_slack_has_not_redrawn_yet(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    shown = approve_value(posted, slack_api, 2)
    with posted.writing() as session:  # a redraft of reminder 2's message
        session.execute(update(Reminder).where(Reminder.id == 2).values(body_text=REDRAFTED))
        header = plan_posts.header_of(session, TODAY)
    assert header is not None
    slack_api.fail_next("chat.update", "internal_error")  # its card's redraw, not the header's
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    with posted.sessions() as session:
        redraws.refresh(session, chat, [2], posted.settings.timezone)
    assert approve_value(posted, slack_api, 2) == shown  # its card still shows the old message
    header_message = slack_api.messages[header]  # the header, drawn again: its Approve all now
    row = next(b for b in header_message["blocks"] if b["type"] == "actions")
    button = next(e for e in row["elements"] if e["action_id"] == "approve_all_standard")
    served.click("approve_all_standard", button["value"])
    (text,) = told(slack_api)
    assert [state_of(posted, n) for n in (1, 2, 3)] == ["planned"] * 3  # the three share a card
    assert text.startswith(
        "3 reminders left waiting, not approved (Customer 1, Customer 2, Customer 3): their "
        "cards are being drawn again"
    )
    # once the sweep has drawn the card, its Approve approves the message it shows
    sweep(posted, chat)
    assert approve_value(posted, slack_api, 2) != shown
    served.click("approve", approve_value(posted, slack_api, 2))
    wait_for(lambda: state_of(posted, 2) == "approved")
