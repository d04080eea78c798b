"""A payment plan recorded from an escalation's thread, through the real ASGI app with signed
requests and the recording Slack fake: the form refuses what does not add up, the ladder waits,
each instalment gets its reminder (none once it is paid), a missed one reopens the thread for the
owner, and `/ar status` shows the progress. And Resume, which clears only what was ticked and
confirmed, and a resolved escalation that shows its outcome and can be reopened."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import (
    Customer,
    Escalation,
    Invoice,
    PaymentPlan,
    PlanInstalment,
    Reminder,
)
from bot.core.runtime import Runtime
from bot.escalations import plan_checks, plans, posting, service
from bot.escalations.sweeps import sweep
from bot.escalations.thread import history_of
from bot.ledger.upsert import apply_batch
from bot.planning.flows import plan_day
from bot.reminders.stale import StaleRules, why_stale
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.fake_slack import _view_problems, validate_blocks
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for

OWNER = "U07DANA01"
META_CHANNEL = "C0ESCALATE"


def _ledger(rt: Runtime, tmp_path: Path, balance: str) -> None:
    rows = [row(invoice_number="INV-7", due_date="2026-03-01", balance=balance)]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), rt.clock.now())


@pytest.fixture
def thread(slack_runtime: Runtime, slack_api: Any, tmp_path: Path) -> Escalation:
    rt = slack_runtime
    _ledger(rt, tmp_path, "1200.00")
    with rt.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now(), owner=OWNER)
    posting.post_new(rt, SlackChat(web_client("xoxb-test", slack_api.url)), META_CHANNEL)
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
        return escalation


def _escalation(rt: Runtime) -> Escalation:
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
        return escalation


def _in_thread(slack_api: Any, escalation: Escalation) -> list[str]:
    return [
        c["text"]
        for c in slack_api.calls("chat.postMessage")
        if c.get("thread_ts") == escalation.slack_thread_ts
    ]


def _rows(*instalments: tuple[str | None, str | None]) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {
        "plan_scope": {"value": {"type": "static_select", "selected_option": {"value": "account"}}}
    }
    for n, (day, amount) in enumerate(instalments, start=1):
        values[f"plan_date_{n}"] = {"value": {"type": "datepicker", "selected_date": day}}
        values[f"plan_amount_{n}"] = {"value": {"type": "plain_text_input", "value": amount}}
    return values


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 14, 0, tzinfo=UTC)  # 09:00 or 10:00 in NY


def _reminders(rt: Runtime) -> list[Reminder]:
    with rt.sessions() as session:
        found = list(session.scalars(select(Reminder).order_by(Reminder.id)))
        for r in found:
            session.expunge(r)
        return found


def test_a_plan_pauses_the_ladder_reminds_each_instalment_and_a_miss_reopens_the_thread(
    served: Any,
    slack_runtime: Runtime,
    slack_api: Any,
    thread: Escalation,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    rt = slack_runtime
    served.click("esc_plan", str(thread.id), channel=META_CHANNEL)
    wait_for(lambda: slack_api.calls("views.open"))
    modal = slack_api.calls("views.open")[-1]["view"]
    assert modal["callback_id"] == "esc_plan" and _view_problems(modal) is None
    meta = modal["private_metadata"]

    wrong = served.submit(
        "esc_plan",
        meta,
        _rows(("2026-03-10", "400"), ("2026-03-24", "400.001"), ("2026-03-20", "300")),
    ).json()
    assert wrong["response_action"] == "errors"
    assert wrong["errors"]["plan_date_1"] == "Pick a date after today."
    assert wrong["errors"]["plan_date_3"] == "Pick a date after the instalment above."
    assert "decimal places" in wrong["errors"]["plan_amount_2"]
    short = served.submit(
        "esc_plan",
        meta,
        _rows(("2026-03-20", "400"), ("2026-04-20", "400"), ("2026-05-20", "300")),
    ).json()
    assert "must make the balance, $1,200.00" in short["errors"]["plan_amount_3"]
    with rt.sessions() as session:
        assert session.scalars(select(PaymentPlan)).first() is None  # nothing saved yet

    ok = served.submit(
        "esc_plan",
        meta,
        _rows(("2026-03-20", "400.00"), ("2026-04-20", "400"), ("2026-05-20", "400")),
    )
    assert ok.status_code == 200 and not ok.content
    wait_for(lambda: _escalation(rt).state == "resolved")
    assert _escalation(rt).resolution == "Payment plan agreed: 3 instalments"
    with rt.sessions() as session:
        assert session.scalars(select(Invoice.payment_plan)).one() is True
        amounts = [i.amount for i in session.scalars(select(PlanInstalment))]
    assert amounts == [Decimal("400.00")] * 3
    key = (thread.slack_channel, thread.slack_thread_ts)
    wait_for(lambda: "Reopen" in json.dumps(slack_api.messages[key]["blocks"]))
    parent = json.dumps(slack_api.messages[key]["blocks"])
    assert "0 of 3 instalments paid" in parent and "Payment plan agreed" in parent
    assert validate_blocks(slack_api.messages[key]["blocks"]) == []

    # The 17th: INV-7 is past its +14 step, but the plan holds the ladder; the first
    # instalment (the 20th) is three days off, so its reminder is planned, for approval.
    clock.set(_at(date(2026, 3, 17)))
    run = plan_day(rt, date(2026, 3, 17), links=None, slack=None).run
    assert [h.reason for h in run.plan.held] == ["payment_plan"]
    first = _reminders(rt)
    assert [(r.step_key, r.state) for r in first] == [("instalment-1-1", "planned")]
    assert "instalment 1 of 3" in (first[0].subject or "") and "$400.00" in (first[0].subject or "")

    # 400 arrives (the ledger's sync): the first instalment is paid and its reminder stays unsent
    _ledger(rt, tmp_path, "800.00")
    with rt.sessions() as session:
        reminder = session.get(Reminder, first[0].id)
        assert reminder is not None
        assert why_stale(session, reminder, clock.now(), StaleRules()) == "paid"
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    clock.set(_at(date(2026, 3, 24)))  # past the 20th and its 3 days' grace
    assert sweep(rt, chat).missed_instalments == []
    assert _escalation(rt).state == "resolved"

    # The second instalment: reminded on the 17th of April, never paid, missed on the 24th.
    clock.set(_at(date(2026, 4, 17)))
    plan_day(rt, date(2026, 4, 17), links=None, slack=None)
    second = _reminders(rt)[-1]
    assert second.step_key == "instalment-1-2" and "instalment 2 of 3" in (second.subject or "")
    with rt.sessions() as session:
        waiting = session.get(Reminder, second.id)
        assert waiting is not None
        # unpaid, so it may go out although its invoice is on the plan
        assert why_stale(session, waiting, clock.now(), StaleRules()) is None
    clock.set(_at(date(2026, 4, 23)))
    assert sweep(rt, chat).missed_instalments == []  # the 20th plus grace runs through the 23rd
    clock.set(_at(date(2026, 4, 24)))
    report = sweep(rt, chat)
    assert report.missed_instalments == [thread.customer_id]
    assert _escalation(rt).state == "open"
    note = wait_for(lambda: [t for t in _in_thread(slack_api, thread) if "was missed" in t])
    assert f"<@{OWNER}>" in note[0] and "instalment 2" in note[0]
    with rt.sessions() as session:
        lines = [h.text for h in history_of(session, thread.customer_id, "America/New_York")]
    assert "payment plan of 3 instalments in USD for INV-7 by <@U0APPROVER>" in lines
    assert "instalment paid: number 1, 400.00 USD due 2026-03-20" in lines
    assert "instalment missed: number 2, 400.00 USD due 2026-04-20" in lines
    # The buttons are back. The sweep's redraw is the app's work thread's to draw when that
    # thread still holds the message from the plan's redraw (bot/core/message_versions.py:
    # a busy machine can keep it from giving the message back), so it may land after the sweep.
    wait_for(lambda: "esc_claim" in json.dumps(slack_api.messages[key]["blocks"]))
    with rt.sessions() as session:
        assert session.scalars(select(Invoice.payment_plan)).one() is False

    status = served.command("status C-1").json()
    assert "Payment plan (missed): 1 of 3 instalments paid ($400.00 of $1,200.00)" in json.dumps(
        status
    )


def test_an_instalment_paid_before_its_reminder_day_gets_no_reminder(
    slack_runtime: Runtime, thread: Escalation, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    with rt.writing() as session:
        plans.record(
            session,
            thread.id,
            "U0APPROVER",
            plans.ACCOUNT,
            [(date(2026, 3, 20), Decimal("600")), (date(2026, 4, 20), Decimal("600"))],
            clock.now(),
        )
    _ledger(rt, tmp_path, "600.00")  # the first instalment, early
    clock.set(_at(date(2026, 3, 18)))
    plan_day(rt, date(2026, 3, 18), links=None, slack=None)
    assert _reminders(rt) == []
    clock.set(_at(date(2026, 4, 18)))
    plan_day(rt, date(2026, 4, 18), links=None, slack=None)
    assert [r.step_key for r in _reminders(rt)] == ["instalment-1-2"]


def test_resume_clears_only_what_is_ticked_and_confirmed_and_a_later_resolve_is_told(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    rt = slack_runtime
    with rt.writing() as session:
        service.mark_disputed(session, thread.id, "U0APPROVER", "wrong qty", rt.clock.now())
        service.record_promise(
            session, thread.id, "U0APPROVER", date(2026, 3, 20), 2, rt.clock.now()
        )

    served.click("esc_resume", str(thread.id), channel=META_CHANNEL)
    wait_for(lambda: slack_api.calls("views.open"))
    modal = slack_api.calls("views.open")[-1]["view"]
    assert modal["callback_id"] == "esc_resume" and _view_problems(modal) is None
    offered = json.dumps(modal["blocks"])
    assert "The dispute on INV-7 (wrong qty)" in offered and "The promise to pay by" in offered
    assert _escalation(rt).state == "open"  # nothing changes on the click

    ticked = {
        "clear": {"value": {"type": "checkboxes", "selected_options": [{"value": "promise"}]}}
    }
    pushed = served.submit("esc_resume", modal["private_metadata"], ticked).json()
    assert pushed["response_action"] == "push"
    confirm = pushed["view"]
    assert _view_problems(confirm) is None
    text = json.dumps(confirm["blocks"])
    assert "Kept" in text and "The dispute on INV-7" in text
    assert _escalation(rt).state == "open"  # still nothing until it is confirmed

    served.submit("esc_resume_confirm", confirm["private_metadata"], {})
    wait_for(lambda: _escalation(rt).state == "resolved")
    with rt.sessions() as session:
        invoice = session.scalars(select(Invoice)).one()
        assert invoice.promise_date is None and invoice.disputed is True  # the dispute stays
    note = wait_for(lambda: [t for t in _in_thread(slack_api, thread) if "resumed" in t])
    assert "Still holding: The dispute on INV-7" in note[0]

    served.submit(
        "esc_resolve",
        f"{thread.id}|{META_CHANNEL}",
        {"outcome": {"value": {"type": "static_select", "selected_option": {"value": "paid"}}}},
        user="U0SECOND",
    )
    told = wait_for(
        lambda: [
            c["text"] for c in slack_api.calls("chat.postEphemeral") if c["user"] == "U0SECOND"
        ]
    )
    assert "Nothing changed" in told[0] and "Sequence resumed; cleared: promise" in told[0]

    key = (thread.slack_channel, thread.slack_thread_ts)
    wait_for(lambda: "esc_reopen" in json.dumps(slack_api.messages[key]["blocks"]))
    blocks = slack_api.messages[key]["blocks"]
    assert validate_blocks(blocks) == []
    assert "*Outcome:* Sequence resumed; cleared: promise" in json.dumps(blocks)
    served.click("esc_reopen", str(thread.id), channel=META_CHANNEL)
    wait_for(lambda: _escalation(rt).state == "open")
    wait_for(lambda: any("reopened this" in t for t in _in_thread(slack_api, thread)))


def test_the_plan_form_checks_each_row() -> None:
    today = date(2026, 3, 16)
    checked = plan_checks.check_entries(
        [
            plan_checks.Entry(date(2026, 3, 20), "500"),
            plan_checks.Entry(None, "200"),
            plan_checks.Entry(date(2026, 4, 20), "abc"),
        ],
        Decimal("1000"),
        "USD",
        today,
    )
    assert set(checked.errors) == {(1, "date"), (2, "amount")} and checked.instalments == []
    yen = plan_checks.check_entries(
        [plan_checks.Entry(date(2026, 3, 20), "1000.5")], Decimal("1000.5"), "JPY", today
    )
    assert yen.errors == {(0, "amount"): "JPY has 0 decimal places at most."}
    good = plan_checks.check_entries(
        [
            plan_checks.Entry(date(2026, 3, 20), "333.33"),
            plan_checks.Entry(date(2026, 4, 20), "666.67"),
        ],
        Decimal("1000.00"),
        "USD",
        today,
    )
    assert good.errors == {} and good.instalments[1] == (date(2026, 4, 20), Decimal("666.67"))


def test_a_missed_instalment_told_in_an_open_thread_mentions_its_owner(
    slack_runtime: Runtime, slack_api: Any, thread: Escalation, clock: FixedClock
) -> None:
    rt = slack_runtime
    with rt.writing() as session:  # the plan resolves the thread it was agreed in
        plans.record(
            session,
            thread.id,
            "U0APPROVER",
            plans.ACCOUNT,
            [(date(2026, 3, 20), Decimal("600")), (date(2026, 4, 20), Decimal("600"))],
            clock.now(),
        )
        service.open_or_add(session, thread.customer_id, "replied", clock.now(), owner=OWNER)
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    [open_id] = posting.post_new(rt, chat, META_CHANNEL)  # a reply: a new thread, still open
    with rt.sessions() as session:
        open_thread = session.get(Escalation, open_id)
        assert open_thread is not None and open_thread.slack_thread_ts
        session.expunge(open_thread)

    clock.set(_at(date(2026, 3, 24)))  # the first instalment and its grace passed, unpaid
    assert sweep(rt, chat).missed_instalments == [thread.customer_id]
    [note] = [t for t in _in_thread(slack_api, open_thread) if "instalment 1" in t]
    assert f"<@{OWNER}>" in note and "$600.00" in note


def test_a_plan_beside_a_disputed_invoice_resolves_and_names_what_stays_held(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    """The plan's instalment reminders need the account out of a person's hands, so recording it
    resolves the escalation; the disputed invoice it leaves out is named in the thread as held."""
    rt = slack_runtime
    rows = [
        row(invoice_number="INV-7", due_date="2026-03-01", balance="500.00"),
        row(invoice_number="INV-8", due_date="2026-03-01", balance="1200.00"),
    ]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(
            session, customer_id, "replied", rt.clock.now(), owner=OWNER
        )
        service.mark_disputed(
            session, escalation.id, "U0A", "wrong rate", rt.clock.now(), numbers=["INV-7"]
        )
    posting.post_new(rt, SlackChat(web_client("xoxb-test", slack_api.url)), META_CHANNEL)
    thread = _escalation(rt)
    values = _rows(("2026-03-20", "600"), ("2026-04-20", "600"))
    values["plan_scope"]["value"]["selected_option"]["value"] = "INV-8"

    ok = served.submit("esc_plan", f"{thread.id}|{META_CHANNEL}", values)

    assert ok.status_code == 200 and not ok.content
    wait_for(lambda: any("recorded a payment plan" in t for t in _in_thread(slack_api, thread)))
    said = next(t for t in _in_thread(slack_api, thread) if "recorded a payment plan" in t)
    assert "INV-7 is still disputed" in said and "held until the dispute is settled" in said
    assert _escalation(rt).state == "resolved"


def test_disputed_invoices_a_plan_leaves_out_are_named_in_words_agreeing_with_their_count() -> None:
    from handlers.slack.plan_forms import _left_disputed

    one = _left_disputed(["INV-7"])
    assert "INV-7 is still disputed" in one and "lists it as held" in one
    two = _left_disputed(["INV-7", "INV-9"])
    assert "INV-7, INV-9 are still disputed" in two and "lists them as held" in two
    assert "lists it " not in two and "each morning's plan lists them" in two
