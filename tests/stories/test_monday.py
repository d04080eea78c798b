"""One Monday of a finance team in Slack, scripted through the real Bolt app (served over HTTP,
signed requests) against the recording fake of Slack's Web API and a real SMTP server:

- the morning plan for 50 reminders, with Slack answering HTTP 500 part-way through the post: the
  sweep posts the rest, and after a restart (a new runtime and app on the same database) nothing
  is posted twice: every planned reminder has exactly one card, under one header;
- Approve all approves only what was posted: not a card Slack had not taken when the person
  clicked, nor a reminder planned after the header they clicked was drawn; the 50 reminders are
  cleared in at most five clicks;
- an edit that removes the amount is refused in the form, under the field;
- the account owner replies to a customer's dispute from the escalation's thread: the email goes
  out over SMTP in the same conversation, and the customer's answer comes back into the thread;
- a payment plan recorded from the thread; on the first instalment's day the plan holds the
  account's ladder back and a reminder asks for that instalment; it is paid (a ledger sync), the
  next one missed (the clock moved past the grace): the thread is reopened, mentioning the owner;
- and across every payload Slack received all day, no control sequence from the hostile text a
  customer's name, a customer's email, a bank payer and an approver's words carry."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.models import Customer, Escalation, Event, Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings, load_settings
from bot.core.vocabulary import TIERS
from bot.escalations.sweeps import sweep
from bot.ledger.upsert import apply_batch
from bot.payments import bank_import
from bot.planning.flows import plan_day
from integrations.csv_ledger import read_ledger_csv
from integrations.csv_payments import read_payments
from integrations.slack_chat import SlackChat
from integrations.wiring import slack_for
from scheduler.business_days import business_days
from scheduler.daily import morning_plan
from scheduler.jobs import send_tick
from tests.handlers.posted_plan import approve_value_in
from tests.support.fake_http import local_client
from tests.support.hostile import CONTROL_SEQUENCES, HOSTILE_TEXT, mrkdwn_texts, unescaped
from tests.support.inbound_requests import KEY, SECRET, email_reply, post_mail
from tests.support.ledger_files import a_week_late, write
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE, SlackRequests, wait_for
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow

TODAY = date(2026, 3, 16)
REMINDERS = 50
MOST_CLICKS = 5
FINANCE, ESCALATIONS = "C0FINANCE", "C0ESCALATE"
APPROVER, OWNER = "U0APPROVER", "U07DANA01"  # the owner the ledger names is an approver too
HOSTILE_NAME = "<!channel> & Co <script> <@U0EVIL> <https://evil.example|ok> <!here>"
HEALTH_TOKEN = "health-token-1"
EMOJI = re.compile(r":[a-z0-9_+-]+:")
STEP_KEY = re.compile(r"\b(?:plus|minus)\d+\b|\b[a-z]+_[a-z_]+\b")
DISPUTED_AT = 7  # the customer C-7, with the hostile name, disputes I-7 and keeps I-7B


@pytest.fixture
def rate_limits_waited_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk waits out a 429 for its Retry-After plus up to a second drawn at random; here
    for its Retry-After alone, so a redraw told to wait 0 s tries again at once."""
    from slack_sdk.http_retry import builtin_handlers

    class NoJitter:
        @staticmethod
        def random() -> float:
            return 0.0

    monkeypatch.setattr(builtin_handlers, "random", NoJitter)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def slack_settings(database_url: str, slack_api: Any, smtp: SmtpServer) -> Settings:
    return load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        slack_api_url=slack_api.url,
        finance_channel=FINANCE,
        escalation_channel=ESCALATIONS,
        approvers=[APPROVER, OWNER],
        secret_key=KEY,
        inbound_email_secret=SECRET,
        from_email="ar@brightwater.example",
        business_name="Brightwater Supply Co.",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        health_token=HEALTH_TOKEN,
    )


class App:
    """The app `arbot serve` runs for a runtime, served for real: Slack's requests and HTTP."""

    def __init__(self, stack: ExitStack, runtime: Runtime) -> None:
        self.runtime = runtime
        url = stack.enter_context(serve(runtime))
        self.slack = SlackRequests(url)
        stack.callback(self.slack.close)
        self.http = stack.enter_context(local_client(base_url=url, timeout=PATIENCE))

    def health(self) -> dict[str, Any]:
        """/healthz as whoever holds ARBOT_HEALTH_TOKEN reads it."""
        answer = self.http.get("/healthz", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"})
        found: dict[str, Any] = answer.json()
        return found


# --------------------------------------------------------------------------- the ledger


def ledger_rows(extra: int = 0, i7b_balance: str = "800.00") -> list[dict[str, str]]:
    rows = a_week_late(REMINDERS + extra)
    for n, found in enumerate(rows):
        found["tier"] = TIERS[n % len(TIERS)]
    hostile = rows[DISPUTED_AT - 1]
    hostile["customer_name"] = HOSTILE_NAME
    second = dict(hostile, invoice_number="I-7B", amount="800.00", balance=i7b_balance)
    return [*rows, second]


def sync(rt: Runtime, rows: list[dict[str, str]], tmp_path: Path) -> None:
    """What a ledger sync brings: the rows as the books have them now."""
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "ledger.csv", rows)), rt.clock.now())


# --------------------------------------------------------------------------- reading back


def reminders(rt: Runtime) -> list[Reminder]:
    with rt.sessions() as session:
        found = list(session.scalars(select(Reminder).order_by(Reminder.id)))
        for reminder in found:
            session.expunge(reminder)
        return found


def states(rt: Runtime, ids: list[int]) -> Counter[str]:
    return Counter(r.state for r in reminders(rt) if r.id in ids)


def headers(slack_api: Any) -> list[dict[str, Any]]:
    return [
        m
        for m in slack_api.messages.values()
        if m["channel"] == FINANCE and str(m.get("text", "")).startswith("Collections plan for")
    ]


def cards_in_slack(slack_api: Any) -> list[int]:
    """Each card's reminder id, read from its block_id (`reminder_<id>`), whatever its state."""
    found = []
    for message in slack_api.messages.values():
        if message["channel"] != FINANCE:
            continue
        for block in message.get("blocks") or []:
            block_id = str(block.get("block_id", ""))
            if block_id.startswith("reminder_") and block_id[len("reminder_") :].isdigit():
                found.append(int(block_id[len("reminder_") :]))
    return found


def card_states(slack_api: Any) -> dict[int, str]:
    """What each card in the finance channel shows of its reminder now: `waiting` (Approve, Edit,
    Skip), `approved` (with Undo), or the text of its state line."""
    shown = {}
    for message in slack_api.messages.values():
        if message["channel"] != FINANCE:
            continue
        blocks = message.get("blocks") or []
        for block, after in pairwise(blocks):
            preview = block.get("accessory") or {}
            if preview.get("action_id") != "preview":
                continue
            if after["type"] == "actions":
                shown[int(preview["value"])] = "waiting"
            elif (after.get("accessory") or {}).get("action_id") == "undo":
                shown[int(preview["value"])] = "approved"
            else:
                shown[int(preview["value"])] = " ".join(e["text"] for e in after["elements"])
    return shown


def approve_all_buttons(slack_api: Any) -> dict[str, dict[str, Any]]:
    """The header's Approve all buttons, by tier, as a person sees them now."""
    [header] = headers(slack_api)
    buttons = {}
    for block in header["blocks"]:
        for element in block.get("elements") or []:
            if str(element.get("action_id", "")).startswith("approve_all_"):
                buttons[element["action_id"].removeprefix("approve_all_")] = element
    return buttons


def escalation(rt: Runtime) -> Escalation:
    """The escalation of the customer who disputed (C-7)."""
    with rt.sessions() as session:
        found = session.scalars(
            select(Escalation)
            .join(Customer, Customer.id == Escalation.customer_id)
            .where(Customer.external_id == f"C-{DISPUTED_AT}")
        ).one()
        session.expunge(found)
        return found


def in_thread(slack_api: Any, thread: Escalation) -> str:
    return json.dumps(
        [
            c
            for c in slack_api.calls("chat.postMessage")
            if c.get("thread_ts") == thread.slack_thread_ts
        ]
    )


def delivered_to(smtp: SmtpServer, address: str) -> list[Message]:
    return [m for m in smtp.mailbox.messages if address in str(m["To"])]


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 14, 0, tzinfo=UTC)  # 09:00 or 10:00 in NY


def plan_form(*instalments: tuple[str, str]) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {
        "plan_scope": {"value": {"type": "static_select", "selected_option": {"value": "account"}}}
    }
    for n, (day, amount) in enumerate(instalments, start=1):
        values[f"plan_date_{n}"] = {"value": {"type": "datepicker", "selected_date": day}}
        values[f"plan_amount_{n}"] = {"value": {"type": "plain_text_input", "value": amount}}
    return values


def text_form(subject: str, body: str) -> dict[str, dict[str, Any]]:
    return {
        "subject": {"value": {"type": "plain_text_input", "value": subject}},
        "body": {"value": {"type": "plain_text_input", "value": body}},
    }


# --------------------------------------------------------------------------- the day


def test_a_scripted_monday_in_slack(
    slack_settings: Settings,
    slack_runtime: Runtime,
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
    tmp_path: Path,
    rate_limits_waited_exactly: None,
) -> None:
    with ExitStack() as stack:
        first = App(stack, slack_runtime)
        rt = slack_runtime
        sync(rt, ledger_rows(), tmp_path)
        calendar = business_days(slack_settings)

        # --- 10:00: the morning plan, Slack answering HTTP 500 after the header and two messages
        slack_api.server_error_next("chat.postMessage", after=3)
        with pytest.raises(UserError) as refused:
            morning_plan(rt, calendar, "replica-1")
        assert "could not be reached" in str(refused.value)
        planned = [r.id for r in reminders(rt) if r.action == "remind"]
        assert len(planned) == REMINDERS
        unposted = [r for r in reminders(rt) if r.slack_ts is None]
        assert 0 < len(unposted) < REMINDERS
        health = first.health()
        assert health["status"] == "degraded" and health["plan_in_slack"] is not None

        # Approve all, clicked while part of its tier is not in Slack: only the posted cards
        clicks = 0
        tier_of = tier_by_reminder(rt)
        missing_ids = {r.id for r in unposted}
        tier = next(  # a tier Slack has part of
            t
            for t in TIERS
            if {i for i in planned if tier_of[i] == t} & missing_ids
            and {i for i in planned if tier_of[i] == t} - missing_ids
        )
        in_tier = [i for i in planned if tier_of[i] == tier]
        missing_in_tier = [i for i in in_tier if i in missing_ids]
        posted_in_tier = [i for i in in_tier if i not in missing_ids]
        assert posted_in_tier, "the 500 should leave part of the tier posted"
        button = approve_all_buttons(slack_api)[tier]
        assert "confirm" in button  # Slack's client asks first; the answer is not sent to arbot
        first.slack.click(button["action_id"], button["value"])
        clicks += 1
        wait_for(lambda: states(rt, posted_in_tier) == Counter(approved=len(posted_in_tier)))
        assert states(rt, missing_in_tier) == Counter(planned=len(missing_in_tier))

        # The sweep, once its backoff has passed, posts the rest under the same header
        clock.advance(timedelta(minutes=5))
        chat = slack_for(slack_settings)
        assert isinstance(chat, SlackChat)
        assert sweep(rt, chat).plan_cards_posted == len(unposted)
        assert [r for r in reminders(rt) if r.slack_ts is None] == []
        assert len(headers(slack_api)) == 1
        assert sorted(cards_in_slack(slack_api)) == planned  # every reminder, one card each
        late = [m["text"] for m in slack_api.messages.values() if "late" in m.get("text", "")]
        assert len(late) == 1 and "internal_error" in late[0]
        assert first.health()["plan_in_slack"] is None

        # --- a restart: a new runtime and app on the same database post nothing twice
        finance_posts = len(
            [c for c in slack_api.calls("chat.postMessage") if c["channel"] == FINANCE]
        )
    # the first app stops here
    with ExitStack() as stack:
        rt = start(slack_settings, clock=clock)
        stack.callback(rt.close)
        app = App(stack, rt)
        clock.advance(timedelta(minutes=5))
        assert "already made" in morning_plan(rt, calendar, "replica-2")
        chat = slack_for(slack_settings)
        assert isinstance(chat, SlackChat)
        assert sweep(rt, chat).plan_cards_posted == 0
        assert (
            len([c for c in slack_api.calls("chat.postMessage") if c["channel"] == FINANCE])
            == finance_posts
        )
        assert len(headers(slack_api)) == 1
        assert sorted(cards_in_slack(slack_api)) == planned

        # A bank payment no invoice matches, its payer and reference written by whoever paid,
        # goes to the finance channel for a person to place
        bank = tmp_path / "bank.csv"
        with bank.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(
                [
                    ["date", "amount", "currency", "reference", "payer"],
                    ["2026-03-13", "55.55", "USD", f"March {HOSTILE_TEXT}", HOSTILE_TEXT],
                ]
            )
        with rt.writing() as session:
            imported = bank_import.import_payments(
                session, read_payments(bank), "bank.csv", clock.now()
            )
        assert len(imported.reviews) == 1
        assert sweep(rt, chat).reviews_posted == imported.reviews
        review = slack_api.last("chat.postMessage")
        assert review["channel"] == FINANCE and "&lt;@U0EVIL&gt;" in json.dumps(review)

        # --- a reminder planned after the header a person clicks was drawn is not approved by it
        seen = approve_all_buttons(slack_api)  # what the approver has on screen
        sync(rt, ledger_rows(extra=1), tmp_path)  # C-51 came in with the morning's sync
        plan_day(rt, TODAY, links=None, slack=chat)
        [late_id] = [r.id for r in reminders(rt) if r.id not in planned and r.action == "remind"]
        assert late_id in cards_in_slack(slack_api)  # posted, under the same header
        assert len(headers(slack_api)) == 1
        slack_api.rate_limit_next("chat.update", retry_after=0)  # a redraw waits its turn
        for button in seen.values():  # one per tier with reminders waiting
            assert "confirm" in button
            app.slack.click(button["action_id"], button["value"])
            clicks += 1
        wait_for(lambda: states(rt, planned) == Counter(approved=REMINDERS))
        app.slack.click("approve", str(planned[0]), user=OWNER)  # too late: already approved
        [again] = wait_for(
            lambda: [c for c in slack_api.calls("chat.postEphemeral") if c["user"] == OWNER]
        )
        assert again["text"].startswith(
            f"Nothing changed: this reminder was already approved by <@{APPROVER}> at "
        )
        assert again["text"].endswith(" EDT.")  # the business's time, as on the cards
        assert clicks <= MOST_CLICKS
        assert states(rt, [late_id]) == Counter(planned=1)
        late_tier = tier_of_new(rt, late_id)
        wait_for(  # the header, redrawn: what waits now is the reminder that came late
            lambda: (
                [b["text"]["text"] for b in approve_all_buttons(slack_api).values()]
                == [f"Approve all 1 {late_tier}"]
            )
        )

        # --- an edit that removes the amount is refused, under the field
        app.slack.click("edit", str(late_id), trigger_id="trigger-edit")
        modal = wait_for(lambda: [c["view"] for c in slack_api.calls("views.open")])[-1]
        assert modal["callback_id"] == "edit_reminder"
        draft = next(b for b in modal["blocks"] if b.get("block_id") == "body")
        original = draft["element"]["initial_value"]
        assert "$1,200.00" in original and "I-51" in original
        edited = original.replace("$1,200.00", "the balance") + f"\n{HOSTILE_TEXT}"
        answer = app.slack.submit(
            "edit_reminder", modal["private_metadata"], text_form("I-51 is late", edited)
        ).json()
        assert answer["response_action"] == "errors"
        assert "amount" in answer["errors"]["body"]
        [late_reminder] = [r for r in reminders(rt) if r.id == late_id]
        assert late_reminder.state == "planned" and HOSTILE_TEXT not in (
            late_reminder.body_text or ""
        )

        # --- the approved reminders go out once the undo window is over
        clock.advance(timedelta(seconds=slack_settings.undo_seconds + 60))
        send_tick(rt)
        assert len(smtp.mailbox.messages) == REMINDERS
        assert states(rt, planned) == Counter(sent=REMINDERS)
        wait_for(  # Slack shows what happened, card by card (redraws run after the clicks)
            lambda: all(card_states(slack_api)[i].startswith(":email: Sent") for i in planned)
        )
        assert card_states(slack_api)[late_id] == "waiting"

        # --- C-7 disputes I-7 by replying to its reminder: a thread for the account owner
        [sent] = delivered_to(smtp, f"ap@c{DISPUTED_AT}.example")
        dispute = f"We are not paying I-{DISPUTED_AT}: the delivery arrived damaged. {HOSTILE_TEXT}"
        customer = f"Maria Garcia <ap@c{DISPUTED_AT}.example>"
        reply = email_reply(
            dispute,
            From=customer,
            To=str(sent["Reply-To"]),
            In_Reply_To=str(sent["Message-ID"]),
            Subject=f"Re: {sent['Subject']}",
        )
        assert post_mail(app.http, reply).json()["label"] == "dispute"
        thread = wait_for(lambda: escalation(rt).slack_thread_ts and escalation(rt))
        assert thread.slack_channel == ESCALATIONS and thread.owner_slack_id == OWNER

        # The owner takes it; a second claim is told who has it
        app.slack.click("esc_claim", str(thread.id), user=OWNER, channel=ESCALATIONS)
        wait_for(lambda: f"<@{OWNER}> claimed this." in in_thread(slack_api, thread))
        app.slack.click("esc_claim", str(thread.id), user=APPROVER, channel=ESCALATIONS)
        [taken] = wait_for(
            lambda: [
                c["text"]
                for c in slack_api.calls("chat.postEphemeral")
                if c["user"] == APPROVER and c["channel"] == ESCALATIONS
            ]
        )
        assert taken == f"Nothing changed: this escalation is already claimed by <@{OWNER}>."

        # The owner answers from the thread: the email goes out in the same conversation
        app.slack.click("esc_reply", str(thread.id), user=OWNER, channel=ESCALATIONS)
        form = wait_for(
            lambda: [
                c["view"]
                for c in slack_api.calls("views.open")
                if c["view"]["callback_id"] == "esc_reply"
            ]
        )[-1]
        written = f"We are checking the delivery record today. {HOSTILE_TEXT}"
        assert (
            app.slack.submit(
                "esc_reply", form["private_metadata"], text_form("Re: I-7", written), user=OWNER
            ).status_code
            == 200
        )
        wait_for(lambda: f"replied to ap@c{DISPUTED_AT}.example" in in_thread(slack_api, thread))
        send_tick(rt)
        [ours] = [m for m in delivered_to(smtp, f"ap@c{DISPUTED_AT}.example") if m is not sent]
        assert ours["In-Reply-To"] == "<reply-1@ridgeline.example>"
        assert "<reply-1@ridgeline.example>" in ours["References"].split()
        assert "checking the delivery record" in str(ours.get_payload(decode=True))

        # The customer's answer to it arrives in the same thread
        answer_text = f"Thank you. We can pay I-{DISPUTED_AT}B in two instalments. {HOSTILE_TEXT}"
        answer_mail = email_reply(
            answer_text,
            From=customer,
            To=str(ours["Reply-To"]),
            In_Reply_To=str(ours["Message-ID"]),
            Subject="Re: I-7",
        ).replace(b"<reply-1@", b"<reply-2@")
        assert post_mail(app.http, answer_mail).status_code == 200
        wait_for(lambda: "two instalments" in in_thread(slack_api, thread))
        assert escalation(rt).id == thread.id

        # --- a payment plan recorded from the thread
        app.slack.click("esc_plan", str(thread.id), user=OWNER, channel=ESCALATIONS)
        plan_modal = wait_for(
            lambda: [
                c["view"]
                for c in slack_api.calls("views.open")
                if c["view"]["callback_id"] == "esc_plan"
            ]
        )[-1]
        recorded = app.slack.submit(
            "esc_plan",
            plan_modal["private_metadata"],
            plan_form(("2026-03-20", "400.00"), ("2026-04-03", "400.00")),
            user=OWNER,
        )
        assert recorded.status_code == 200 and not recorded.content, recorded.text
        wait_for(lambda: escalation(rt).state == "resolved")

        # On the first instalment's day the plan holds the ladder back and reminds of it alone
        clock.set(at(date(2026, 3, 20)))  # the contact was last written to 4 days ago
        assert "posted to" in morning_plan(rt, calendar, "replica-2")
        [friday] = [
            m
            for m in slack_api.messages.values()
            if m.get("text") == "Collections plan for 2026-03-20"
        ]
        [instalment] = [
            r
            for r in reminders(rt)
            if r.plan_date == date(2026, 3, 20) and r.step_key.startswith("instalment-")
        ]
        assert instalment.customer_id == customer_of(rt, f"C-{DISPUTED_AT}")
        assert "&lt;!channel&gt; &amp; Co" in json.dumps(friday["blocks"])  # held, and why
        assert "on a payment plan" in json.dumps(friday["blocks"])
        assert instalment.slack_ts is not None
        card = next(m for m in slack_api.messages.values() if m["ts"] == instalment.slack_ts)
        fields = [f["text"] for b in card["blocks"] for f in b.get("fields") or []]
        assert "*Asks for*\n$400.00" in fields  # the instalment, not the $800.00 it is part of
        app.slack.click(
            "approve", approve_value_in(card, instalment.id), message_ts=instalment.slack_ts
        )
        wait_for(lambda: states(rt, [instalment.id]) == Counter(approved=1))
        clock.advance(timedelta(seconds=slack_settings.undo_seconds + 60))
        send_tick(rt)
        assert states(rt, [instalment.id]) == Counter(sent=1)
        assert [
            m
            for m in delivered_to(smtp, f"ap@c{DISPUTED_AT}.example")
            if "instalment 1 of 2" in str(m["Subject"])
        ]

        # One instalment paid: the books' sync brings I-7B down to 400.00
        sync(rt, ledger_rows(extra=1, i7b_balance="400.00"), tmp_path)
        clock.set(at(date(2026, 3, 24)))  # past the 20th and its grace
        assert sweep(rt, chat).missed_instalments == []
        assert escalation(rt).state == "resolved"

        # One missed: the 3rd of April passes, and its grace, with nothing paid
        clock.set(at(date(2026, 4, 7)))
        customer_id = customer_of(rt, f"C-{DISPUTED_AT}")
        assert sweep(rt, chat).missed_instalments == [customer_id]
        assert escalation(rt).state == "open"
        note = wait_for(
            lambda: [
                c["text"]
                for c in slack_api.calls("chat.postMessage")
                if c.get("thread_ts") == thread.slack_thread_ts and "was missed" in c["text"]
            ]
        )
        assert f"<@{OWNER}>" in note[0] and "instalment 2" in note[0]
        with rt.sessions() as session:
            kinds = set(session.scalars(select(Event.kind).where(Event.customer_id == customer_id)))
        assert {"plan.recorded", "instalment.paid", "instalment.missed"} <= kinds
        parent = slack_api.messages[(ESCALATIONS, thread.slack_thread_ts)]
        assert "esc_claim" in json.dumps(parent["blocks"])  # open again, its buttons back
        answers = [  # /ar status: the account, and a list of several matches
            app.slack.command(f"status C-{DISPUTED_AT}", user=OWNER).json(),
            app.slack.command("status evil.example", user=OWNER).json(),
            app.slack.command("status custom", user=OWNER).json(),
        ]
        assert "Payment plan (missed): 1 of 2 instalments paid" in answers[0]["text"]
        assert answers[1]["text"] == answers[0]["text"]  # found by a part of its name
        assert "matches 50 customers" in answers[2]["text"]

    # --- all day, Slack refused nothing but the 500 it was told to answer, and nobody was misled
    refusals = [(r["method"], r["status"], r["response"]) for r in slack_api.records()]
    assert [r for r in refusals if not r[2].get("ok")] == [
        ("chat.postMessage", 500, {"ok": False, "error": "internal_error"}),
        ("chat.update", 429, {"ok": False, "error": "ratelimited"}),
    ]
    told = [c.get("text", "") for c in slack_api.calls("chat.postEphemeral")]
    assert not [t for t in told if "may not have gone through" in t or "went wrong" in t]

    # --- all day, nothing from outside reached Slack as a control sequence
    payloads = [*slack_api.calls(), *answers]
    assert unescaped(payloads) == []
    everything = "\n".join(t for p in payloads for t in mrkdwn_texts(p))
    assert "&lt;!channel&gt; &amp; Co &lt;script&gt;" in everything  # the name, shown escaped
    assert "&lt;!here&gt;" in everything  # the customer's words and the owner's, shown escaped
    assert all(sequence not in everything for sequence in CONTROL_SEQUENCES)
    read = [EMOJI.sub("", text) for payload in payloads for text in mrkdwn_texts(payload)]
    # people read English, not step keys or snake_case words (but Slack's own error code, quoted)
    assert {m for text in read for m in STEP_KEY.findall(text)} <= {"internal_error"}
    # and the mentions arbot writes itself stay live
    assert not [t for t in read if f"&lt;@{APPROVER}&gt;" in t or f"&lt;@{OWNER}&gt;" in t]
    assert any(f"<@{OWNER}>" in text for text in read)


def tier_by_reminder(rt: Runtime) -> dict[int, str]:
    with rt.sessions() as session:
        return dict(
            session.execute(
                select(Reminder.id, Customer.tier).join(
                    Customer, Customer.id == Reminder.customer_id
                )
            ).all()
        )


def tier_of_new(rt: Runtime, reminder_id: int) -> str:
    return tier_by_reminder(rt)[reminder_id]


def customer_of(rt: Runtime, external_id: str) -> int:
    with rt.sessions() as session:
        found = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
        assert found is not None
        return found
