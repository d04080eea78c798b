"""The morning plan survives Slack having a bad minute: each message is recorded when Slack takes
it, the sweep posts what is missing (after a restart too), the header is updated rather than
posted twice, and the finance channel is told what came late and why. Driven through the real
flows against the recording Slack fake, which answers chosen calls with an error or HTTP 500."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.models import Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from bot.escalations.sweeps import sweep
from bot.planning.flows import plan_day
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)
CUSTOMERS = 24

# The client's own retries of a 500 on a call safe to repeat, made as often as ever but at once.
pytestmark = pytest.mark.usefixtures("slack_retries_at_once")


def _ledger(cli: Any, tmp_path: Path, customers: int = CUSTOMERS) -> None:
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Customer {n}",
            email=f"ap@c{n}.example",
            invoice_number=f"INV-{n}",
            issue_date="2026-01-01",
            due_date=(TODAY - timedelta(days=7)).isoformat(),
            amount="1200.00",
            balance="1200.00",
            tier=("standard", "key", "strategic")[n % 3] if False else "standard",
        )
        for n in range(customers)
    ]
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0


def _chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def _unposted(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count(Reminder.id)).where(
                    Reminder.plan_date == TODAY, Reminder.slack_ts.is_(None)
                )
            )
            or 0
        )


def _planned(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return (
            session.scalar(select(func.count(Reminder.id)).where(Reminder.plan_date == TODAY)) or 0
        )


def _headers(slack_api: Any) -> list[dict[str, Any]]:
    return [
        m
        for m in slack_api.messages.values()
        if str(m.get("text", "")).startswith("Collections plan for")
    ]


def _card_ids_in_slack(slack_api: Any) -> list[str]:
    ids = []
    for message in slack_api.messages.values():
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == "approve":
                    ids.append(str(element.get("value")))
    return ids


def _posted_cleanly(slack_api: Any) -> int:
    return sum(1 for r in slack_api.records("chat.postMessage") if r["response"].get("ok"))


def test_a_500_mid_post_is_stored_and_the_sweep_posts_the_rest_under_the_same_header(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path)
    slack_api.server_error_next("chat.postMessage", after=2)  # header and first cards, then 500
    with pytest.raises(UserError) as refused:
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    assert "could not be reached" in str(refused.value)
    assert "\n" not in str(refused.value)
    total = _planned(slack_runtime)
    missing = _unposted(slack_runtime)
    assert total > 0 and 0 < missing < total

    sweep(slack_runtime, _chat(slack_api))  # too soon: the backoff holds it
    assert _unposted(slack_runtime) == missing

    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))
    assert _unposted(slack_runtime) == 0
    assert len(_headers(slack_api)) == 1  # the first header was updated, not posted again
    cards = _card_ids_in_slack(slack_api)
    assert len(cards) == len(set(cards)) == total  # every card once
    notices = [
        m["text"] for m in slack_api.messages.values() if "reached this channel late" in m["text"]
    ]
    assert len(notices) == 1
    assert f"{missing} card(s) missing" in notices[0] and "internal_error" in notices[0]

    before = len(slack_api.calls())
    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))  # all there: the plan is not touched again
    assert not [c for c in slack_api.calls()[before:] if c.get("channel") == "C0FINANCE"]


def test_after_a_restart_the_sweep_posts_a_plan_slack_refused(
    cli: Any,
    slack_settings: Settings,
    slack_runtime: Runtime,
    slack_api: Any,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    _ledger(cli, tmp_path, customers=3)
    slack_api.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(UserError) as refused:
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    assert "/invite @arbot" in str(refused.value) and "C0FINANCE" in str(refused.value)
    assert _unposted(slack_runtime) == _planned(slack_runtime) == 3
    slack_runtime.close()

    clock.advance(timedelta(minutes=2))
    restarted = start(slack_settings, clock=clock)
    try:
        sweep(restarted, _chat(slack_api))
        assert _unposted(restarted) == 0
    finally:
        restarted.close()
    assert len(_headers(slack_api)) == 1
    notices = [m["text"] for m in slack_api.messages.values() if "late" in m["text"]]
    assert len(notices) == 1 and "not_in_channel" in notices[0]


def test_a_redraw_slack_refused_after_a_click_is_drawn_again_by_the_sweep(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    from bot.planning import posting

    _ledger(cli, tmp_path, customers=3)
    plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    with slack_runtime.writing() as session:
        reminder = session.scalars(select(Reminder).where(Reminder.plan_date == TODAY)).first()
        assert reminder is not None
        reminder.state, reminder.approved_by = "approved", "U0APPROVER"
        reminder.approved_at = clock.now()
        key = (str(reminder.slack_channel), str(reminder.slack_ts))
    slack_api.server_error_next("chat.update", times=3)  # the client's own retries fail too
    with slack_runtime.sessions() as session:
        posting.refresh(session, _chat(slack_api), [reminder.id], "America/New_York")  # no raise
    assert "U0APPROVER" not in str(slack_api.messages[key]["blocks"])
    sweep(slack_runtime, _chat(slack_api))
    assert "U0APPROVER" in str(slack_api.messages[key]["blocks"])


def test_a_redraw_slack_can_never_take_is_not_retried_for_ever(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    from bot.core import slack_retries
    from bot.core.models import SlackRetry

    _ledger(cli, tmp_path, customers=3)
    plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    with slack_runtime.sessions() as session:
        ts = session.scalars(select(Reminder.slack_ts).where(Reminder.plan_date == TODAY)).first()
    assert ts is not None
    slack_retries.owe(slack_runtime.writes, "redraw", "C0FINANCE", ts, "internal_error")
    slack_api.fail_next("chat.update", "message_not_found")  # deleted in Slack meanwhile
    sweep(slack_runtime, _chat(slack_api))
    with slack_runtime.sessions() as session:
        assert session.scalars(select(SlackRetry)).all() == []
    calls = len(slack_api.calls("chat.update"))
    clock.advance(timedelta(hours=1))
    sweep(slack_runtime, _chat(slack_api))
    assert len(slack_api.calls("chat.update")) == calls  # not tried again


def _late_notices(slack_api: Any) -> list[str]:
    return [
        m["text"] for m in slack_api.messages.values() if "reached this channel late" in m["text"]
    ]


def test_a_late_plan_notice_slack_took_though_its_answer_was_lost_is_posted_once(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=3)  # a header and one message of cards
    slack_api.server_error_next("chat.postMessage", after=1)  # the cards: a 500
    with pytest.raises(UserError):
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    clock.advance(timedelta(minutes=5))
    slack_api.lose_answer_next("chat.postMessage", after=1)  # the cards, then the notice
    sweep(slack_runtime, _chat(slack_api))
    assert _unposted(slack_runtime) == 0
    assert len(_late_notices(slack_api)) == 1
    looked = len(slack_api.calls("conversations.history"))  # for the cards, not the notice

    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))  # found in the channel, and kept
    sweep(slack_runtime, _chat(slack_api))
    assert len(_late_notices(slack_api)) == 1
    assert len(slack_api.calls("conversations.history")) == looked + 1
