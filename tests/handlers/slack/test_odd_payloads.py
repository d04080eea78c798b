"""Signed Slack requests whose fields are not shaped as Slack sends them, through the real ASGI app:
never a 500, never a traceback in the log, nothing changed; a number typed after `/ar assign`
beyond any id is answered, not a database error; a form that names nothing arbot made says so in
the form; the Edit form's limits hold on the server; and arbot's own error handler tells the
person whatever shape their request had."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.core.models import Event, Reminder
from bot.core.runtime import Runtime
from tests.handlers.posted_plan import ledger, post_plan, state_of
from tests.support.log_of_test import LogOfTest
from tests.support.slack_requests import SlackRequests, wait_for
from tests.support.stored_rows import StoredRows, put_rows, take_rows

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

REFUSED = "refused a Slack request"
Change = Callable[[dict[str, Any]], None]


POSTED: dict[str, StoredRows] = {}  # by database: the rows of the plan the first test posted


@pytest.fixture
def posted(slack_runtime: Runtime, slack_api: Any, tmp_path: Path) -> Runtime:
    """Today's plan for three customers, posted to the finance channel (tests/handlers/conftest.py)
    by the first test on each database; the others start from the rows it left, stored again
    (making and posting the plan took 0.2 s a test on SQLite, 0.6 s on PostgreSQL): every table's
    rows and the id sequences where they stood. No test here reads what posting sent to Slack."""
    dialect = slack_runtime.engine.dialect.name
    if dialect in POSTED:
        put_rows(slack_runtime, POSTED[dialect])
    else:
        ledger(slack_runtime, tmp_path)
        post_plan(slack_runtime, slack_api)
        POSTED[dialect] = take_rows(slack_runtime)
    return slack_runtime


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[LogOfTest]:
    """Asked for first, before the app is served (see tests/support/log_of_test.py)."""
    with caplog.at_level(logging.INFO):
        yield LogOfTest(caplog)


def no_traceback(log: LogOfTest) -> None:
    assert not log.failures(), "\n".join(log.failures())


def unchanged(runtime: Runtime) -> None:
    assert [state_of(runtime, n) for n in (1, 2, 3)] == ["planned"] * 3
    with runtime.sessions() as session:
        assert session.scalar(
            select(func.count()).select_from(Event).where(Event.kind.like("reminder.%"))
        ) == session.scalar(
            select(func.count()).select_from(Event).where(Event.kind == "reminder.planned")
        )


def changed(**fields: Any) -> Change:
    def change(payload: dict[str, Any]) -> None:
        payload.update(fields)

    return change


def action(**fields: Any) -> Change:
    def change(payload: dict[str, Any]) -> None:
        payload["actions"][0].update(fields)

    return change


ODD_CLICKS: dict[str, tuple[str, str, Change]] = {
    "user-a-string": ("approve", "1", changed(user="U0APPROVER")),
    "user-without-id": ("approve", "1", changed(user={"name": "x"})),
    "actions-not-a-list": ("approve", "1", changed(actions="approve")),
    "actions-empty": ("approve", "1", changed(actions=[])),
    "action-not-an-object": ("approve", "1", changed(actions=["approve"])),
    "value-not-a-number": ("approve", "abc", lambda payload: None),
    "value-beyond-any-id": ("approve", str(10**20), lambda payload: None),
    "value-a-superscript-digit": ("approve", "²", lambda payload: None),
    "value-a-json-number": ("approve", "1", action(value=1)),
    "value-missing": ("edit", "1", action(value=None)),
    "channel-a-string": ("approve", "x", changed(channel="C0FINANCE")),
    "message-a-string": ("proposal_approve", "x", changed(message="text")),
    "approve-all-odd-day": ("approve_all_standard", "tomorrow|standard", lambda payload: None),
    "approve-all-odd-tier": ("approve_all_standard", "2026-03-16|<!channel>", lambda p: None),
    "review-odd-option": ("review_apply_1", "1:x", lambda payload: None),
    "review-beyond-any-id": ("review_leave", f"{10**20}:0", lambda payload: None),
    "escalation-beyond-any-id": ("esc_claim", str(2**31), lambda payload: None),
    "escalation-form-odd": ("esc_promise", "1", changed(trigger_id=["t"])),
}


@pytest.mark.parametrize("case", ODD_CLICKS, ids=list(ODD_CLICKS))
def test_a_signed_click_of_the_wrong_shape_is_refused_in_one_line(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any, case: str
) -> None:
    action_id, value, change = ODD_CLICKS[case]
    payload = served.click_payload(action_id, value)
    change(payload)

    answer = served.interactive(payload)

    assert answer.status_code == 200  # a click is acknowledged before it is read
    wait_for(lambda: REFUSED in log.text)
    clicks_done(served, slack_api)
    no_traceback(log)
    # Nothing raised after the ack: Bolt would have waited three seconds for an ack, holding up
    # the clicks behind it.
    assert "didn't call ack()" not in log.text
    unchanged(posted)


def clicks_done(served: SlackRequests, slack_api: Any) -> None:
    """The clicks sent so far have been handled: they reach Bolt one at a time, in order, so wait
    for the answer to one sent after them (Approve on no reminder: its clicker is told)."""
    before = len(slack_api.calls("chat.postEphemeral"))
    served.click("approve", str(2**31 - 1))
    wait_for(
        lambda: any(
            "there is no reminder" in call["text"]
            for call in slack_api.calls("chat.postEphemeral")[before:]
        )
    )


def view_payload(served: SlackRequests, callback_id: str, metadata: Any) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": served.team, "domain": "test"},
        "user": {"id": "U0APPROVER", "team_id": served.team},
        "api_app_id": "A0ARBOT",
        "view": {
            "id": "V0EDIT",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": metadata,
            "state": {"values": {}},
        },
    }


def view(**fields: Any) -> Change:
    def change(payload: dict[str, Any]) -> None:
        payload["view"].update(fields)

    return change


ODD_SUBMISSIONS: dict[str, tuple[str, Change]] = {
    "view-missing": ("edit_reminder", lambda payload: payload.pop("view")),
    "view-a-string": ("edit_reminder", changed(view="edit_reminder")),
    "view-without-type": ("edit_reminder", lambda payload: payload["view"].pop("type")),
    "user-a-string": ("edit_reminder", changed(user="U0APPROVER")),
    "skip-user-missing": ("skip_reminder", lambda payload: payload.pop("user")),
    "state-a-list": ("skip_reminder", view(state=[])),
    "values-of-the-wrong-shape": (
        "esc_resolve",
        view(state={"values": {"outcome": {"value": {"selected_option": "paid"}}, "note": 5}}),
    ),
    "promise-date-not-a-date": (
        "esc_promise",
        view(state={"values": {"date": {"value": {"selected_date": "soon"}}}}),
    ),
}


@pytest.mark.parametrize("case", ODD_SUBMISSIONS, ids=list(ODD_SUBMISSIONS))
def test_a_signed_form_of_the_wrong_shape_gets_no_500(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any, case: str
) -> None:
    callback_id, change = ODD_SUBMISSIONS[case]
    payload = view_payload(served, callback_id, "1|C0FINANCE")
    change(payload)

    answer = served.interactive(payload)

    assert answer.status_code in (200, 400, 404), answer.text
    if answer.status_code == 200 and not answer.content:
        # acknowledged as it came: it is worked on after the ack, which ends by telling the
        # person why nothing changed; only then has it had all the effect it will
        wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    no_traceback(log)
    unchanged(posted)


@pytest.mark.parametrize("user", [None, "U0APPROVER", {"name": "x"}], ids=repr)
def test_a_resume_form_from_no_one_is_refused_at_once_even_about_what_is_gone(
    log: LogOfTest, posted: Runtime, served: SlackRequests, user: Any
) -> None:
    """Resume's first step names an escalation that does not exist and no one who submitted it.
    Who submitted it is read before the ack: read after it, the refusal raised there made Bolt
    drop the ack, wait three seconds for one and answer 404, logging an unhandled request."""
    payload = view_payload(served, "esc_resume", f"{2**31 - 1}|C0FINANCE")
    payload["user"] = user

    answer = served.interactive(payload)

    assert answer.status_code == 400, answer.text
    assert "user.id" in answer.text
    assert f"{REFUSED}: user.id is missing or not text" in log.text
    assert "didn't call ack()" not in log.text
    assert "Unhandled request" not in log.text
    no_traceback(log)
    unchanged(posted)


@pytest.mark.parametrize(
    "about", ["²", str(10**30), str(2**31), "0"], ids=["superscript", "huge", "past-int4", "zero"]
)
def test_a_resume_confirmation_naming_no_escalation_is_refused_before_its_ack(
    log: LogOfTest, posted: Runtime, served: SlackRequests, about: str
) -> None:
    """Digits that are no id of ours: "²" passes str.isdigit() but not int() (which raised after
    the ack, so Bolt dropped it and answered 404 three seconds later), and a number past any id
    reached the database after the ack and failed there."""
    payload = view_payload(served, "esc_resume_confirm", f"{about}|C0FINANCE|pause")

    answer = served.interactive(payload)

    assert answer.status_code == 400, answer.text
    assert "does not say which escalation" in answer.text
    assert "didn't call ack()" not in log.text
    assert "Unhandled request" not in log.text
    no_traceback(log)
    unchanged(posted)


@pytest.mark.parametrize("ticked", ["²", str(10**30), "0"], ids=["superscript", "huge", "zero"])
def test_a_reply_ticking_a_copy_that_is_no_invoice_id_gets_no_500(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any, ticked: str
) -> None:
    """The Reply form's ticked invoice copies: "²" passes str.isdigit() but not int(), which
    raised before the ack (a 500 and a traceback); what is no id of ours is left out."""
    payload = view_payload(served, "esc_reply", f"{2**31 - 1}|C0FINANCE")
    payload["view"]["state"]["values"] = {
        "subject": {"value": {"type": "plain_text_input", "value": "Re: I-1"}},
        "body": {"value": {"type": "plain_text_input", "value": "Noted, thanks."}},
        "attach": {"value": {"type": "checkboxes", "selected_options": [{"value": ticked}]}},
    }

    answer = served.interactive(payload)

    assert answer.status_code == 200, answer.text
    wait_for(lambda: slack_api.calls("chat.postEphemeral"))  # no such escalation: told so
    assert "didn't call ack()" not in log.text
    no_traceback(log)
    unchanged(posted)


@pytest.mark.parametrize("metadata", ["abc|C0FINANCE", "", 7, "99999999999|", "1e3|C0FINANCE"])
@pytest.mark.parametrize("form", ["edit_reminder", "skip_reminder", "esc_dispute"])
def test_a_form_whose_metadata_names_nothing_says_so_in_the_form(
    log: LogOfTest, posted: Runtime, served: SlackRequests, metadata: Any, form: str
) -> None:
    answer = served.interactive(view_payload(served, form, metadata))

    assert answer.status_code == 200, answer.text
    errors = answer.json()["errors"]
    assert "open it again" in " ".join(errors.values())
    no_traceback(log)
    unchanged(posted)


@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648", "²", "0"])
def test_assign_with_a_number_beyond_any_message_is_answered_not_failed(
    log: LogOfTest, posted: Runtime, served: SlackRequests, number: str
) -> None:
    answer = served.command(f"assign {number} Customer 1")

    assert answer.status_code == 200, answer.text
    assert "is not a message number" in answer.json()["text"]
    no_traceback(log)


def test_a_command_whose_text_is_not_text_is_refused(
    log: LogOfTest, posted: Runtime, served: SlackRequests
) -> None:
    body = {"command": "/ar", "user_id": "U0APPROVER", "channel_id": "C0FINANCE", "text": 5}
    body["team_id"] = served.team
    answer = served.send(json.dumps(body), "application/json")
    assert answer.status_code == 400
    no_traceback(log)


ODD_EVENTS: dict[str, dict[str, Any]] = {
    "home-user-an-object": {"type": "app_home_opened", "user": {"id": "U0APPROVER"}},
    "thread-ts-an-object": {
        "type": "message",
        "user": "U0APPROVER",
        "channel": "C0FINANCE",
        "thread_ts": {"ts": "1"},
        "text": "hello",
    },
    "text-a-number": {"type": "message", "user": "U0APPROVER", "thread_ts": "1.0", "text": 5},
    "type-a-number": {"type": 5},
}


def events_done(served: SlackRequests, slack_api: Any) -> None:
    """The events sent so far have been handled: Bolt acknowledges an event before its listener
    runs, so wait for the work of one sent after them (App Home, redrawn for its user)."""
    before = len(slack_api.calls("views.publish"))
    served.event({"type": "app_home_opened", "user": "U0APPROVER", "tab": "home"})
    wait_for(lambda: len(slack_api.calls("views.publish")) > before)


@pytest.mark.parametrize("case", ODD_EVENTS, ids=list(ODD_EVENTS))
def test_a_signed_event_of_the_wrong_shape_gets_no_500(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any, case: str
) -> None:
    answer = served.event(ODD_EVENTS[case])
    assert answer.status_code in (200, 400), answer.text
    events_done(served, slack_api)
    no_traceback(log)


def test_an_event_that_is_not_an_object_is_refused(
    log: LogOfTest, posted: Runtime, served: SlackRequests
) -> None:
    body = {"type": "event_callback", "team_id": served.team, "event": "app_home_opened"}
    answer = served.send(json.dumps(body), "application/json")
    assert answer.status_code == 400
    no_traceback(log)


def test_the_error_handler_tells_the_person_whatever_shape_their_request_had(
    posted: Runtime, served: SlackRequests, slack_api: Any
) -> None:
    """App Home fails at Slack; the request names its user and channel as bare strings."""
    slack_api.fail_next("views.publish", "internal_error")
    body = {
        "token": "legacy",
        "team_id": served.team,
        "type": "event_callback",
        "event_id": "Ev0ODD",
        "event_time": 1,
        "user": "U0APPROVER",
        "channel": "C0FINANCE",
        "event": {"type": "app_home_opened", "user": "U0APPROVER", "tab": "home"},
    }
    served.send(json.dumps(body), "application/json")
    told = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert told[0]["user"] == "U0APPROVER" and "Something went wrong" in told[0]["text"]


def edit(served: SlackRequests, subject: str, body: str) -> httpx.Response:
    return served.submit(
        "edit_reminder",
        "1|C0FINANCE",
        {
            "subject": {"value": {"type": "plain_text_input", "value": subject}},
            "body": {"value": {"type": "plain_text_input", "value": body}},
        },
    )


CLEAN_BODY = (
    "Hi Maria,\n\nA quick note about invoice I-1. Could you let us know when to expect it?\n\n"
    "To stop receiving these emails, just reply and say so."
)


@pytest.mark.parametrize(
    ("subject", "body", "field", "limit"),
    [
        ("Invoice I-1", CLEAN_BODY + "\n" + "x" * 100_000, "body", "3,000"),
        ("Invoice I-1 " + "x" * 140, CLEAN_BODY, "subject", "150"),
    ],
    ids=["email-body", "subject"],
)
def test_the_edit_forms_limits_hold_on_the_server(
    posted: Runtime, served: SlackRequests, subject: str, body: str, field: str, limit: str
) -> None:
    answer = edit(served, subject, body)

    assert answer.status_code == 200
    assert answer.json()["response_action"] == "errors"
    assert f"at most {limit}" in answer.json()["errors"][field]
    assert state_of(posted, 1) == "planned"


def test_a_text_message_edit_holds_to_320_characters(
    posted: Runtime, served: SlackRequests
) -> None:
    with posted.writing() as session:
        session.execute(update(Reminder).where(Reminder.id == 1).values(channel="sms"))
    answer = edit(served, "", "Hi, invoice I-1 is due. Reply STOP to opt out. " + "x" * 300)
    assert "at most 320" in answer.json()["errors"]["body"]
    assert state_of(posted, 1) == "planned"
