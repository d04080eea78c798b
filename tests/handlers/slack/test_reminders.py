"""A reminder's buttons end to end, through the real ASGI app with signed requests shaped like
Slack's, against the local fake Web API: the plan's cards, Approve (once), Approve all, Edit and
Skip with their forms, and the card redrawn after each."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.models import EditExample, Event, Reminder
from bot.core.runtime import Runtime
from bot.planning import posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import (
    TODAY,
    approve_value,
    buttons_of,
    ledger,
    message_of,
    post_plan,
    state_of,
)
from tests.support.ledger_files import row, write
from tests.support.slack_requests import PATIENCE, wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_the_plan_is_posted_as_a_header_and_cards_within_block_kits_limits(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    ledger(slack_runtime, tmp_path, customers=30)
    post_plan(slack_runtime, slack_api)
    posts = slack_api.calls("chat.postMessage")
    header, *groups = posts
    assert "Approve all 30 standard" in json.dumps(header["blocks"])
    assert sum(json.dumps(g["blocks"]).count('"action_id": "approve"') for g in groups) == 30
    assert all(len(g["blocks"]) <= 50 for g in groups)
    assert len(groups) == 2  # 30 cards of 3 blocks: 16 to a message
    with slack_runtime.sessions() as session:
        unposted = session.scalar(select(func.count()).where(Reminder.slack_ts.is_(None)))
    assert unposted == 0


def test_approve_updates_the_message_in_place_with_who_and_when(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    response = served.click("approve", approve_value(posted, slack_api, 1))
    assert response.status_code == 200
    wait_for(lambda: slack_api.calls("chat.update"))
    assert state_of(posted, 1) == "approved"
    wait_for(
        lambda: (
            "Approved by <@U0APPROVER>" in json.dumps(message_of(posted, slack_api, 1)["blocks"])
        )
    )
    with posted.sessions() as session:
        event = session.scalars(select(Event).where(Event.kind == "reminder.approved")).one()
    assert (event.actor, event.reminder_id) == ("U0APPROVER", 1)


def test_a_second_click_changes_nothing_and_names_who_approved(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    first = approve_value(posted, slack_api, 1)  # what both clickers' cards showed
    served.click("approve", first)
    wait_for(lambda: len(slack_api.calls("chat.update")) >= 2)  # the card, then the header
    served.click(
        "approve",
        first,
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
    value = approve_value(posted, slack_api, 2)

    def click(user: str) -> None:
        barrier.wait()
        served.click("approve", value, user=user)

    threads = [threading.Thread(target=click, args=(u,)) for u in ("U0APPROVER", "U0SECOND")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE)
    wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    with posted.sessions() as session:
        assert session.scalar(select(func.count()).where(Event.kind == "reminder.approved")) == 1


def test_a_non_approver_is_refused_and_nothing_changes(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("approve", "1", user="U0STRANGER")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "Only approvers" in ephemeral[0]["text"]
    assert state_of(posted, 1) == "planned"
    assert slack_api.calls("chat.update") == []


def test_edit_opens_a_prefilled_modal_and_a_clean_edit_is_saved_and_approved(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("edit", "1", trigger_id="trigger-edit")
    opened = wait_for(lambda: slack_api.calls("views.open"))
    view = opened[0]["view"]
    assert view["callback_id"] == "edit_reminder"
    assert "Invoice I-1" in json.dumps(view) or "I-1" in json.dumps(view)
    prefilled = next(b for b in view["blocks"] if b.get("block_id") == "body")
    body = (
        "A quick note first: thank you for your business.\n\n"
        + (prefilled["element"]["initial_value"])
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
    wait_for(lambda: state_of(posted, 1) == "approved")
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
    assert state_of(posted, 1) == "planned"


def test_an_expired_trigger_id_tells_the_user_to_click_again(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    slack_api.expired_triggers.add("stale-trigger")
    served.click("edit", "1", trigger_id="stale-trigger")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "click the button again" in ephemeral[0]["text"]
    assert state_of(posted, 1) == "planned"


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
    wait_for(lambda: state_of(posted, 3) == "skipped")

    def card() -> str:
        return json.dumps(message_of(posted, slack_api, 3)["blocks"])

    wait_for(lambda: "Skipped by <@U0APPROVER>" in card() and "spoke to them today" in card())


def test_approve_all_for_a_tier(posted: Runtime, served: Any, slack_api: Any) -> None:
    served.click("approve_all_standard", approve_all_button(slack_api)["value"])
    wait_for(lambda: all(state_of(posted, n) == "approved" for n in (1, 2, 3)))
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
    text = json.dumps(message_of(posted, slack_api, 1)["blocks"])
    assert "Cancelled" in text and "paid" in text


def test_a_rate_limited_update_is_retried_and_not_lost(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    slack_api.rate_limit_next("chat.update", retry_after=0)
    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: "Approved by" in json.dumps(message_of(posted, slack_api, 1)["blocks"]))
    assert slack_api.rate_limited_count == 1


def test_approving_a_reminder_whose_invoice_was_disputed_meanwhile_cancels_it(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    from bot.core.models import Invoice

    with posted.writing() as session:
        session.execute(update(Invoice).where(Invoice.number == "I-1").values(disputed=True))
    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: state_of(posted, 1) == "cancelled")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    # this click cancelled it: not "already cancelled", as if someone had before
    assert ephemeral[0]["text"] == (
        "Not approved: arbot cancelled this reminder just now instead; "
        "it is cancelled because an invoice it covers is disputed."
    )


def test_an_approve_that_finds_the_invoice_paid_says_it_cancelled_it_now_by_a_payment(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    from bot.core.models import Invoice

    with posted.writing() as session:
        session.execute(
            update(Invoice).where(Invoice.number == "I-1").values(status="paid", balance=0)
        )
    shown = approve_value(posted, slack_api, 1)
    served.click("approve", shown)
    wait_for(lambda: state_of(posted, 1) == "cancelled")
    told = wait_for(lambda: slack_api.calls("chat.postEphemeral"))[0]["text"]
    assert told == (
        "Not approved: arbot cancelled this reminder just now instead; it is cancelled by a payment."
    )
    served.click("approve", shown, user="U0SECOND")  # a later click: it was cancelled before
    later = wait_for(lambda: slack_api.calls("chat.postEphemeral")[1:])[0]["text"]
    assert later.startswith("Nothing changed: this reminder was already cancelled by a payment")


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
    post_plan(slack_runtime, slack_api)
    # Shown once, as its escalation; the plan's header names it and who it went to, no card.
    (header,) = slack_api.calls("chat.postMessage")
    text = json.dumps(header["blocks"])
    assert "Handed to a person* (1)" in text and "Late Co" in text
    assert "<!subteam^S0FINANCE>" in text
    assert "finance channel" not in text


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


def approve_all_button(slack_api: Any, tier: str = "standard") -> dict[str, Any]:
    """The tier's Approve all button, as the plan's header (its first message) was posted."""
    header = slack_api.calls("chat.postMessage")[0]
    row = next(b for b in header["blocks"] if b["type"] == "actions")
    return next(e for e in row["elements"] if e["action_id"] == f"approve_all_{tier}")


def test_approve_all_asks_first_naming_the_count_and_total(posted: Runtime, slack_api: Any) -> None:
    confirm = approve_all_button(slack_api)["confirm"]
    assert confirm["title"]["text"] == "Approve 3 reminders?"
    assert "3 reminders of the standard tier" in confirm["text"]["text"]
    assert "$" in confirm["text"]["text"]  # the total they ask for
    assert confirm["confirm"]["text"] == "Approve 3"


def test_approve_all_approves_only_what_its_header_showed_and_was_posted(
    posted: Runtime, served: Any, slack_api: Any, tmp_path: Path
) -> None:
    from sqlalchemy import update

    value = approve_all_button(slack_api)["value"]
    with posted.writing() as session:  # a card that never reached Slack
        session.execute(update(Reminder).where(Reminder.id == 3).values(slack_ts=None))
    ledger(posted, tmp_path, customers=4)  # a fourth customer, planned after the post
    with posted.writing() as session:
        run_plan(
            session, PlanRules.from_settings(posted.settings), TODAY, posted.clock.now(), False
        )
        late = session.scalars(select(Reminder).where(Reminder.id > 3)).one()
        late.slack_channel, late.slack_ts = "C0FINANCE", "1700000009.000100"  # shown since
    served.click("approve_all_standard", value)
    wait_for(lambda: state_of(posted, 1) == state_of(posted, 2) == "approved")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "Approved 2 standard reminders" in ephemeral[0]["text"]
    assert state_of(posted, 3) == "planned" and state_of(posted, late.id) == "planned"


def test_approve_all_cancels_a_paid_reminder_instead_of_approving_it(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from decimal import Decimal

    from sqlalchemy import update

    from bot.core.models import Invoice

    with posted.writing() as session:
        session.execute(
            update(Invoice).where(Invoice.number == "I-2").values(balance=Decimal(0), status="paid")
        )
    served.click("approve_all_standard", approve_all_button(slack_api)["value"])
    wait_for(lambda: state_of(posted, 1) == "approved")
    assert state_of(posted, 2) == "cancelled"
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "1 cancelled instead, not approved: by a payment" in ephemeral[0]["text"]


def test_undo_before_the_send_worker_takes_it_puts_the_buttons_back(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: '"undo"' in json.dumps(message_of(posted, slack_api, 1)["blocks"]))
    with posted.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None and reminder.send_after is not None
        assert reminder.send_after >= posted.clock.now() + timedelta(seconds=300)
    served.click("undo", "1")
    wait_for(lambda: state_of(posted, 1) == "planned")
    wait_for(lambda: buttons_of(posted, slack_api, 1) == ["approve", "edit", "skip"])
    with posted.sessions() as session:
        event = session.scalars(
            select(Event).where(Event.kind == "reminder.approval_withdrawn")
        ).one()
    assert (event.actor, event.payload) == ("U0APPROVER", {"approved_by": "U0APPROVER"})


def test_undo_after_the_send_worker_took_it_is_refused(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: state_of(posted, 1) == "approved")
    with posted.writing() as session:  # the send worker's claim
        session.execute(update(Reminder).where(Reminder.id == 1).values(state="sending"))
    served.click("undo", "1")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "Too late to undo: this reminder is already sending" in ephemeral[0]["text"]
    assert state_of(posted, 1) == "sending"


def test_an_approve_all_can_be_undone_at_once(posted: Runtime, served: Any, slack_api: Any) -> None:
    served.click("approve_all_standard", approve_all_button(slack_api)["value"])
    told = wait_for(lambda: slack_api.calls("chat.postEphemeral"))[0]
    undo = next(e for b in told["blocks"] if b["type"] == "actions" for e in b["elements"])
    served.click("undo_all", undo["value"])
    wait_for(lambda: all(state_of(posted, n) == "planned" for n in (1, 2, 3)))


def test_the_approve_all_clicker_is_told_at_the_clicks_response_url_not_by_the_web_api(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.response_urls = slack_api.response_url  # each click carries one, as Slack's do
    header_ts = slack_api.records("chat.postMessage")[0]["response"]["ts"]
    served.click(
        "approve_all_standard", approve_all_button(slack_api)["value"], message_ts=header_ts
    )
    told = wait_for(lambda: slack_api.responses("ephemeral"))[0]
    assert (told["status"], told["ts"]) == (200, header_ts)
    assert told["body"]["text"].startswith("Approved 3 standard reminders")
    undo = next(e for b in told["body"]["blocks"] if b["type"] == "actions" for e in b["elements"])
    served.click("undo_all", undo["value"])
    wait_for(lambda: all(state_of(posted, n) == "planned" for n in (1, 2, 3)))
    undone = wait_for(lambda: slack_api.responses("ephemeral")[1:])[0]
    assert undone["body"]["text"].startswith("Undone: 3 standard reminders")
    assert slack_api.calls("chat.postEphemeral") == []


def test_the_approve_all_clicker_is_told_by_chat_post_ephemeral_when_the_response_url_fails(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.response_urls = slack_api.response_url
    slack_api.fail_response_next("expired_url", 404)
    served.click("approve_all_standard", approve_all_button(slack_api)["value"])
    told = wait_for(lambda: slack_api.calls("chat.postEphemeral"))[0]
    assert told["text"].startswith("Approved 3 standard reminders")
    assert any(b["type"] == "actions" for b in told["blocks"])  # the Undo, still
    assert [(r["status"], r["answer"]) for r in slack_api.responses()] == [(404, "expired_url")]


def test_the_send_claim_waits_for_the_undo_window(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from bot.planning.send_window import Window
    from bot.reminders.outbox import FlushReport, SendConfig, claim

    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: state_of(posted, 1) == "approved")
    config = SendConfig("ar@b.example", "B", "k", Window())
    with posted.writing() as session:
        soon, _ = claim(session, posted.clock.now(), config, FlushReport(), {"email"})
    later = posted.clock.now() + timedelta(seconds=posted.settings.undo_seconds)
    with posted.writing() as session:
        due, _ = claim(session, later, config, FlushReport(), {"email"})
    assert soon == [] and [c.reminder_id for c in due] == [1]


def test_an_edit_that_drops_the_amount_is_refused_under_the_field(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    with posted.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None and reminder.body_text is not None
        original = reminder.body_text
    amount = re.search(r"\$[\d,]+\.\d\d", original)
    assert amount is not None
    response = served.submit(
        "edit_reminder",
        "1|C0FINANCE",
        {
            "subject": {"value": {"type": "plain_text_input", "value": "Invoice I-1"}},
            "body": {
                "value": {
                    "type": "plain_text_input",
                    "value": original.replace(amount.group(0), "the balance"),
                }
            },
        },
    )
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert "put back the amount" in answer["errors"]["body"]
    assert state_of(posted, 1) == "planned"


def test_an_edit_that_changes_an_amount_is_refused_in_the_form_and_nothing_typed_is_lost(
    slack_runtime: Runtime, served: Any, slack_api: Any, tmp_path: Path
) -> None:
    """¥40,000 made ¥4,000 still has an amount's shape: the form must hold the same amounts the
    save holds, so the error stands under the field and the typed edit stays in the form."""
    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import read_ledger_csv
    from tests.support.ledger_files import a_week_late

    rows = a_week_late(1, currency="JPY", amount="40000", balance="40000")
    with slack_runtime.writing() as session:
        apply_batch(
            session, read_ledger_csv(write(tmp_path / "l.csv", rows)), slack_runtime.clock.now()
        )
    post_plan(slack_runtime, slack_api)
    with slack_runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None and reminder.body_text is not None
        original = reminder.body_text.replace("\u00a0", " ")
    assert "¥40,000" in original
    response = served.submit(
        "edit_reminder",
        "1|C0FINANCE",
        {
            "subject": {"value": {"type": "plain_text_input", "value": reminder.subject or ""}},
            "body": {
                "value": {
                    "type": "plain_text_input",
                    "value": original.replace("¥40,000", "¥4,000"),
                }
            },
        },
    )
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert answer["errors"]["body"] == "put back the amount ¥40,000"
    assert state_of(slack_runtime, 1) == "planned"


def test_forms_do_not_open_for_a_decided_reminder_and_say_who_decided(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: state_of(posted, 1) == "approved")
    with posted.writing() as session:
        session.execute(update(Reminder).where(Reminder.id == 1).values(state="sent"))
        session.execute(
            update(Reminder).where(Reminder.id == 2).values(state="cancelled", cancel_reason="paid")
        )
    served.click("skip", "1", trigger_id="t-skip")
    served.click("edit", "2", trigger_id="t-edit")
    told = wait_for(
        lambda: (
            len(slack_api.calls("chat.postEphemeral")) >= 2
            and slack_api.calls("chat.postEphemeral")
        )
    )
    texts = sorted(t["text"] for t in told)
    assert slack_api.calls("views.open") == []
    assert (
        texts[0] == "This reminder can no longer be edited: it was already cancelled by a payment."
    )
    assert texts[1].startswith(
        "This reminder can no longer be skipped: it was already sent (approved by <@U0APPROVER>) at "
    )
    assert texts[1].endswith("EDT.")  # the business's time, as on the cards


def test_a_refusal_mentions_people_and_names_what_is_not_a_person() -> None:
    from bot.core.vocabulary import TRUSTED_APPROVER
    from handlers.slack.reminders import who_acted

    kit: Any = None  # who_acted reads nothing from the kit
    assert who_acted(kit, "approved", "U0APPROVER", None) == "approved by <@U0APPROVER>"
    trusted = who_acted(kit, "sent", TRUSTED_APPROVER, None)
    assert trusted == "sent (approved by arbot, for a step that earned trust)"
    assert "<@" not in who_acted(kit, "approved", "<!channel> & co", None)


def test_an_approve_that_cancels_a_stale_reminder_redraws_its_card_without_buttons(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    from bot.core.models import Invoice

    with posted.writing() as session:
        session.execute(update(Invoice).where(Invoice.number == "I-1").values(disputed=True))
    served.click("approve", approve_value(posted, slack_api, 1))
    wait_for(lambda: "Cancelled" in json.dumps(message_of(posted, slack_api, 1)["blocks"]))
    assert buttons_of(posted, slack_api, 1) == []
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "cancelled because an invoice it covers is disputed" in ephemeral[0]["text"]


def edit_form(runtime: Runtime, reminder_id: int, subject: str = "Invoice I-1") -> dict[str, Any]:
    """A filled Edit form that the linter lets through: the reminder's own text, a line added."""
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None and reminder.body_text is not None
        body = "A quick note first: thank you for your business.\n\n" + reminder.body_text
    return {
        "subject": {"value": {"type": "plain_text_input", "value": subject}},
        "body": {"value": {"type": "plain_text_input", "value": body}},
    }


def test_save_and_approve_of_a_reminder_disputed_since_cancels_it_and_redraws_its_card(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    from bot.core.models import Invoice

    form = edit_form(posted, 1)
    with posted.writing() as session:
        session.execute(update(Invoice).where(Invoice.number == "I-1").values(disputed=True))
    served.submit("edit_reminder", "1|C0FINANCE", form)
    wait_for(lambda: state_of(posted, 1) == "cancelled")
    wait_for(lambda: "Cancelled" in json.dumps(message_of(posted, slack_api, 1)["blocks"]))
    assert buttons_of(posted, slack_api, 1) == []
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "cancelled because an invoice it covers is disputed" in ephemeral[0]["text"]
    with posted.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EditExample)) == 0


def test_a_subject_too_long_for_slacks_form_is_not_cut_to_fit(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    from sqlalchemy import update

    with posted.writing() as session:
        session.execute(update(Reminder).where(Reminder.id == 1).values(subject="x" * 151))
    served.click("edit", "1")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert (
        "subject is 151 characters, more than Slack's form can hold (150)" in (ephemeral[0]["text"])
    )
    assert slack_api.calls("views.open") == []


def test_a_form_saved_by_a_non_approver_is_refused_and_says_so(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.submit("edit_reminder", "1|C0FINANCE", edit_form(posted, 1), user="U0STRANGER")
    reason = {"reason": {"value": {"type": "plain_text_input", "value": "spoke to them"}}}
    served.submit("skip_reminder", "2|C0FINANCE", reason, user="U0STRANGER")
    refusals = wait_for(
        lambda: (
            len(slack_api.calls("chat.postEphemeral")) >= 2
            and slack_api.calls("chat.postEphemeral")
        )
    )
    assert [(t["user"], t["text"]) for t in refusals] == [
        ("U0STRANGER", "Only approvers can act on reminders. Ask someone in finance.")
    ] * 2
    assert state_of(posted, 1) == state_of(posted, 2) == "planned"


@pytest.mark.parametrize("posted_before", [False, True], ids=["value", "value_without_approver"])
def test_an_approve_all_undo_leaves_another_approvers_approval_of_the_same_instant(
    posted: Runtime, served: Any, slack_api: Any, posted_before: bool
) -> None:
    """Undo of Approve all takes back what that click approved, not a colleague's approval made
    at the same moment; an Undo posted before its value named the approver was told only to
    whoever clicked Approve all, and takes back that person's approvals."""
    served.click("approve", approve_value(posted, slack_api, 1), user="U0SECOND")
    wait_for(lambda: state_of(posted, 1) == "approved")
    served.click("approve_all_standard", approve_all_button(slack_api)["value"])
    wait_for(lambda: state_of(posted, 2) == state_of(posted, 3) == "approved")
    told = wait_for(lambda: [t for t in slack_api.calls("chat.postEphemeral") if t.get("blocks")])[
        0
    ]
    undo = next(e for b in told["blocks"] if b["type"] == "actions" for e in b["elements"])
    value = undo["value"].rpartition("|")[0] if posted_before else undo["value"]
    served.click("undo_all", value)
    wait_for(lambda: state_of(posted, 2) == state_of(posted, 3) == "planned")
    assert state_of(posted, 1) == "approved"
    with posted.sessions() as session:
        undone = session.scalars(
            select(Event.reminder_id).where(Event.kind == "reminder.approval_withdrawn")
        ).all()
    assert sorted(undone) == [2, 3]
