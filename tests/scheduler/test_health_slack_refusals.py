"""/healthz names what Slack keeps refusing for a reason that does not pass by itself (the bot
taken out of the channel, the channel archived or gone, a token Slack no longer takes): a redraw
or an escalation's history owed to Slack with such an answer makes the health degraded, says what
to do, and clears once Slack takes it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Reminder
from bot.core.runtime import Runtime
from bot.escalations import posting, service
from bot.escalations.sweeps import sweep
from bot.planning import posting as plan_posting
from bot.planning.flows import plan_day
from integrations.slack_chat import SlackChat, web_client
from scheduler.health import health
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)

# The client's own retries of a 500 on a call safe to repeat, made as often as ever but at once.
pytestmark = pytest.mark.usefixtures("slack_retries_at_once")


def _chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def test_a_redraw_slack_refuses_for_want_of_a_person_degrades_health_until_it_is_drawn(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    late = (TODAY - timedelta(days=7)).isoformat()
    assert cli("import-csv", str(write(tmp_path / "l.csv", [row(due_date=late)]))).code == 0
    plan_day(rt, TODAY, links=None, slack=_chat(slack_api))
    slack_api.fail_next("chat.update", "is_archived", times=2)
    with rt.sessions() as session:
        reminder_id = session.scalars(select(Reminder.id)).one()
        plan_posting.refresh(session, _chat(slack_api), [reminder_id], rt.settings.timezone)

    ok, doc = health(rt, None)
    assert ok and doc["status"] == "degraded"
    refused = doc["slack_refused"]  # the card message and the plan's header
    assert len(refused) == 2 and all(r["what"] == "redraw" for r in refused)
    assert all(r["channel"] == "C0FINANCE" and r["error"] == "is_archived" for r in refused)
    assert all("unarchive it" in r["to_do"] for r in refused)

    clock.advance(timedelta(minutes=20))  # unarchived meanwhile: the sweep draws them
    sweep(rt, _chat(slack_api))
    ok, doc = health(rt, None)
    assert ok and doc["status"] == "ok" and doc["slack_refused"] == []


def test_a_history_slack_refuses_because_the_bot_left_the_channel_is_named_in_health(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    with rt.writing() as session:
        from bot.ledger.upsert import apply_batch
        from integrations.csv_ledger import read_ledger_csv

        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "not_in_channel", after=1)  # the history
    assert len(posting.post_new(rt, _chat(slack_api))) == 1

    ok, doc = health(rt, None)
    assert ok and doc["status"] == "degraded"
    [refused] = doc["slack_refused"]
    assert refused["error"] == "not_in_channel" and refused["what"] == "history"
    assert "/invite @arbot" in refused["to_do"]


def test_a_redraw_refused_for_a_passing_reason_leaves_health_ok(
    cli: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    late = (TODAY - timedelta(days=7)).isoformat()
    assert cli("import-csv", str(write(tmp_path / "l.csv", [row(due_date=late)]))).code == 0
    plan_day(rt, TODAY, links=None, slack=_chat(slack_api))
    slack_api.server_error_next("chat.update", times=3)  # a bad minute at Slack
    with rt.sessions() as session:
        reminder_id = session.scalars(select(Reminder.id)).one()
        plan_posting.refresh(session, _chat(slack_api), [reminder_id], rt.settings.timezone)

    ok, doc = health(rt, None)
    assert ok and doc["status"] == "ok" and doc["slack_refused"] == []


def test_an_escalation_slack_will_not_post_for_want_of_a_person_is_named_until_it_is_posted(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    with rt.writing() as session:
        from bot.ledger.upsert import apply_batch
        from integrations.csv_ledger import read_ledger_csv

        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "not_in_channel", times=50)
    assert posting.post_new(rt, _chat(slack_api), "C0ESCALATE") == []
    clock.advance(timedelta(minutes=20))
    assert posting.post_new(rt, _chat(slack_api), "C0ESCALATE") == []

    ok, doc = health(rt, None)
    assert ok and doc["status"] == "degraded"
    [refused] = doc["slack_refused"]
    assert refused["what"] == "escalation" and refused["channel"] == "C0ESCALATE"
    assert refused["error"] == "not_in_channel" and refused["attempts"] == 2
    assert "/invite @arbot" in refused["to_do"]

    slack_api.reset()  # the bot invited back: the next post goes out
    assert len(posting.post_new(rt, _chat(slack_api), "C0ESCALATE")) == 1
    ok, doc = health(rt, None)
    assert ok and doc["status"] == "ok" and doc["slack_refused"] == []


def test_an_unmatched_stripe_notice_slack_will_not_post_for_want_of_a_person_is_named(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    from bot.payments.flows import receive_stripe_event
    from bot.payments.stripe_events import TELL_AFTER
    from integrations.base.payments import StripeEventIn
    from tests.support import stripe_requests as sr

    rt = slack_runtime
    slack_api.fail_next("chat.postMessage", "is_archived", times=50)
    event = StripeEventIn(
        id="evt_never",
        type="charge.refunded",
        object=sr.charge_refunded("pi_never", 50000, 50000),
        livemode=False,
        created=rt.clock.now() - TELL_AFTER,
    )
    assert receive_stripe_event(rt, event, slack=_chat(slack_api), links=None).status == (
        "unmatched"
    )

    ok, doc = health(rt, None)
    assert ok and doc["status"] == "degraded"
    [refused] = doc["slack_refused"]
    assert refused["what"] == "stripe_unmatched" and refused["channel"] == "C0FINANCE"
    assert refused["error"] == "is_archived" and "unarchive it" in refused["to_do"]

    slack_api.reset()  # unarchived: the sweep tells it after its backoff
    clock.advance(timedelta(minutes=3))
    assert sweep(rt, _chat(slack_api)).stripe_unmatched_posted == ["evt_never"]
    ok, doc = health(rt, None)
    assert ok and doc["status"] == "ok" and doc["slack_refused"] == []
