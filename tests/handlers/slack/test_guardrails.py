"""A guardrail proposed by the morning plan, decided from its Slack card through the real Bolt app
with signed requests: approved (and released), dismissed with a reason; a non-approver's click
and a second decision change nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core import audit
from bot.core.models import Contact, Customer, Event, Reminder
from bot.core.runtime import Runtime
from bot.learning.guardrail_holds import APPROVED, DISMISSED, PROPOSED, RELEASED
from bot.ledger.upsert import apply_batch
from bot.planning.flows import plan_day
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from integrations.slack_ids import INPUT, Action, Field, Form
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for

TODAY = date(2026, 3, 16)


def seed(runtime: Runtime, tmp_path: Path) -> None:
    """Ridgeline's emails bounced three times; Harbor has no contact at all."""
    rows = [
        row(due_date="2026-03-09"),
        row(
            customer_id="C-2",
            customer_name="Harbor <Dental> & Co",
            invoice_number="INV-2",
            due_date="2026-03-09",
            email="",
            phone="",
            contact_name="",
            sms_consent="false",
        ),
    ]
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "ledger.csv", rows)), now)
        customer, contact = session.execute(
            select(Customer.id, Contact.id)
            .join(Contact, Contact.customer_id == Customer.id)
            .where(Customer.external_id == "C-1")
        ).one()
        for _ in range(3):
            audit.record(
                session,
                now,
                "contact.bouncing",
                customer_id=customer,
                payload={"contact": contact, "status": "5.1.1"},
            )


def cards(slack_api: Any) -> dict[str, tuple[str, str]]:
    """Each guardrail card posted, by its customer's name: (channel, ts)."""
    found = {}
    for (channel, ts), message in slack_api.messages.items():
        text = json.dumps(message.get("blocks") or [])
        if "guardrail_" in text and "What happened" in text:
            name = "Harbor" if "Harbor" in text else "Ridgeline"
            found[name] = (channel, ts)
    return found


def blocks_of(slack_api: Any, where: tuple[str, str]) -> str:
    return json.dumps(slack_api.messages[where]["blocks"])


def decisions(runtime: Runtime, kind: str) -> list[Event]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind)))


def test_the_morning_plan_posts_guardrails_after_the_plan_and_they_are_decided_in_slack(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    seed(slack_runtime, tmp_path)
    slack = SlackChat(web_client("xoxb-test", slack_api.url))
    plan_day(slack_runtime, TODAY, links=None, slack=slack)
    posted = cards(slack_api)
    assert set(posted) == {"Ridgeline", "Harbor"}
    plan_ts = [float(w[1]) for w in slack_api.messages if w not in posted.values()]
    assert plan_ts and min(float(ts) for _, ts in posted.values()) > max(plan_ts)  # after the plan
    ridgeline, harbor = posted["Ridgeline"], posted["Harbor"]
    assert "Harbor &lt;Dental&gt; &amp; Co" in blocks_of(slack_api, harbor)  # escaped
    (bounces,) = [
        e.id for e in decisions(slack_runtime, PROPOSED) if e.payload["rule"] == "bounces"
    ]

    served.click(Action.GUARDRAIL_APPROVE, str(bounces), user="U0MEMBER", message_ts=ridgeline[1])
    served.click(Action.GUARDRAIL_APPROVE, str(bounces), message_ts=ridgeline[1])
    wait_for(lambda: "Release hold" in blocks_of(slack_api, ridgeline))
    # the non-approver's click is worked on its own thread: done once they are told why not
    wait_for(lambda: [c for c in slack_api.calls("chat.postEphemeral") if c["user"] == "U0MEMBER"])
    (approved,) = decisions(slack_runtime, APPROVED)
    assert approved.actor == "U0APPROVER"  # the non-approver's click changed nothing
    assert "Approved" in blocks_of(slack_api, ridgeline)
    with slack_runtime.sessions() as session:  # the hold cancelled today's waiting reminder
        (reminder,) = session.scalars(select(Reminder).where(Reminder.action == "remind"))
        assert reminder.state == "cancelled" and reminder.slack_ts
        card = (str(reminder.slack_channel), reminder.slack_ts)
    wait_for(lambda: "Cancelled" in blocks_of(slack_api, card))

    served.click(Action.GUARDRAIL_APPROVE, str(bounces), user="U0SECOND", message_ts=ridgeline[1])
    wait_for(
        lambda: any(
            "already approved by <@U0APPROVER>" in c.get("text", "")
            for c in slack_api.calls("chat.postEphemeral")
        )
    )
    assert len(decisions(slack_runtime, APPROVED)) == 1

    # the next plan shows why Ridgeline is held back
    with slack_runtime.sessions() as session:
        from bot.planning.facts import load_history

        assert "guardrail_bounces" in load_history(session).guarded.values()

    status = served.command("status C-1").json()["text"]
    assert "Held back by a guardrail* (emails bounce, approved by <@U0APPROVER>)" in status
    assert "3 emails to Ridgeline Roofing at ridgeline.example bounced" in status

    served.click(Action.GUARDRAIL_RELEASE, str(bounces), message_ts=ridgeline[1])
    wait_for(lambda: "Hold released by" in blocks_of(slack_api, ridgeline))
    assert [e.actor for e in decisions(slack_runtime, RELEASED)] == ["U0APPROVER"]
    assert "Held back by a guardrail" not in served.command("status C-1").json()["text"]


def test_a_guardrail_is_dismissed_from_its_card_with_a_reason(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    seed(slack_runtime, tmp_path)
    slack = SlackChat(web_client("xoxb-test", slack_api.url))
    plan_day(slack_runtime, TODAY, links=None, slack=slack)
    harbor = cards(slack_api)["Harbor"]
    (asked,) = [
        e.id for e in decisions(slack_runtime, PROPOSED) if e.payload["rule"] == "no_contact"
    ]
    served.click(Action.GUARDRAIL_DISMISS, str(asked), message_ts=harbor[1])
    form = wait_for(
        lambda: next(
            (v for v in slack_api.views.values() if v.get("callback_id") == Form.GUARDRAIL_DISMISS),
            None,
        )
    )
    assert form["private_metadata"].startswith(f"{asked}|")
    served.submit(
        Form.GUARDRAIL_DISMISS,
        form["private_metadata"],
        {Field.REASON: {INPUT: {"type": "plain_text_input", "value": "they pay by phone"}}},
    )
    wait_for(lambda: "Dismissed" in blocks_of(slack_api, harbor))
    (dismissed,) = decisions(slack_runtime, DISMISSED)
    assert (dismissed.actor, dismissed.payload["why"]) == ("U0APPROVER", "they pay by phone")
    assert "they pay by phone" in blocks_of(slack_api, harbor)
    # the next morning asks nothing again
    plan_day(slack_runtime, TODAY, links=None, slack=slack)
    assert (
        len([e for e in decisions(slack_runtime, PROPOSED) if e.payload["rule"] == "no_contact"])
        == 1
    )


def test_the_sweep_posts_a_guardrail_slack_did_not_get_once(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    from bot.escalations.sweeps import sweep
    from bot.learning import guardrails

    seed(slack_runtime, tmp_path)
    (proposal,) = guardrails.propose_today(slack_runtime, [])  # stored; Slack not told yet
    slack = SlackChat(web_client("xoxb-test", slack_api.url))
    sweep(slack_runtime, slack)
    assert list(cards(slack_api)) == ["Ridgeline"]
    sweep(slack_runtime, slack)
    posted = [m for m in slack_api.messages.values() if "guardrail_approve" in json.dumps(m)]
    assert len(posted) == 1
    with slack_runtime.sessions() as session:
        assert guardrails.where_posted(session, proposal) == cards(slack_api)["Ridgeline"]


def test_a_guardrail_another_job_is_posting_is_left_to_it_until_its_claim_lapses(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path, clock: Any
) -> None:
    from datetime import timedelta

    from bot.learning import guardrails

    seed(slack_runtime, tmp_path)
    (proposal,) = guardrails.propose_today(slack_runtime, [])
    with slack_runtime.writing() as session:  # another job claims it, then dies before posting
        assert guardrails._claim_unposted(session, clock.now()) == [proposal]
    slack = SlackChat(web_client("xoxb-test", slack_api.url))
    assert guardrails.post_waiting(slack_runtime, slack, "C0FINANCE") == []
    assert cards(slack_api) == {}
    clock.advance(guardrails.CLAIM_FOR + timedelta(seconds=1))
    assert guardrails.post_waiting(slack_runtime, slack, "C0FINANCE") == [proposal]
    assert list(cards(slack_api)) == ["Ridgeline"]


def test_a_guardrail_shown_outside_finance_names_itself_but_not_its_amounts_or_addresses(
    served: Any, slack_runtime: Runtime, tmp_path: Path, clock: Any
) -> None:
    from tests.bot.learning import test_guardrails as learning

    learning.load(slack_runtime, tmp_path, [learning.row()])
    customer = learning.customer_id(slack_runtime)
    contact = learning.contact_of(slack_runtime, customer)
    learning.sent_reminder(slack_runtime)
    for _ in range(3):
        learning.bounce(slack_runtime, customer, contact)
    clock.advance(timedelta(days=1))
    higher = [learning.row(amount="1500.00", balance="1500.00")]
    learning.load(slack_runtime, tmp_path, [learning.row(amount="1100.00", balance="1100.00")])
    learning.load(slack_runtime, tmp_path, higher, "higher.csv")
    proposals = learning.propose(slack_runtime)
    assert len(proposals) == 2  # the bounces and the correction
    for proposal in proposals:
        assert learning.approve(slack_runtime, proposal).changed

    trusted = served.command("status C-1").json()["text"]
    assert "corrected up from $1,100.00 to $1,500.00" in trusted
    assert "ridgeline.example" in trusted
    for text in ("status C-1", "status C-1 share"):
        answer = served.command(text, user="U0NOBODY", channel="C0GENERAL").json()["text"]
        assert "Held back by a guardrail* (emails bounce)" in answer
        assert "Held back by a guardrail* (invoice corrected after a reminder)" in answer
        assert "see its card in the finance channel" in answer
        assert "$" not in answer and "1,500" not in answer
        assert "ridgeline.example" not in answer and "@" not in answer.replace("<@", "")
