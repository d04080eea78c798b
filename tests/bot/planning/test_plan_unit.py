"""The day's plan reaches the finance channel as one unit, escalations first: the escalations the
plan hands to a person are posted before its header (which links them), a header already posted
is drawn again when the sweep posts one of them later, and the weekly review never lands between
the plan's messages (it waits for the plan, up to plan_unit.PLAN_WAIT, then goes out saying so).
Through the real flows and scheduled jobs against the recording Slack fake."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from bot.planning.flows import plan_day
from bot.planning.plan_unit import PLAN_WAIT
from integrations.slack_chat import SlackChat, web_client
from scheduler.daily import weekly_review as weekly_review_job
from scheduler.jobs import Job, declare_jobs
from tests.support.ledger_files import a_week_late, row, write

TODAY = date(2026, 3, 16)  # a Monday, the review's day
MONDAY = 0


def _ledger(cli: Any, tmp_path: Path, customers: int, late_co: bool = False) -> None:
    rows = a_week_late(customers)
    if late_co:  # 43 days late: the plan hands it to a person
        rows.append(
            row(
                customer_id="C-LATE",
                customer_name="Late Co",
                invoice_number="L-1",
                issue_date="2026-01-01",
                due_date="2026-02-01",
            )
        )
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0


def _chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def _posts(slack_api: Any) -> list[dict[str, Any]]:
    """Every message Slack accepted, in the order it took them."""
    return [
        {**r["params"], "ts": r["response"]["ts"]}
        for r in slack_api.records("chat.postMessage")
        if r["response"].get("ok")
    ]


def _is_header(post: dict[str, Any]) -> bool:
    return str(post.get("text", "")).startswith("Collections plan for")


def _is_review(post: dict[str, Any]) -> bool:
    return "Weekly review" in str(post.get("text", ""))


def _job(jobs: list[Job], name: str) -> Job:
    return next(job for job in jobs if job.name == name)


def test_the_plans_escalations_are_posted_before_its_header_which_links_them(
    cli: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    slack_runtime.settings.escalation_channel = "C0ESCALATE"
    _ledger(cli, tmp_path, customers=2, late_co=True)

    plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))

    posts = _posts(slack_api)
    escalation = next(i for i, p in enumerate(posts) if p["channel"] == "C0ESCALATE")
    header = next(i for i, p in enumerate(posts) if _is_header(p))
    assert escalation < header
    text = json.dumps(posts[header]["blocks"])
    assert "Late Co" in text and "<#C0ESCALATE>" in text and "not posted yet" not in text


def test_the_header_is_drawn_again_when_the_sweep_posts_an_escalation_after_the_plan(
    cli: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    slack_runtime.settings.escalation_channel = "C0ESCALATE"
    _ledger(cli, tmp_path, customers=2, late_co=True)
    slack_api.fail_next("chat.postMessage", "channel_not_found")  # the escalation, first

    plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    header = next(p for p in _posts(slack_api) if _is_header(p))
    assert "not posted yet" in json.dumps(header["blocks"])

    sweep(slack_runtime, _chat(slack_api))

    assert any(p["channel"] == "C0ESCALATE" for p in _posts(slack_api))
    drawn = slack_api.messages[(header["channel"], header["ts"])]
    text = json.dumps(drawn["blocks"])
    assert "Late Co" in text and "<#C0ESCALATE>" in text and "not posted yet" not in text


def test_a_review_due_while_the_plan_is_half_posted_lands_after_the_plans_last_message(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=24)
    jobs = declare_jobs(slack_runtime, _chat(slack_api), "a:1")
    slack_api.server_error_next("chat.postMessage", after=2)  # header and first cards, then 500
    with pytest.raises(UserError):
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))

    waited = _job(jobs, "weekly_review").run()
    assert waited.startswith("the review of 2026-03-16 waits for today's plan")
    assert "card(s) not in Slack yet" in waited
    assert not [p for p in _posts(slack_api) if _is_review(p)]

    clock.advance(timedelta(minutes=5))
    swept = _job(jobs, "sweep").run()  # the rest of the plan, then the review

    assert "weekly review posted to C0FINANCE" in swept
    finance = [p for p in _posts(slack_api) if p["channel"] == "C0FINANCE"]
    assert _is_review(finance[-1]) and sum(map(_is_review, finance)) == 1
    assert float(finance[-1]["ts"]) > max(float(p["ts"]) for p in finance[:-1])
    assert "not all in Slack" not in finance[-1]["text"]


def test_a_review_due_with_the_morning_plan_waits_for_it_and_follows_it(
    cli: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=3)
    jobs = declare_jobs(slack_runtime, _chat(slack_api), "a:1")

    waited = _job(jobs, "weekly_review").run()  # fired at the same minute, ran first
    assert waited == "the review of 2026-03-16 waits for today's plan (not made yet)"
    assert _job(jobs, "morning_plan").run().startswith("planned")

    finance = [p for p in _posts(slack_api) if p["channel"] == "C0FINANCE"]
    assert _is_header(finance[0]) and _is_review(finance[-1])
    assert sum(map(_is_review, finance)) == 1


def test_a_plan_slack_keeps_refusing_holds_the_review_no_longer_than_the_bound(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=24)
    slack_api.server_error_next("chat.postMessage", after=2)
    with pytest.raises(UserError):
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    chat = _chat(slack_api)

    clock.advance(PLAN_WAIT - timedelta(minutes=1))
    assert "waits for today's plan" in weekly_review_job(slack_runtime, chat, "C0F", MONDAY, "a")
    clock.advance(timedelta(minutes=1))
    posted = weekly_review_job(slack_runtime, chat, "C0FINANCE", MONDAY, "a:1")

    assert posted.startswith("posted to C0FINANCE")
    (review,) = [p for p in _posts(slack_api) if _is_review(p)]
    assert "Today's plan (2026-03-16) is not all in Slack yet" in review["text"]
    assert "card(s) not in Slack yet" in review["text"] and "internal_error" in review["text"]


def test_the_sweeps_other_finance_channel_posts_wait_for_a_half_posted_plan(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from bot.core.models import InboundMessage

    _ledger(cli, tmp_path, customers=24)
    slack_api.server_error_next("chat.postMessage", after=2)
    with pytest.raises(UserError):
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    with slack_runtime.writing() as session:  # a message that matched nobody, for the channel
        session.add(
            InboundMessage(
                channel="email",
                received_at=datetime(2026, 3, 16, 14, 0, tzinfo=UTC),
                sender="stranger@nowhere.example",
                raw="(raw)",
                text="Who are you?",
                automatic=False,
                awaiting_slack=True,
            )
        )
    before = len(_posts(slack_api))

    sweep(slack_runtime, _chat(slack_api))  # the plan's retry is not due yet: nothing else goes
    assert len(_posts(slack_api)) == before

    clock.advance(timedelta(minutes=5))
    report = sweep(slack_runtime, _chat(slack_api))

    assert report.plan_cards_posted > 0 and len(report.unmatched_posted) == 1
    finance = [p for p in _posts(slack_api) if p["channel"] == "C0FINANCE"]
    assert "stranger@nowhere.example" in finance[-1]["text"]
    assert float(finance[-1]["ts"]) > max(float(p["ts"]) for p in finance[:-1])
