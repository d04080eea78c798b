"""An escalation's buttons and thread through the real ASGI app: Claim (once), Record promise,
Mark disputed, Resume sequence, Resolve, notes people write in the thread, and the sweep that
raises an unclaimed escalation again."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Escalation, Event, Invoice
from bot.core.runtime import Runtime
from bot.escalations import posting, service
from bot.escalations.sweeps import business_time, sweep
from bot.escalations.thread import history_of
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.fake_slack import validate_blocks
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

TODAY = date(2026, 3, 16)


@pytest.fixture
def thread(slack_runtime: Runtime, slack_api: Any, tmp_path: Path) -> Escalation:
    rt = slack_runtime
    rows = [row(invoice_number="INV-7", due_date="2026-03-01")]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now(), owner="U07DANA01")
    posting.post_new(rt, SlackChat(web_client("xoxb-test", slack_api.url)), "C0ESCALATE")
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
        return escalation


def _state(rt: Runtime) -> Escalation:
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


def test_claim_once_and_the_second_claimer_is_told_who_has_it(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    assert served.click("esc_claim", str(thread.id), channel="C0ESCALATE").status_code == 200
    wait_for(lambda: _state(slack_runtime).state == "claimed")
    served.click("esc_claim", str(thread.id), user="U0SECOND", channel="C0ESCALATE")

    wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    told = slack_api.calls("chat.postEphemeral")[-1]
    assert told["user"] == "U0SECOND" and "<@U0APPROVER>" in told["text"]
    assert _state(slack_runtime).owner_slack_id == "U0APPROVER"
    # the parent's redraw and the thread's note come after the claim is stored, in the background
    key = (thread.slack_channel, thread.slack_thread_ts)
    wait_for(lambda: "Claimed by <@U0APPROVER>" in json.dumps(slack_api.messages[key]["blocks"]))
    assert validate_blocks(slack_api.messages[key]["blocks"]) == []
    wait_for(lambda: any("claimed this" in t for t in _in_thread(slack_api, thread)))


def test_a_non_approver_cannot_act(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    served.click("esc_claim", str(thread.id), user="U0OUTSIDER", channel="C0ESCALATE")
    wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert _state(slack_runtime).state == "open"


def test_record_promise_pauses_until_the_date_plus_grace(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    served.click("esc_promise", str(thread.id), channel="C0ESCALATE")
    wait_for(lambda: slack_api.calls("views.open"))
    modal = slack_api.calls("views.open")[-1]["view"]
    assert modal["callback_id"] == "esc_promise"
    past = served.submit(
        "esc_promise",
        modal["private_metadata"],
        {"date": {"value": {"type": "datepicker", "selected_date": "2026-03-01"}}},
    )
    assert past.json()["response_action"] == "errors"  # a date in the past is refused in the form

    served.submit(
        "esc_promise",
        modal["private_metadata"],
        {"date": {"value": {"type": "datepicker", "selected_date": "2026-03-20"}}},
    )

    def paused() -> Any:
        with slack_runtime.sessions() as session:
            return session.scalars(select(Customer.paused_until)).one()

    until = wait_for(paused)
    assert until.date() == date(2026, 3, 23)  # the 20th plus 2 days' grace, through the 22nd
    with slack_runtime.sessions() as session:
        assert session.scalars(select(Invoice.promise_date)).one() == date(2026, 3, 20)
    wait_for(
        lambda: any("promise to pay by 2026-03-20" in t for t in _in_thread(slack_api, thread))
    )


def test_mark_disputed_then_resume_then_resolve(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    meta = f"{thread.id}|C0ESCALATE"
    served.submit(
        "esc_dispute",
        meta,
        {"reason": {"value": {"type": "plain_text_input", "value": "wrong qty"}}},
    )

    def disputed() -> bool:
        with slack_runtime.sessions() as session:
            return bool(session.scalars(select(Invoice.disputed)).one())

    wait_for(disputed)
    ticked = {
        "clear": {"value": {"type": "checkboxes", "selected_options": [{"value": "dispute"}]}}
    }
    confirm = served.submit("esc_resume", meta, ticked).json()["view"]
    served.submit("esc_resume_confirm", confirm["private_metadata"], {})
    wait_for(lambda: _state(slack_runtime).state == "resolved")
    assert not disputed()
    assert _state(slack_runtime).resolution == "Sequence resumed; cleared: dispute"
    key = (thread.slack_channel, thread.slack_thread_ts)
    # a resolved one offers only Reopen (the card is redrawn just after the database changes)
    wait_for(lambda: "esc_claim" not in json.dumps(slack_api.messages[key]["blocks"]))
    assert "esc_reopen" in json.dumps(slack_api.messages[key]["blocks"])


def test_resolve_records_the_outcome(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    served.submit(
        "esc_resolve",
        f"{thread.id}|C0ESCALATE",
        {
            "outcome": {"value": {"type": "static_select", "selected_option": {"value": "paid"}}},
            "note": {"value": {"type": "plain_text_input", "value": "wire came in"}},
        },
    )
    wait_for(lambda: _state(slack_runtime).state == "resolved")
    assert _state(slack_runtime).resolution == "Paid: wire came in"


def _resolve(served: Any, thread: Escalation, outcome: str, note: str = "") -> Any:
    values: dict[str, Any] = {
        "outcome": {"value": {"type": "static_select", "selected_option": {"value": outcome}}}
    }
    if note:
        values["note"] = {"value": {"type": "plain_text_input", "value": note}}
    return served.submit("esc_resolve", f"{thread.id}|C0ESCALATE", values)


def _dispute(slack_runtime: Runtime, thread: Escalation) -> None:
    with slack_runtime.writing() as session:
        service.dispute(session, thread.customer_id, "wrong qty", slack_runtime.clock.now())


@pytest.mark.parametrize("outcome", ["paid", "credit_note", "written_off"])
def test_an_outcome_that_settles_a_dispute_clears_it_with_an_event_per_invoice(
    served: Any, slack_runtime: Runtime, thread: Escalation, outcome: str
) -> None:
    _dispute(slack_runtime, thread)

    _resolve(served, thread, outcome, "agreed with their AP team")

    wait_for(lambda: _state(slack_runtime).state == "resolved")
    with slack_runtime.sessions() as session:
        invoice = session.scalars(select(Invoice)).one()
        assert not invoice.disputed and invoice.dispute_reason is None
        cleared = session.scalars(
            select(Event).where(Event.kind == "invoice.dispute_cleared")
        ).all()
    assert [(e.invoice_id, e.actor) for e in cleared] == [(invoice.id, "U0APPROVER")]
    assert cleared[0].payload["number"] == "INV-7"
    assert cleared[0].payload["outcome"].endswith(": agreed with their AP team")
    with slack_runtime.sessions() as session:
        history = history_of(session, thread.customer_id, "America/New_York")
    assert "dispute cleared INV-7 by <@U0APPROVER>" in [str(h.text) for h in history]


def test_nothing_needed_on_a_disputed_account_is_refused_in_the_form_naming_resume(
    served: Any, slack_runtime: Runtime, thread: Escalation
) -> None:
    _dispute(slack_runtime, thread)

    answer = _resolve(served, thread, "no_action").json()

    assert answer["response_action"] == "errors"
    assert "INV-7" in answer["errors"]["outcome"]
    assert "Resume sequence" in answer["errors"]["outcome"]
    assert _state(slack_runtime).state == "open"
    with slack_runtime.sessions() as session:
        assert session.scalars(select(Invoice.disputed)).one()


@pytest.mark.parametrize(
    ("outcome", "form"), [("promise", "Record promise"), ("payment_plan", "Record payment plan")]
)
def test_an_agreement_with_nothing_recorded_is_refused_naming_the_form_that_records_it(
    served: Any, slack_runtime: Runtime, thread: Escalation, outcome: str, form: str
) -> None:
    """Resolved as agreed with no date or plan on record, nothing would hold the ladder back:
    the next plan would send the firm reminder that very day."""
    answer = _resolve(served, thread, outcome, "paying on the 31st").json()

    assert answer["response_action"] == "errors"
    assert form in answer["errors"]["outcome"]
    assert _state(slack_runtime).state == "open"


def test_promise_agreed_once_the_promise_is_recorded_resolves_and_the_account_stays_quiet(
    served: Any, slack_runtime: Runtime, thread: Escalation, cli: Any
) -> None:
    with slack_runtime.writing() as session:
        service.record_promise(
            session, thread.id, "U0APPROVER", date(2026, 3, 31), 2, slack_runtime.clock.now()
        )

    _resolve(served, thread, "promise", "paying on the 31st")

    wait_for(lambda: _state(slack_runtime).state == "resolved")
    assert _state(slack_runtime).resolution == "Promise agreed: paying on the 31st"
    planned = json.loads(cli("plan", "--json").stdout)
    assert planned["reminders"] == []
    assert [h["reason"] for h in planned["held"]] == ["promised"]


def test_a_resolved_escalation_opens_no_resolve_form_and_a_late_resolve_is_told(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    """Resolve on what is resolved: the form does not open, and a Resolve submitted from a form
    opened before is not dropped in silence; both say who resolved it, when (local time), how."""
    resolution = {
        "outcome": {"value": {"type": "static_select", "selected_option": {"value": "paid"}}},
        "note": {"value": {"type": "plain_text_input", "value": "wire came in"}},
    }
    served.submit("esc_resolve", f"{thread.id}|C0ESCALATE", resolution)
    wait_for(lambda: _state(slack_runtime).state == "resolved")

    def told(user: str) -> list[str]:
        return [c["text"] for c in slack_api.calls("chat.postEphemeral") if c["user"] == user]

    served.click("esc_resolve", str(thread.id), channel="C0ESCALATE", user="U0SECOND")
    refusal = wait_for(lambda: told("U0SECOND"))
    assert "already resolved this" in refusal[0] and "<@U0APPROVER>" in refusal[0]
    assert "Paid: wire came in" in refusal[0] and "EDT" in refusal[0]
    assert not slack_api.calls("views.open")

    served.submit("esc_resolve", f"{thread.id}|C0ESCALATE", resolution, user="U0SECOND")
    late = wait_for(lambda: told("U0SECOND")[1:])
    assert "Nothing changed" in late[0] and "<@U0APPROVER>" in late[0]
    assert _state(slack_runtime).resolution == "Paid: wire came in"


def test_what_a_person_writes_in_the_thread_joins_the_history(
    served: Any, slack_runtime: Runtime, thread: Escalation
) -> None:
    served.event(
        {
            "type": "message",
            "channel": thread.slack_channel,
            "user": "U0APPROVER",
            "text": "Called Maria: cheque in the post",
            "ts": "1700000100.000200",
            "thread_ts": thread.slack_thread_ts,
        }
    )

    def noted() -> Any:
        with slack_runtime.sessions() as session:
            return session.scalars(select(Event).where(Event.kind == "note.added")).first()

    note = wait_for(noted)
    assert note.actor == "U0APPROVER" and note.payload["text"] == "Called Maria: cheque in the post"


def test_a_thread_note_is_stored_as_typed_and_shown_once_escaped_in_the_history(
    served: Any, slack_runtime: Runtime, thread: Escalation
) -> None:
    """Slack sends a message's `&`, `<` and `>` escaped, and a mention as `<@U…>`."""
    served.event(
        {
            "type": "message",
            "channel": thread.slack_channel,
            "user": "U0APPROVER",
            "text": "Spoke to Bob &amp; Maria: cheque &gt; $500 next week, cc <@U0ALICE> "
            "in <#C0FINANCE|finance>, see <https://bank.example/t?a=1&amp;b=2|the transfer>",
            "ts": "1700000100.000200",
            "thread_ts": thread.slack_thread_ts,
        }
    )

    def noted() -> Any:
        with slack_runtime.sessions() as session:
            return session.scalars(select(Event).where(Event.kind == "note.added")).first()

    note = wait_for(noted)
    assert note.payload["text"] == (
        "Spoke to Bob & Maria: cheque > $500 next week, cc @U0ALICE in #finance, "
        "see the transfer (https://bank.example/t?a=1&b=2)"
    )
    with slack_runtime.sessions() as session:
        shown = history_of(session, thread.customer_id, "America/Chicago")[-1].text
    assert "note by <@U0APPROVER>: Spoke to Bob &amp; Maria: cheque &gt; $500" in shown
    assert "cc <@U0ALICE> in #finance" in shown and "a=1&amp;b=2" in shown


def test_an_email_address_in_a_thread_note_stays_as_typed_and_only_slacks_mentions_mention(
    served: Any, slack_runtime: Runtime, thread: Escalation
) -> None:
    """Only what Slack sent as `<@U…>` mentions a person in the history: an address such as
    AP@UNITEDFOODS.COM (linked by Slack, or typed) or a literal `@U0BOB` is shown as typed."""
    served.event(
        {
            "type": "message",
            "channel": thread.slack_channel,
            "user": "U0APPROVER",
            "text": "Wrote to <mailto:AP@UNITEDFOODS.COM|AP@UNITEDFOODS.COM> and "
            "ap@U0ALICE.example, not @U0BOB; cc <@U0ALICE>",
            "ts": "1700000100.000300",
            "thread_ts": thread.slack_thread_ts,
        }
    )

    def noted() -> Any:
        with slack_runtime.sessions() as session:
            return session.scalars(select(Event).where(Event.kind == "note.added")).first()

    note = wait_for(noted)
    assert note.payload["text"] == (
        "Wrote to AP@UNITEDFOODS.COM and ap@U0ALICE.example, not @U0BOB; cc @U0ALICE"
    )
    with slack_runtime.sessions() as session:
        shown = history_of(session, thread.customer_id, "America/Chicago")[-1].text
    assert shown.endswith(
        "note by <@U0APPROVER>: Wrote to AP@UNITEDFOODS.COM and ap@U0ALICE.example, "
        "not @U0BOB; cc <@U0ALICE>"
    )


def test_a_reply_also_sent_to_the_channel_or_with_a_file_joins_the_history_and_edits_do_not(
    served: Any, slack_runtime: Runtime, thread: Escalation
) -> None:
    said = {"type": "message", "channel": thread.slack_channel, "user": "U0APPROVER"}
    said["thread_ts"] = thread.slack_thread_ts
    ignored = [
        {"subtype": "message_changed", "text": "an edit"},
        {"subtype": "bot_message", "text": "a bot", "bot_id": "B0OTHER"},
        {"subtype": "channel_join", "text": "joined"},
    ]
    written = [
        (
            {"subtype": "thread_broadcast", "text": "They paid by wire yesterday"},
            "They paid by wire yesterday",
        ),
        (
            {
                "subtype": "file_share",
                "text": "Remittance advice",
                "files": [{"id": "F1", "name": "remittance.pdf", "title": "Remittance"}],
            },
            "Remittance advice (file attached: remittance.pdf)",
        ),
        (
            {"subtype": "file_share", "text": "", "files": [{"id": "F2", "name": "scan.png"}]},
            "(file attached: scan.png)",
        ),
    ]

    def notes() -> list[str]:
        with slack_runtime.sessions() as session:
            found = session.scalars(
                select(Event).where(Event.kind == "note.added").order_by(Event.id)
            )
            return [e.payload["text"] for e in found]

    for number, extra in enumerate(ignored):
        served.event({**said, "ts": f"1700000100.00020{number}", **extra})
    # Slack's events are handled side by side: each reply is written once the one before it
    # is in the history, as a person writes them one after another.
    for stored, (extra, _) in enumerate(written, start=1):
        served.event({**said, "ts": f"1700000100.00030{stored}", **extra})
        wait_for(lambda: len(notes()) >= stored)  # noqa: B023 (called before the next turn)
        assert notes() == [note for _, note in written[:stored]]


def test_mark_disputed_with_more_open_invoices_than_a_form_lists_offers_them_all(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    rows = [
        row(invoice_number=f"INV-{n:03d}-{'X' * 56}", due_date=f"2026-02-{1 + n % 28:02d}")
        for n in range(150)
    ]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now(), owner="U07DANA01")
    posting.post_new(rt, SlackChat(web_client("xoxb-test", slack_api.url)), "C0ESCALATE")
    escalation = _state(rt)

    served.click("esc_dispute", str(escalation.id), channel="C0ESCALATE")
    modal = wait_for(lambda: slack_api.calls("views.open"))[-1]["view"]

    assert validate_blocks(modal["blocks"]) == []
    block_ids = [b["block_id"] for b in modal["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    picker = next(b for b in modal["blocks"] if b.get("block_id") == "invoices")["element"]
    assert len(picker["options"]) <= 100
    assert all(len(o["text"]["text"]) <= 75 for o in picker["options"])
    every = next(o for o in picker["options"] if o["text"]["text"] == "All 150 open invoices")
    assert picker["initial_options"] == [every]
    said = json.dumps(modal["blocks"])
    assert "the 99 oldest are listed" in said and "the other 51 are not" in said

    served.submit(
        "esc_dispute",
        modal["private_metadata"],
        {
            "invoices": {"value": {"type": "multi_static_select", "selected_options": [every]}},
            "reason": {"value": {"type": "plain_text_input", "value": "wrong rates"}},
        },
    )

    def disputed() -> int:
        with rt.sessions() as session:
            return len(session.scalars(select(Invoice).where(Invoice.disputed)).all())

    wait_for(lambda: disputed() == 150)
    wait_for(lambda: any(" and 140 more disputed" in t for t in _in_thread(slack_api, escalation)))


def test_an_unclaimed_escalation_is_raised_again_after_a_business_day(
    slack_runtime: Runtime, slack_api: Any, thread: Escalation, clock: FixedClock
) -> None:
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    clock.set(clock.now() + timedelta(hours=20))
    assert sweep(slack_runtime, chat).raised == []  # not yet a business day
    clock.set(clock.now() + timedelta(hours=5))

    assert sweep(slack_runtime, chat).raised == [thread.id]
    assert sweep(slack_runtime, chat).raised == []  # once, not every sweep
    assert any(
        "<@U07DANA01>" in t and "without anyone claiming" in t
        for t in _in_thread(slack_api, thread)
    )


def test_business_time_skips_the_weekend() -> None:
    from datetime import UTC, datetime

    friday_noon = datetime(2026, 3, 20, 16, tzinfo=UTC)  # 12:00 in New York
    monday_noon = datetime(2026, 3, 23, 16, tzinfo=UTC)
    days = ["mon", "tue", "wed", "thu", "fri"]
    assert business_time(friday_noon, monday_noon, "America/New_York", days) == timedelta(days=1)


def test_a_second_reason_joins_the_customers_thread_and_resolving_closes_both(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation
) -> None:
    from bot.core.models import Escalation as Esc

    with slack_runtime.writing() as session:
        # a playbook step stores its escalation directly, as the planner does
        session.add(
            Esc(
                customer_id=thread.customer_id,
                reason="step plus30",
                state="open",
                opened_at=slack_runtime.clock.now(),
            )
        )
    sweep(slack_runtime, SlackChat(web_client("xoxb-test", slack_api.url)))

    with slack_runtime.sessions() as session:
        rows = session.scalars(select(Esc).order_by(Esc.id)).all()
    assert {r.slack_thread_ts for r in rows} == {thread.slack_thread_ts}  # no second thread
    assert any("Also needs a person: step plus30" in t for t in _in_thread(slack_api, thread))

    served.submit(
        "esc_resolve",
        f"{thread.id}|C0ESCALATE",
        {"outcome": {"value": {"type": "static_select", "selected_option": {"value": "paid"}}}},
    )

    def all_resolved() -> bool:
        with slack_runtime.sessions() as session:
            return {e.state for e in session.scalars(select(Esc))} == {"resolved"}

    wait_for(all_resolved)


def test_one_slack_failure_does_not_stop_the_sweep_and_the_next_sweep_posts_it(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    rows = [
        row(customer_id="C-1", invoice_number="INV-1", due_date="2026-03-01"),
        row(
            customer_id="C-2",
            customer_name="Harbor Dental",
            invoice_number="INV-2",
            due_date="2026-03-01",
        ),
    ]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), rt.clock.now())
        for customer_id in session.scalars(select(Customer.id)).all():
            service.open_or_add(session, customer_id, "replied", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "channel_not_found")
    chat = SlackChat(web_client("xoxb-test", slack_api.url))

    first = sweep(rt, chat)
    second = sweep(rt, chat)

    assert len(first.posted) == 1 and len(second.posted) == 1
    with rt.sessions() as session:
        assert all(e.slack_thread_ts for e in session.scalars(select(Escalation)))
