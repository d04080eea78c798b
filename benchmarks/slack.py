"""Slack: ack latency of Approve under 50 concurrent signed clicks, and Web API calls per reminder
on a 1,000-reminder day (posting the plan, then approving each tier at once).

The clicks go to `arbot serve` in its own process, from a client that costs next to no CPU (as
Slack's own servers cost ours none): every request is built and signed beforehand, written at
once on keep-alive connections opened beforehand, and its answer is read with a selector."""

from __future__ import annotations

import gc
import math
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from benchmarks.ledger import TODAY, Result, one_invoice_each
from bot.core.clock import FixedClock
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.ledger.sample import write_csv
from bot.ledger.upsert import apply_batch
from bot.planning import posting as plan_posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests

REMINDERS = 1000
CLICKS = 50
WARM_UP_SECONDS = 0.5
HEADERS_END = b"\r\n\r\n"
OK = b"HTTP/1.1 200 "


@dataclass(frozen=True)
class Burst:
    latencies: list[float]  # seconds from each click written to its ack's headers read
    approved_within: float  # seconds from the last ack until the database showed every approval


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
        rules = StaleRules.from_settings(settings)
        for tier in ("standard", "transactional"):
            with runtime.writing() as session:
                ids = approvals.approve_all(
                    session, TODAY, tier, "U0APPROVER", runtime.clock.now(), rules=rules
                ).changed()
            with runtime.sessions() as session:
                plan_posting.refresh(session, SlackChat(client), ids, settings.timezone)
        approval_calls = len(fake.records()) - before

        # Fresh reminders to click: re-open 50 of them.
        from sqlalchemy import update

        from bot.core.models import Reminder

        with runtime.writing() as session:
            session.execute(
                update(Reminder)
                .where(Reminder.id <= CLICKS)
                .values(state="planned", approved_by=None, approved_at=None)
            )
        runtime.close()
        burst = _clicks(
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
    latencies = sorted(burst.latencies)
    p99 = latencies[math.ceil(len(latencies) * 0.99) - 1]  # nearest rank: of 50, the slowest
    note = (
        f"Web API calls for a {REMINDERS:,}-reminder day: {posting_calls} to post the plan, "
        f"{approval_calls} to approve both tiers and redraw = {per_reminder:.2f} per reminder "
        f"(target ≤ 0.2). Approve ack latency over {CLICKS} concurrent clicks: "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target ≤ 100 ms), "
        f"{approved} of {CLICKS} approved afterwards ({burst.approved_within:.1f} s after the burst)."
    )
    return [
        Result("Approve ack, p99 of 50 concurrent clicks", f"{CLICKS} clicks", p99, 0.1),
    ], note


def _waiting(runtime: Runtime) -> int:
    from sqlalchemy import func, select

    from bot.core.models import Reminder

    with runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count()).where(Reminder.id <= CLICKS, Reminder.state == "planned")
            )
            or 0
        )


FAKE_SLACK_PROCESS = """
import sys, time
from tests.support.fake_slack import FakeSlack
fake = FakeSlack(token="xoxb-test").start()
print(fake.url, flush=True)
sys.stdin.read()
"""


def _clicks(settings_env: dict[str, str]) -> Burst:
    """Fifty signed Approve clicks at once against `arbot serve` running in its own process, with
    the fake Slack API in a third process, so that neither competes with the client for a GIL."""
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


def _burst_against_server(settings_env: dict[str, str]) -> Burst:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()
    sock.close()
    env = {**os.environ, **settings_env}
    server = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli.main", "serve", "--port", str(address[1])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_health(address)
        # The app's first click asks Slack who it is; make it before the timed burst.
        with socket.create_connection(address) as connection:
            _exchange(connection, _signed_clicks(address, [999_999])[0])
        time.sleep(WARM_UP_SECONDS)
        latencies = _burst(address, _signed_clicks(address, range(1, CLICKS + 1)))
        started = time.monotonic()
        check = start(load_settings(env_file=None, database_url=settings_env["DATABASE_URL"]))
        while time.monotonic() < started + 60 and _waiting(check):
            time.sleep(0.05)
        check.close()
        return Burst(latencies, time.monotonic() - started)
    finally:
        server.terminate()
        server.wait(timeout=20)


def _wait_for_health(address: tuple[str, int]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(address) as connection:
                if _exchange(connection, _request(address, "GET", "/healthz")).startswith(OK):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("arbot serve did not start")
        time.sleep(0.05)


def _signed_clicks(address: tuple[str, int], reminder_ids: Iterable[int]) -> list[bytes]:
    """Approve clicks as Slack sends them: distinct, freshly signed, ready to write."""
    slack = SlackRequests(f"http://{address[0]}:{address[1]}")
    clicks = []
    for reminder_id in reminder_ids:
        payload = slack.click_payload("approve", str(reminder_id), trigger_id=f"t-{reminder_id}")
        body, headers = slack.signed_form(payload)
        clicks.append(_request(address, "POST", "/slack/events", body, headers))
    slack.close()
    return clicks


def _request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    """One HTTP/1.1 request on a keep-alive connection, with the headers Slack's servers send."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {address[0]}:{address[1]}",
        "User-Agent: Slackbot 1.0 (+https://api.slack.com/robots)",
        "Accept: application/json,*/*",
        "Accept-Encoding: gzip,deflate",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _exchange(connection: socket.socket, request: bytes) -> bytes:
    """Write a request and read its whole answer (headers and Content-Length body)."""
    connection.settimeout(10)
    connection.sendall(request)
    answer = b""
    while HEADERS_END not in answer:
        answer += _receive(connection)
    head, _, body = answer.partition(HEADERS_END)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += _receive(connection)
    return answer


def _receive(connection: socket.socket) -> bytes:
    chunk = connection.recv(65536)
    if not chunk:
        raise RuntimeError("arbot serve closed the connection")
    return chunk


def _burst(address: tuple[str, int], clicks: list[bytes]) -> list[float]:
    """All clicks written at once, one per keep-alive connection opened (and used) beforehand."""
    connections = [socket.create_connection(address) for _ in clicks]
    try:
        for connection in connections:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _exchange(connection, _request(address, "GET", "/healthz"))
        return _timed(dict(zip(connections, clicks, strict=True)))
    finally:
        for connection in connections:
            connection.close()


def _timed(clicks: dict[socket.socket, bytes]) -> list[float]:
    """Each timer runs from its request written to its answer's headers read."""
    written: dict[socket.socket, float] = {}
    answered: dict[socket.socket, float] = {}
    received = dict.fromkeys(clicks, b"")
    selector = selectors.DefaultSelector()
    for connection in clicks:
        selector.register(connection, selectors.EVENT_READ)
    gc.disable()
    try:
        for connection, click in clicks.items():
            connection.sendall(click)
            written[connection] = time.perf_counter()
        deadline = time.monotonic() + 10
        while len(answered) < len(clicks):
            ready = selector.select(timeout=max(0.0, deadline - time.monotonic()))
            now = time.perf_counter()
            if not ready:
                raise RuntimeError(f"{len(clicks) - len(answered)} clicks had no answer")
            for key, _events in ready:
                connection = cast(socket.socket, key.fileobj)
                received[connection] += _receive(connection)
                if HEADERS_END in received[connection]:
                    answered[connection] = now
                    selector.unregister(connection)
    finally:
        gc.enable()
        selector.close()
    for answer in received.values():
        if not answer.startswith(OK):
            raise RuntimeError(f"a click was not acknowledged: {answer[:200]!r}")
    return [answered[connection] - written[connection] for connection in clicks]
