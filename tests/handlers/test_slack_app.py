"""End to end: the plan in Slack, Approve / Edit / Skip and /ar, through the real ASGI app with
signed requests shaped like Slack's, against the local fake Web API."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.core.models import Customer, EditExample, Event, Reminder
from bot.core.runtime import Runtime
from bot.planning import posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.slack_chat import SlackChat, web_client
from tests.support import REPO
from tests.support.ledger_files import a_week_late, row, write
from tests.support.slack_requests import sign, wait_for

TODAY = date(2026, 3, 16)


def _ledger(runtime: Runtime, tmp_path: Path, customers: int = 3) -> None:
    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import read_ledger_csv

    rows = a_week_late(customers)
    batch = read_ledger_csv(write(tmp_path / "l.csv", rows))
    with runtime.writing() as session:
        apply_batch(session, batch, runtime.clock.now())


def _post_plan(runtime: Runtime, slack_api: Any) -> None:
    with runtime.writing() as session:
        run_plan(
            session, PlanRules.from_settings(runtime.settings), TODAY, runtime.clock.now(), False
        )
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    posting.post_plan(runtime, chat, "C0FINANCE", TODAY)


@pytest.fixture
def posted(slack_runtime: Runtime, slack_api: Any, tmp_path: Path) -> Runtime:
    _ledger(slack_runtime, tmp_path)
    _post_plan(slack_runtime, slack_api)
    return slack_runtime


def _state(runtime: Runtime, reminder_id: int) -> str:
    with runtime.sessions() as session:
        return session.scalar(select(Reminder.state).where(Reminder.id == reminder_id)) or ""


def _message_of(runtime: Runtime, slack_api: Any, reminder_id: int) -> dict[str, Any]:
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        key = (reminder.slack_channel, reminder.slack_ts)
    return slack_api.messages[key]


def test_the_plan_is_posted_as_a_header_and_cards_within_block_kits_limits(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    _ledger(slack_runtime, tmp_path, customers=30)
    _post_plan(slack_runtime, slack_api)
    posts = slack_api.calls("chat.postMessage")
    header, *groups = posts
    assert "Approve all 30 standard" in json.dumps(header["blocks"])
    assert sum(json.dumps(g["blocks"]).count('"action_id": "approve"') for g in groups) == 30
    assert all(len(g["blocks"]) <= 50 for g in groups)
    assert len(groups) == 3  # 30 cards of 4 blocks: 12 to a message
    with slack_runtime.sessions() as session:
        unposted = session.scalar(select(func.count()).where(Reminder.slack_ts.is_(None)))
    assert unposted == 0


def test_approve_updates_the_message_in_place_with_who_and_when(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    response = served.click("approve", "1")
    assert response.status_code == 200
    wait_for(lambda: slack_api.calls("chat.update"))
    assert _state(posted, 1) == "approved"
    message = _message_of(posted, slack_api, 1)
    assert "Approved by <@U0APPROVER>" in json.dumps(message["blocks"])
    with posted.sessions() as session:
        event = session.scalars(select(Event).where(Event.kind == "reminder.approved")).one()
    assert (event.actor, event.reminder_id) == ("U0APPROVER", 1)


def test_a_second_click_changes_nothing_and_names_who_approved(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("approve", "1")
    wait_for(lambda: slack_api.calls("chat.update"))
    served.click(
        "approve",
        "1",
        user="U0SECOND",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert ephemeral[0]["user"] == "U0SECOND"
    assert "already approved by <@U0APPROVER>" in ephemeral[0]["text"]
    with posted.sessions() as session:
        assert session.scalar(select(func.count()).where(Event.kind == "reminder.approved")) == 1
    assert len(slack_api.calls("chat.update")) == 2  # card and header, once


def test_two_approvers_racing_approve_once(posted: Runtime, served: Any, slack_api: Any) -> None:
    barrier = threading.Barrier(2)

    def click(user: str) -> None:
        barrier.wait()
        served_client = httpx.Client(timeout=10)
        try:
            served.click("approve", "2", user=user)
        finally:
            served_client.close()

    threads = [threading.Thread(target=click, args=(u,)) for u in ("U0APPROVER", "U0SECOND")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    with posted.sessions() as session:
        assert session.scalar(select(func.count()).where(Event.kind == "reminder.approved")) == 1


def test_a_non_approver_is_refused_and_nothing_changes(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("approve", "1", user="U0STRANGER")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "Only approvers" in ephemeral[0]["text"]
    assert _state(posted, 1) == "planned"
    assert slack_api.calls("chat.update") == []


def test_a_forged_signature_gets_401_and_changes_nothing(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    response = served.click("approve", "1", signature="v0=" + "0" * 64)
    assert response.status_code == 401
    assert _state(posted, 1) == "planned"


def test_a_request_older_than_five_minutes_is_refused(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    old = int(time.time()) - 301
    response = served.click("approve", "1", timestamp=old)
    assert response.status_code == 401
    assert _state(posted, 1) == "planned"


def test_a_replayed_body_under_a_new_timestamp_fails_the_signature(
    posted: Runtime, served: Any
) -> None:
    body = "payload=" + json.dumps({"type": "block_actions"})
    old = int(time.time()) - 400
    signature = sign(body, old)  # captured long ago
    response = served.send(
        body, "application/x-www-form-urlencoded", timestamp=int(time.time()), signature=signature
    )
    assert response.status_code == 401


def test_edit_opens_a_prefilled_modal_and_a_clean_edit_is_saved_and_approved(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("edit", "1", trigger_id="trigger-edit")
    opened = wait_for(lambda: slack_api.calls("views.open"))
    view = opened[0]["view"]
    assert view["callback_id"] == "edit_reminder"
    assert "Invoice I-1" in json.dumps(view) or "I-1" in json.dumps(view)
    body = (
        "Hi Maria,\n\nA quick note about invoice I-1. Could you let us know when to expect it?\n\n"
        "To stop receiving these emails, just reply and say so."
    )
    response = served.submit(
        "edit_reminder",
        view["private_metadata"],
        {
            "subject": {"value": {"type": "plain_text_input", "value": "Invoice I-1"}},
            "body": {"value": {"type": "plain_text_input", "value": body}},
        },
    )
    assert response.status_code == 200
    wait_for(lambda: _state(posted, 1) == "approved")
    with posted.sessions() as session:
        reminder = session.get(Reminder, 1)
        example = session.scalars(select(EditExample)).one()
    assert reminder is not None and reminder.subject == "Invoice I-1"
    assert example.editor == "U0APPROVER"


def test_an_edit_the_linter_refuses_shows_errors_in_the_modal_and_saves_nothing(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    response = served.submit(
        "edit_reminder",
        "1|C0FINANCE",
        {
            "subject": {"value": {"type": "plain_text_input", "value": "Final notice"}},
            "body": {
                "value": {"type": "plain_text_input", "value": "Pay now or face legal action."}
            },
        },
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert "legal action" in answer["errors"]["body"]
    assert _state(posted, 1) == "planned"


def test_an_expired_trigger_id_tells_the_user_to_click_again(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    slack_api.expired_triggers.add("stale-trigger")
    served.click("edit", "1", trigger_id="stale-trigger")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "click the button again" in ephemeral[0]["text"]
    assert _state(posted, 1) == "planned"


def test_skip_asks_for_a_reason_and_the_message_shows_it(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("skip", "3", trigger_id="trigger-skip")
    view = wait_for(lambda: slack_api.calls("views.open"))[0]["view"]
    assert view["callback_id"] == "skip_reminder"
    served.submit(
        "skip_reminder",
        view["private_metadata"],
        {"reason": {"value": {"type": "plain_text_input", "value": "spoke to them today"}}},
    )
    wait_for(lambda: _state(posted, 3) == "skipped")
    wait_for(lambda: slack_api.calls("chat.update"))
    text = json.dumps(_message_of(posted, slack_api, 3)["blocks"])
    assert "Skipped by <@U0APPROVER>" in text and "spoke to them today" in text


def test_approve_all_for_a_tier(posted: Runtime, served: Any, slack_api: Any) -> None:
    served.click("approve_all_standard", f"{TODAY.isoformat()}|standard")
    wait_for(lambda: all(_state(posted, n) == "approved" for n in (1, 2, 3)))
    wait_for(lambda: len(slack_api.calls("chat.update")) >= 2)  # the cards' message and the header


def test_a_later_state_change_updates_the_same_message(posted: Runtime, slack_api: Any) -> None:
    from sqlalchemy import update

    with posted.writing() as session:
        session.execute(
            update(Reminder).where(Reminder.id == 1).values(state="cancelled", cancel_reason="paid")
        )
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    with posted.sessions() as session:
        posting.refresh(session, chat, [1], posted.settings.timezone)
    text = json.dumps(_message_of(posted, slack_api, 1)["blocks"])
    assert "Cancelled" in text and "paid" in text


def test_a_rate_limited_update_is_retried_and_not_lost(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    slack_api.rate_limit_next("chat.update", retry_after=1)
    served.click("approve", "1")
    wait_for(
        lambda: "Approved by" in json.dumps(_message_of(posted, slack_api, 1)["blocks"]), timeout=10
    )
    assert slack_api.rate_limited_count == 1


# --- /ar -------------------------------------------------------------------------------------


def test_ar_status_in_the_finance_channel_shows_balances(posted: Runtime, served: Any) -> None:
    answer = served.command("status customer 1").json()
    assert answer["response_type"] == "ephemeral"
    assert "*Customer 1* (C-1)" in answer["text"]
    assert "$1,200.00" in answer["text"] and "I-1" in answer["text"]
    assert "Next: plus7 by email, planned" in answer["text"]


def test_ar_status_elsewhere_for_a_non_approver_shows_no_amounts(
    posted: Runtime, served: Any
) -> None:
    answer = served.command("status C-1", user="U0MEMBER", channel="C0GENERAL").json()
    assert "$" not in answer["text"]
    assert "shown to approvers and in the finance channel only" in answer["text"]


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
    assert "standard: 3 reminders (3 waiting)" in plan["text"]
    assert "/ar status ACME" in served.command("help").json()["text"]
    unknown = served.command("frobnicate").json()
    assert "I don't know `frobnicate`" in unknown["text"] and "/ar aging" in unknown["text"]


def test_the_app_home_shows_the_queue_escalations_and_aging(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.event(
        {"type": "app_home_opened", "user": "U0APPROVER", "channel": "D0HOME", "tab": "home"}
    )
    published = wait_for(lambda: slack_api.calls("views.publish"))
    view = json.dumps(published[0]["view"])
    assert "Today's queue" in view and "Open escalations" in view and "Aging" in view


def test_healthz_answers(posted: Runtime, served: Any) -> None:
    response = httpx.get(served.url.replace("/slack/events", "/healthz"))
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_arbot_plan_posts_the_stored_plan_to_the_finance_channel(
    cli: Any, slack_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    due = (TODAY - timedelta(days=7)).isoformat()
    rows = [
        row(
            customer_id="C-1",
            customer_name="Customer 1",
            invoice_number="I-1",
            issue_date="2026-01-01",
            due_date=due,
        )
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    result = cli("plan")
    assert result.code == 0, result.stderr
    assert "Posted to Slack channel C0FINANCE" in result.stdout
    assert len(slack_api.calls("chat.postMessage")) == 2  # the header and one group
    again = cli("plan")  # nothing new to post
    assert again.code == 0
    assert len([c for c in slack_api.calls("chat.postMessage") if "blocks" in c]) <= 3


def test_arbot_plan_says_what_to_fix_when_slack_refuses(
    cli: Any, slack_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-wrong",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    due = (TODAY - timedelta(days=7)).isoformat()
    rows = [row(issue_date="2026-01-01", due_date=due)]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    result = cli("plan")
    assert result.code == 1
    assert "the plan is stored, but Slack refused it (invalid_auth)" in result.stderr


def test_with_no_approver_list_every_member_of_the_finance_channel_may_approve(
    posted: Runtime, slack_api: Any
) -> None:
    from handlers.slack import Approvers

    posted.settings.approvers = []
    approvers = Approvers(posted, web_client("xoxb-test", slack_api.url))
    assert approvers.allows("U0MEMBER")
    assert not approvers.allows("U0OUTSIDER")


def test_the_manifest_asks_for_exactly_the_scopes_it_needs() -> None:
    import yaml

    manifest = yaml.safe_load((REPO / "slack" / "manifest.yml").read_text())
    assert manifest["oauth_config"]["scopes"] == {
        "bot": [
            "chat:write",
            "commands",
            "channels:read",
            "groups:read",
            "channels:history",
            "groups:history",
            "files:write",
            "incoming-webhook",
        ]
    }
    from integrations.slack_install import BOT_SCOPES

    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]  # what /slack/install asks
    assert manifest["oauth_config"]["redirect_urls"] == [
        "https://arbot.example.com/slack/oauth_redirect"
    ]
    assert "user" not in manifest["oauth_config"]["scopes"]
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ar"]
    urls = {
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["features"]["slash_commands"][0]["url"],
    }
    assert urls == {"https://arbot.example.com/slack/events"}


def test_approving_a_reminder_whose_invoice_was_disputed_meanwhile_cancels_it(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    from bot.core.models import Invoice

    with posted.writing() as session:
        session.execute(update(Invoice).where(Invoice.number == "I-1").values(disputed=True))
    served.click("approve", "1")
    wait_for(lambda: _state(posted, 1) == "cancelled")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "already cancelled" in ephemeral[0]["text"]


def test_ar_pause_cancels_what_was_waiting_and_redraws_its_card(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    answer = served.command("pause C-2 7d").json()
    assert "1 waiting reminder(s) cancelled" in answer["text"]
    assert _state(posted, 2) == "cancelled"
    wait_for(lambda: "Cancelled" in json.dumps(_message_of(posted, slack_api, 2)["blocks"]))


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


def test_a_failure_after_the_ack_is_told_to_the_person_who_clicked(
    posted: Runtime, served: Any, slack_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.reminders import approvals

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(approvals, "approve", broken)
    served.click("approve", "1")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "That may not have gone through (RuntimeError)" in ephemeral[0]["text"]
    assert _state(posted, 1) == "planned"


def test_a_click_from_another_workspace_changes_nothing(posted: Runtime, served: Any) -> None:
    payload = served.click_payload("approve", "1")
    payload["team"] = {"id": "T0OTHER", "domain": "other"}
    payload["user"]["team_id"] = "T0OTHER"
    served.interactive(payload)
    import time as _time

    _time.sleep(0.5)  # nothing to poll for: the point is that nothing happens
    assert _state(posted, 1) == "planned"


def test_an_escalation_card_names_who_it_was_routed_to(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import read_ledger_csv

    slack_runtime.settings.escalation_routes = {"standard": "S0FINANCE"}
    rows = [
        row(
            customer_id="C-9",
            customer_name="Late Co",
            invoice_number="L-1",
            owner_slack_id="",
            issue_date="2026-01-01",
            due_date="2026-02-01",
        )
    ]
    with slack_runtime.writing() as session:
        apply_batch(
            session, read_ledger_csv(write(tmp_path / "l.csv", rows)), slack_runtime.clock.now()
        )
    _post_plan(slack_runtime, slack_api)
    text = json.dumps(slack_api.calls("chat.postMessage")[1]["blocks"])
    assert "<!subteam^S0FINANCE>" in text


def test_a_message_too_long_for_slacks_form_is_not_cut_to_fit(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    with posted.writing() as session:
        session.execute(update(Reminder).where(Reminder.id == 1).values(body_text="x" * 3001))
    served.click("edit", "1")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "more than Slack's form can hold (3000)" in ephemeral[0]["text"]
    assert slack_api.calls("views.open") == []


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


def test_ar_report_elsewhere_shows_no_amounts(served: Any, posted: Runtime, slack_api: Any) -> None:
    answer = served.command("report", channel="C0RANDOM")

    assert "finance channel only" in answer.text
    time.sleep(0.3)
    assert slack_api.calls("files.completeUploadExternal") == []


def test_a_proposed_playbook_is_approved_from_its_slack_card(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    import shutil

    from bot.core.models import PlaybookVersion
    from bot.learning import proposals, versions
    from playbooks.loader import BUNDLED

    shutil.copytree(BUNDLED.parent / "templates", tmp_path / "templates")
    softer = tmp_path / "softer.yml"
    softer.write_text(
        BUNDLED.read_text().replace(
            "offset_days: 21, channels: [email]", "offset_days: 28, channels: [email]"
        )
    )
    with slack_runtime.writing() as session:
        version = versions.propose(
            session, softer, "system", "strategic check-in a week later", slack_runtime.clock.now()
        )
        view = proposals.view_of(session, version.id)
        version_id = version.id
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    channel, ts = chat.post_proposal("C0FINANCE", view)
    card = slack_api.messages[(channel, ts)]
    assert "proposal_approve" in json.dumps(card["blocks"])

    served.click(
        "proposal_approve", str(version_id), user="U0MEMBER", message_ts=ts
    )  # not an approver
    served.click("proposal_approve", str(version_id), message_ts=ts)

    def status() -> str:
        with slack_runtime.sessions() as session:
            return session.get(PlaybookVersion, version_id).status  # type: ignore[union-attr]

    wait_for(lambda: status() == "active")
    updated = wait_for(
        lambda: "Approved" in json.dumps(slack_api.messages[(channel, ts)]["blocks"])
    )
    assert updated


def test_a_bank_payment_is_placed_from_its_review_card(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    from bot.core.models import Invoice, PaymentReview
    from bot.ledger.upsert import apply_batch
    from bot.payments import bank_import, reviews
    from integrations.csv_ledger import read_ledger_csv
    from integrations.csv_payments import read_payments

    rows = [row(invoice_number="I-1"), row(invoice_number="I-2", due_date="2026-02-20")]
    with slack_runtime.writing() as session:
        batch = read_ledger_csv(write(tmp_path / "l.csv", rows))
        apply_batch(session, batch, slack_runtime.clock.now())
    bank = tmp_path / "bank.csv"  # 1,200 from Ridgeline, who owes two invoices of 1,200
    bank.write_text(
        "date,amount,currency,reference,payer\n2026-03-14,1200.00,USD,March,Ridgeline Roofing\n"
    )
    with slack_runtime.writing() as session:
        summary = bank_import.import_payments(
            session, read_payments(bank), "bank.csv", slack_runtime.clock.now()
        )
        posted = reviews.post_open(
            session, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FINANCE"
        )
    assert summary.to_review == 1 and posted
    with slack_runtime.sessions() as session:
        review = session.scalars(select(PaymentReview)).one()
        options = len(review.candidates)
    assert options == 2

    served.click("review_apply_1", f"{review.id}:1", message_ts=review.slack_ts or "")

    def applied() -> bool:
        with slack_runtime.sessions() as session:
            return session.get(PaymentReview, review.id).state == "applied"  # type: ignore[union-attr]

    wait_for(applied)
    with slack_runtime.sessions() as session:
        assert Decimal(0) in set(session.scalars(select(Invoice.balance)))
    card = wait_for(
        lambda: (
            "applied by" in json.dumps(slack_api.messages[(review.slack_channel, review.slack_ts)])
        )
    )
    assert card
