"""Slack: ack latency of Approve under 50 concurrent signed clicks, and Web API calls per reminder
on a 1,000-reminder day (posting the plan, then approving each tier at once)."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.ledger import TODAY, Result, one_invoice_each
from bot import approvals, plan_posting
from bot.clock import FixedClock
from bot.ledger import apply_batch
from bot.plan_store import run_plan
from bot.planner import PlanRules
from bot.runtime import Runtime, start
from bot.sample_ledger import write_csv
from bot.settings import load_settings
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.fake_slack import FakeSlack
from tests.slack_requests import SIGNING_SECRET, SlackRequests

REMINDERS = 1000
CLICKS = 50


def _ledger(runtime: Runtime, folder: Path) -> None:
    rows = one_invoice_each(REMINDERS, 7, tiers=("standard", "transactional"))
    batch = read_ledger_csv(write_csv(folder / "l.csv", rows))
    with runtime.writing() as session:
        apply_batch(session, batch, runtime.clock.now())


def run() -> tuple[list[Result], str]:
    with tempfile.TemporaryDirectory() as folder, FakeSlack(token="xoxb-test") as fake:
        settings = load_settings(
            env_file=None,
            database_url=f"sqlite:///{folder}/bench.db",
            timezone="America/New_York",
            slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.url,
            finance_channel="C0FINANCE",
            approvers=["U0APPROVER"],
        )
        runtime = start(settings, clock=FixedClock(datetime(2026, 3, 16, 14, tzinfo=UTC)))
        _ledger(runtime, Path(folder))
        with runtime.writing() as session:
            run_plan(session, PlanRules.from_settings(settings), TODAY, runtime.clock.now(), False)
        client = web_client("xoxb-test", fake.url)
        before = len(fake.records())
        plan_posting.post_plan(runtime, SlackChat(client), "C0FINANCE", TODAY)
        posting_calls = len(fake.records()) - before
        before = len(fake.records())
        for tier in ("standard", "transactional"):
            with runtime.writing() as session:
                ids = approvals.approve_all(session, TODAY, tier, "U0APPROVER", runtime.clock.now())
            with runtime.sessions() as session:
                plan_posting.refresh(session, SlackChat(client), ids, settings.timezone)
        approval_calls = len(fake.records()) - before

        # Fresh reminders to click: re-open 50 of them.
        from sqlalchemy import update

        from bot.models import Reminder

        with runtime.writing() as session:
            session.execute(
                update(Reminder)
                .where(Reminder.id <= CLICKS)
                .values(state="planned", approved_by=None, approved_at=None)
            )
        runtime.close()
        latencies = _clicks(
            {
                "DATABASE_URL": settings.database_url,
                "ARBOT_TIMEZONE": settings.timezone,
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": fake.url,
                "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
                "ARBOT_APPROVERS": "U0APPROVER",
                "ARBOT_NOW": "2026-03-16T14:00:00+00:00",
            }
        )
        runtime = start(settings, clock=FixedClock(datetime(2026, 3, 16, 14, tzinfo=UTC)))
        approved = CLICKS - _waiting(runtime)
        runtime.close()

    per_reminder = (posting_calls + approval_calls) / REMINDERS
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    note = (
        f"Web API calls for a {REMINDERS:,}-reminder day: {posting_calls} to post the plan, "
        f"{approval_calls} to approve both tiers and redraw = {per_reminder:.2f} per reminder "
        f"(target ≤ 0.2). Approve ack latency over {CLICKS} concurrent clicks: "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target ≤ 100 ms), "
        f"{approved} of {CLICKS} approved afterwards."
    )
    return [
        Result("Approve ack, p99 of 50 concurrent clicks", f"{CLICKS} clicks", p99, 0.1),
    ], note


def _waiting(runtime: Runtime) -> int:
    from sqlalchemy import func, select

    from bot.models import Reminder

    with runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count()).where(Reminder.id <= CLICKS, Reminder.state == "planned")
            )
            or 0
        )


FAKE_SLACK_PROCESS = """
import sys, time
from tests.fake_slack import FakeSlack
fake = FakeSlack(token="xoxb-test").start()
print(fake.url, flush=True)
sys.stdin.read()
"""


def _clicks(settings_env: dict[str, str]) -> list[float]:
    """Fifty signed Approve clicks at once against `arbot serve` running in its own process, with
    the fake Slack API in a third process, so that neither competes with the clients for a GIL."""
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE_SLACK_PROCESS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    settings_env = {**settings_env, "SLACK_API_URL": fake.stdout.readline().strip()}
    try:
        return _burst_against_server(settings_env)
    finally:
        fake.terminate()
        fake.wait(timeout=10)


def _burst_against_server(settings_env: dict[str, str]) -> list[float]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, **settings_env}
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("arbot serve did not start")
            time.sleep(0.05)
        latencies = asyncio.run(_burst(base))
        check = start(load_settings(env_file=None, database_url=settings_env["DATABASE_URL"]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _waiting(check):
            time.sleep(0.05)
        check.close()
        return latencies
    finally:
        server.terminate()
        server.wait(timeout=20)


async def _burst(base: str) -> list[float]:
    """Fifty clicks fired together; each timer runs from its request's send to the answer."""
    requests = SlackRequests(base)
    limits = httpx.Limits(max_connections=CLICKS)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def click(reminder_id: int) -> float:
            body, headers = requests.signed_form(
                requests.click_payload("approve", str(reminder_id))
            )
            started = time.perf_counter()
            response = await client.post(requests.url, content=body, headers=headers)
            assert response.status_code == 200, response.text
            return time.perf_counter() - started

        await click(999_999)  # warm up: the app's first request asks Slack who it is
        await asyncio.sleep(0.5)
        return list(await asyncio.gather(*(click(n) for n in range(1, CLICKS + 1))))
