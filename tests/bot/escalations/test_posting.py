"""Posting escalations with no transaction open while Slack answers: each is claimed first, so two
processes never both post it, and a claim whose process died, or that Slack refused, is taken up
again."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core import message_versions
from bot.core.db import writing_factory
from bot.core.models import Customer, Escalation
from bot.core.runtime import Runtime
from bot.escalations import posting, service
from bot.ledger.upsert import apply_batch
from bot.planning import posting as plan_posting
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write
from tests.support.morning_job import morning_job_finished, morning_job_running
from tests.support.slack_requests import PATIENCE, wait_for

TODAY = date(2026, 3, 16)


def _escalation(rt: Runtime, tmp_path: Path) -> int:
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", rt.clock.now())
        return escalation.id


def _claim(rt: Runtime, escalation_id: int, ago: timedelta) -> None:
    with rt.writing() as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None
        escalation.slack_claimed_at = rt.clock.now() - ago


def test_an_escalation_another_process_is_posting_is_left_to_it_until_its_claim_lapses(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _escalation(rt, tmp_path)
    _claim(rt, escalation_id, timedelta(0))  # another replica is posting it right now

    assert posting.post_new(rt, chat) == []
    assert slack_api.calls("chat.postMessage") == []

    _claim(rt, escalation_id, timedelta(minutes=11))  # ... and died doing it
    assert posting.post_new(rt, chat) == [escalation_id]
    assert posting.post_new(rt, chat) == []  # posted once
    with rt.sessions() as session:
        escalation = session.get(Escalation, escalation_id)
    assert escalation is not None and escalation.slack_thread_ts
    assert escalation.slack_claimed_at is None


def test_an_escalation_slack_refused_is_given_back_for_the_next_try(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _escalation(rt, tmp_path)
    slack_api.fail_next("chat.postMessage", "fatal_error")

    assert posting.post_new(rt, chat) == []
    with rt.sessions() as session:
        escalation = session.get(Escalation, escalation_id)
    assert escalation is not None and escalation.slack_claimed_at is None
    assert escalation.slack_thread_ts is None

    assert posting.post_new(rt, chat) == [escalation_id]


def _posted_and_waiting(rt: Runtime, chat: SlackChat, tmp_path: Path) -> int:
    """An escalation in its thread, opened a week ago and claimed by nobody."""
    escalation_id = _escalation(rt, tmp_path)
    assert posting.post_new(rt, chat) == [escalation_id]
    with rt.writing() as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None
        escalation.opened_at = rt.clock.now() - timedelta(days=7)
    return escalation_id


def test_an_unclaimed_thread_slack_refused_to_raise_stays_unraised_for_the_next_sweep(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _posted_and_waiting(rt, chat, tmp_path)
    slack_api.fail_next("chat.postMessage", "fatal_error")
    assert posting.raise_unclaimed(rt, chat, [escalation_id]) == []
    with rt.sessions() as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None and escalation.raised_at is None
    assert posting.raise_unclaimed(rt, chat, [escalation_id]) == [escalation_id]


def test_a_redraw_answered_late_never_overwrites_a_newer_decision(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _escalation(rt, tmp_path)
    assert posting.post_new(rt, chat) == [escalation_id]
    held, release = threading.Event(), threading.Event()

    def hold_the_first_redraw(what: str) -> None:
        if what == "Slack chat.update" and not held.is_set():
            held.set()
            release.wait(PATIENCE)

    def redraw() -> None:
        with rt.sessions() as session:
            posting.redraw(session, chat, escalation_id, TODAY, "America/New_York")

    slack_api.on_call = hold_the_first_redraw
    first = threading.Thread(target=redraw)
    first.start()  # drawn as open, and Slack is slow to answer
    wait_for(held.is_set)
    with rt.writing() as session:
        service.claim(session, escalation_id, "U0APPROVER", rt.clock.now())
    redraw()  # the claim's redraw, asked while the first is on its way
    release.set()
    first.join(timeout=PATIENCE)
    slack_api.on_call = None

    with rt.sessions() as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None and escalation.slack_channel and escalation.slack_thread_ts
        where = (escalation.slack_channel, escalation.slack_thread_ts)
    assert "Claimed by <@U0APPROVER>" in json.dumps(slack_api.messages[where]["blocks"])


def test_an_escalation_waits_while_todays_plan_is_going_out_in_the_same_channel(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _escalation(rt, tmp_path)
    morning_job_running(rt)  # the morning job is making and posting today's plan

    assert posting.post_new(rt, chat) == []  # would land between the plan's messages
    assert slack_api.calls("chat.postMessage") == []
    # The morning job's own post, before its plan, does not wait for itself.
    assert posting.post_new(rt, chat, plan_first=False) == [escalation_id]


def test_an_escalation_in_its_own_channel_does_not_wait_for_the_plan(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _escalation(rt, tmp_path)
    morning_job_running(rt)  # the morning job is making and posting today's plan
    assert posting.post_new(rt, chat, "C0ESCALATE") == [escalation_id]


def test_an_escalation_is_posted_once_todays_plan_is_all_in_slack(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _escalation(rt, tmp_path)
    morning_job_running(rt)
    morning_job_finished(rt)
    assert posting.post_new(rt, chat) == [escalation_id]


def test_a_redraw_left_by_a_drawer_that_died_is_drawn_by_the_sweep(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_id = _escalation(rt, tmp_path)
    assert posting.post_new(rt, chat) == [escalation_id]
    with rt.writing() as session:
        service.claim(session, escalation_id, "U0APPROVER", rt.clock.now())
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None and escalation.slack_channel and escalation.slack_thread_ts
        channel, ts = escalation.slack_channel, escalation.slack_thread_ts
    writes = writing_factory(rt.engine)
    long_ago = message_versions.REAL_TIME.now() - 2 * message_versions.LEASE
    assert message_versions.ask(writes, channel, ts, long_ago) == 1  # a drawer took it, and died
    assert message_versions.ask(writes, channel, ts, long_ago) is None  # the claim's, left to it

    assert plan_posting.retry_redraws(rt, chat) == 1
    assert "Claimed by <@U0APPROVER>" in json.dumps(slack_api.messages[(channel, ts)]["blocks"])
