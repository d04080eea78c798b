"""/ar end to end: status, aging, plan, pause, resume, never, automate, report and help, and
who may see amounts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Customer, Event
from bot.core.runtime import Runtime
from tests.handlers.posted_plan import message_of, state_of
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_ar_status_in_the_finance_channel_shows_balances(posted: Runtime, served: Any) -> None:
    answer = served.command("status customer 1").json()
    assert answer["response_type"] == "ephemeral"
    assert "*Customer 1* (C-1)" in answer["text"]
    assert "$1,200.00" in answer["text"] and "I-1" in answer["text"]
    assert "Next: reminder, 7 days late by email, waiting for approval" in answer["text"]


def test_ar_status_elsewhere_for_a_non_approver_shows_no_amounts(
    posted: Runtime, served: Any
) -> None:
    answer = served.command("status C-1", user="U0MEMBER", channel="C0GENERAL").json()
    assert "$" not in answer["text"]
    assert "shown to approvers and in the finance channel only" in answer["text"]


def test_ar_status_reads_the_name_as_typed_though_slack_escapes_it(
    posted: Runtime, served: Any
) -> None:
    """Slack sends `&`, `<` and `>` of a command's text as `&amp;`, `&lt;` and `&gt;`."""
    with posted.writing() as session:
        customer = session.scalars(select(Customer).where(Customer.external_id == "C-1")).one()
        customer.name = "Smith & Sons <West>"
    answer = served.command('status "Smith &amp; Sons &lt;West&gt;"').json()["text"]
    assert "*Smith &amp; Sons &lt;West&gt;* (C-1)" in answer


def test_ar_status_finds_a_customer_whose_id_is_another_customers_name(
    posted: Runtime, served: Any
) -> None:
    with posted.writing() as session:
        first = session.scalars(select(Customer).where(Customer.external_id == "C-1")).one()
        first.external_id, first.name = "ACME", "Acme Roofing"
        second = session.scalars(select(Customer).where(Customer.external_id == "C-2")).one()
        second.name = "Acme"
    for query in ("Acme Roofing", "ACME"):
        answer = served.command(f"status {query}").json()["text"]
        assert "*Acme Roofing* (ACME)" in answer and "$1,200.00" in answer, query
    assert "*Acme* (C-2)" in served.command("status Acme").json()["text"]


def test_ar_status_shows_the_customer_it_found_though_another_source_uses_the_same_id(
    posted: Runtime, served: Any
) -> None:
    with posted.writing() as session:
        first = session.scalars(select(Customer).where(Customer.external_id == "C-1")).one()
        first.name = "Acme Roofing"
        second = session.scalars(select(Customer).where(Customer.external_id == "C-2")).one()
        second.source, second.external_id = "xero", "C-1"
    answer = served.command("status Acme Roofing").json()["text"]
    assert "*Acme Roofing* (C-1)" in answer and "$1,200.00" in answer


def test_names_with_apostrophes_and_curly_quotes_are_read_as_typed(
    posted: Runtime, served: Any
) -> None:
    names = {"C-1": "O'Brien's Plumbing", "C-2": "Smith & Sons", "C-3": 'Bob\'s "Best" Pizza'}
    with posted.writing() as session:
        for external_id, name in names.items():
            customer = session.scalars(
                select(Customer).where(Customer.external_id == external_id)
            ).one()
            customer.name = name
    for typed in (
        "O'Brien's Plumbing",
        "O\u2019Brien\u2019s Plumbing share",
        "'O'Brien's Plumbing'",
    ):
        answer = served.command(f"status {typed}").json()["text"]
        assert "*O'Brien's Plumbing* (C-1)" in answer, typed
    pizza = served.command('status Bob\'s "Best" Pizza').json()["text"]
    assert '*Bob\'s "Best" Pizza* (C-3)' in pizza
    paused = served.command(
        "pause \u201cSmith &amp; Sons\u201d 7d \u201casked for time\u201d"
    ).json()["text"]
    assert "Paused reminders to *Smith &amp; Sons* until" in paused
    assert (
        "Reminders to *O'Brien's Plumbing* are back on"
        in (served.command("resume \u2018O'Brien's Plumbing\u2019").json()["text"])
    )


def test_ar_status_suggests_near_misses(posted: Runtime, served: Any) -> None:
    answer = served.command("status Custmer 1x").json()
    assert "Did you mean" in answer["text"]


def test_ar_pause_resume_never_automate(posted: Runtime, served: Any) -> None:
    assert "until 2026-03-30" in served.command('pause C-2 14d "asked for time"').json()["text"]
    with posted.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.external_id == "C-2")).one()
        assert customer.paused_until is not None
    assert "back on" in served.command("resume C-2").json()["text"]
    assert "always go to a person" in served.command("never C-2").json()["text"]
    assert "automated reminders again" in served.command("automate C-2").json()["text"]
    refused = served.command("never C-2", user="U0MEMBER", channel="C0GENERAL").json()
    assert "Only approvers" in refused["text"]
    with posted.sessions() as session:
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.like("customer.%")).order_by(Event.id)
        ).all()
    assert kinds[-4:] == [
        "customer.paused",
        "customer.resumed",
        "customer.never_automate",
        "customer.automate",
    ]


def test_ar_aging_plan_help_and_share(posted: Runtime, served: Any) -> None:
    assert "*USD*" in served.command("aging").json()["text"]
    plan = served.command("plan share").json()
    assert plan["response_type"] == "in_channel"
    assert "Standard: 3 reminders (3 waiting)" in plan["text"]
    assert "/ar status ACME" in served.command("help").json()["text"]
    unknown = served.command("frobnicate").json()
    assert "I don't know `frobnicate`" in unknown["text"] and "/ar aging" in unknown["text"]


def test_ar_pause_cancels_what_was_waiting_and_redraws_its_card(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    answer = served.command("pause C-2 7d").json()
    assert "1 waiting reminder(s) cancelled" in answer["text"]
    assert state_of(posted, 2) == "cancelled"
    wait_for(lambda: "Cancelled" in json.dumps(message_of(posted, slack_api, 2)["blocks"]))


def test_amounts_never_reach_people_outside_finance(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    stranger = served.command("plan", user="U0MEMBER", channel="C0GENERAL").json()
    assert "$" not in stranger["text"] and "3 reminders" in stranger["text"]
    shared = served.command("status C-1 share", user="U0APPROVER", channel="C0GENERAL").json()
    assert shared["response_type"] == "in_channel" and "$" not in shared["text"]
    served.event({"type": "app_home_opened", "user": "U0MEMBER", "channel": "D0", "tab": "home"})
    view = wait_for(lambda: slack_api.calls("views.publish"))[0]["view"]
    assert "$" not in json.dumps(view)


@pytest.mark.slow  # matplotlib renders the charts
def test_ar_report_in_the_finance_channel_uploads_the_charts(
    served: Any, posted: Runtime, slack_api: Any
) -> None:
    answer = served.command("report")

    assert answer.status_code == 200 and "Working out the report" in answer.text
    uploads = wait_for(lambda: slack_api.calls("files.completeUploadExternal"))
    assert uploads[0]["channel_id"] == "C0FINANCE"
    files = slack_api.files.values()
    assert files and all((f["data"] or b"").startswith(b"\x89PNG") for f in files)


@pytest.mark.slow  # matplotlib renders the charts
def test_ar_report_in_a_finance_channel_arbot_is_not_in_says_to_invite_it(
    served: Any, posted: Runtime, slack_api: Any
) -> None:
    slack_api.fail_next("files.completeUploadExternal", "not_in_channel")

    served.command("report", response_url=slack_api.response_url("C0FINANCE", ""))
    told = wait_for(lambda: slack_api.responses())[0]

    assert told["kind"] == "ephemeral"
    assert "arbot is not in this channel" in told["body"]["text"]
    assert "`/invite @arbot`" in told["body"]["text"] and "/ar report" in told["body"]["text"]


def test_ar_report_elsewhere_shows_no_amounts(served: Any, posted: Runtime, slack_api: Any) -> None:
    answer = served.command("report", channel="C0RANDOM")

    assert "finance channel only" in answer.text and "$" not in answer.text
    assert slack_api.calls("files.getUploadURLExternal") == []


@pytest.mark.slow  # matplotlib renders the charts
def test_ar_report_elsewhere_posts_no_charts_after_its_answer(
    served: Any, posted: Runtime, slack_api: Any
) -> None:
    assert "finance channel only" in served.command("report", channel="C0RANDOM").text
    # Nothing to wait for when nothing happens: so ask again in the finance channel, and wait
    # for that report. Charts the refused one had set off would have started before it.
    assert "Working out the report" in served.command("report").text
    wait_for(lambda: slack_api.calls("files.completeUploadExternal"))
    uploads = slack_api.calls("files.completeUploadExternal")
    assert [u["channel_id"] for u in uploads] == ["C0FINANCE"]


def test_a_customer_name_reaches_answers_and_the_app_home_escaped(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from bot.escalations import service

    with posted.writing() as session:
        customer = session.scalars(select(Customer).where(Customer.external_id == "C-2")).one()
        customer.name = "<!channel> & Co"
        service.open_or_add(session, customer.id, "replied", posted.clock.now())
    answer = served.command("pause C-2 7d").json()["text"]
    assert "&lt;!channel&gt; &amp; Co" in answer and "<!channel>" not in answer
    served.event({"type": "app_home_opened", "user": "U0APPROVER", "channel": "D0", "tab": "home"})
    view = json.dumps(wait_for(lambda: slack_api.calls("views.publish"))[0]["view"])
    assert "&lt;!channel&gt; &amp; Co" in view and "<!channel>" not in view
