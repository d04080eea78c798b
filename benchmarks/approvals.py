"""Approvals under load: 50 concurrent signed Approve clicks against `arbot serve` in its own
process, on a day with 1,000 reminders planned and on one with 20,000: the ack latency (p99), and
how long after the burst every click was applied in the database and every card redrawn in Slack.
On the 1,000-reminder day also the Web API calls per reminder (posting the plan, then approving
each tier at once).

The clicks come from a client that costs next to no CPU (as Slack's own servers cost ours none):
every request is built and signed beforehand, written at once on keep-alive connections opened
beforehand, and its answer is read with a selector. The fake Slack API runs in a third process."""

from __future__ import annotations

import gc
import math
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import func, select, update

from benchmarks.books import TODAY, one_invoice_each
from benchmarks.databases import database, open_runtime
from benchmarks.options import Options
from benchmarks.results import CALLS, SECONDS, Result
from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.ledger.sample import write_csv
from bot.ledger.upsert import apply_batch
from bot.planning import posting as plan_posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.shown import versions_of
from bot.reminders.stale import StaleRules
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from integrations.slack_ids import approve_value
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests

ACK_P99 = 0.1
APPLIED_SECONDS = 5.0
CALLS_PER_REMINDER = 0.2
WARM_UP_SECONDS = 0.5
QUIET_SECONDS = 1.0  # no redraw for this long after the last approval: the redraws are done
PATIENCE_SECONDS = 120.0
HEADERS_END = b"\r\n\r\n"
OK = b"HTTP/1.1 200 "


@dataclass(frozen=True)
class Burst:
    latencies: list[float]  # seconds from each click written to its ack's headers read
    applied_within: float  # seconds from the burst's end until every approval was in the database
    redrawn_within: float  # ... until the last card redraw reached Slack
    approved: int
    updates: int  # chat.update calls the burst caused (redraws of one message are coalesced)


def _planned_day(runtime: Runtime, options: Options, reminders: int) -> None:
    rows = one_invoice_each(reminders, 7, tiers=("standard", "transactional"))
    batch = read_ledger_csv(write_csv(options.folder / f"approvals-{reminders}.csv", rows))
    with runtime.writing() as session:
        apply_batch(session, batch, runtime.clock.now())
    with runtime.writing() as session:
        run_plan(
            session, PlanRules.from_settings(runtime.settings), TODAY, runtime.clock.now(), False
        )


def _calls_per_reminder(
    runtime: Runtime, fake: _FakeSlackProcess, reminders: int
) -> tuple[float, str]:
    """Post the plan, then approve each tier at once and redraw: Web API calls per reminder."""
    client = web_client("xoxb-test", fake.url)
    before = fake.calls()
    plan_posting.post_plan(runtime, SlackChat(client), "C0FINANCE", TODAY)
    posting_calls = fake.calls() - before
    before = fake.calls()
    rules = StaleRules.from_settings(runtime.settings)
    for tier in ("standard", "transactional"):
        with runtime.writing() as session:
            ids = approvals.approve_all(
                session, TODAY, tier, "U0APPROVER", runtime.clock.now(), rules=rules
            ).changed()
        with runtime.sessions() as session:
            plan_posting.refresh(session, SlackChat(client), ids, runtime.settings.timezone)
    approval_calls = fake.calls() - before
    note = (
        f"{posting_calls} calls to post the plan, {approval_calls} to approve both tiers and redraw"
    )
    return (posting_calls + approval_calls) / reminders, note


def measure(kind: str, options: Options, reminders: int) -> list[Result]:
    results = []
    fake = _FakeSlackProcess()  # serves the posting here and `arbot serve` alike
    try:
        with database(kind, options.folder, f"approvals-{reminders}") as url:
            settings = {
                "slack_bot_token": "xoxb-test",
                "slack_signing_secret": SIGNING_SECRET,
                "slack_api_url": fake.url,
                "finance_channel": "C0FINANCE",
                "approvers": ["U0APPROVER"],
            }
            runtime = open_runtime(url, **settings)
            try:
                _planned_day(runtime, options, reminders)
                size = f"{reminders:,} reminders planned"
                if reminders <= 1000:  # every reminder approved, then the clicks' ones put back
                    per_reminder, note = _calls_per_reminder(runtime, fake, reminders)
                    results.append(
                        Result(
                            "Slack calls: post the plan, approve both tiers",
                            kind,
                            size,
                            per_reminder,
                            unit=CALLS,
                            target=CALLS_PER_REMINDER,
                            note=note,
                        )
                    )
                    with runtime.writing() as session:
                        session.execute(
                            update(Reminder)
                            .where(Reminder.id <= options.clicks)
                            .values(state="planned", approved_by=None, approved_at=None)
                        )
                else:  # a fresh day: the cards are posted, nothing is approved yet
                    plan_posting.post_plan(
                        runtime, SlackChat(web_client("xoxb-test", fake.url)), "C0FINANCE", TODAY
                    )
            finally:
                runtime.close()
            burst = _clicks(
                options.clicks,
                fake,
                {
                    "SLACK_API_URL": fake.url,
                    "DATABASE_URL": url,
                    "ARBOT_TIMEZONE": "America/New_York",
                    "SLACK_BOT_TOKEN": "xoxb-test",
                    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
                    "ARBOT_APPROVERS": "U0APPROVER",
                    "ARBOT_NOW": "2026-03-16T14:00:00+00:00",
                    # The clicks alone: on this fixed clock every scheduled job (a morning plan
                    # of the whole day, the weekly review) falls due at start-up, in the burst.
                    "ARBOT_SCHEDULER": "false",
                },
            )
    finally:
        fake.close()
    latencies = sorted(burst.latencies)
    p99 = latencies[math.ceil(len(latencies) * 0.99) - 1]  # nearest rank: of 50, the slowest
    clicks = f"{options.clicks} clicks, {reminders:,} planned"
    results += [
        Result(
            "Approve ack, p99 of concurrent clicks",
            kind,
            clicks,
            p99,
            target=ACK_P99,
            note=f"p50 {statistics.median(latencies) * 1000:.0f} ms.",
        ),
        Result(
            "Approve clicks applied and redrawn",
            kind,
            clicks,
            max(burst.applied_within, burst.redrawn_within),
            unit=SECONDS,
            target=APPLIED_SECONDS,
            note=f"{burst.approved} of {options.clicks} approved "
            f"{burst.applied_within:.1f} s after the burst; the last redraw reached Slack after "
            f"{burst.redrawn_within:.1f} s; {burst.updates} chat.update calls.",
        ),
    ]
    return results


def run(options: Options) -> list[Result]:
    return [
        r
        for kind in options.databases
        for reminders in options.planned
        for r in measure(kind, options, reminders)
    ]


def _waiting(runtime: Runtime, clicks: int) -> int:
    with runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count()).where(Reminder.id <= clicks, Reminder.state == "planned")
            )
            or 0
        )


# The fake Slack API in a process of its own: it prints its URL, then for each line read answers
# how many calls it has received in all, and how many of them were chat.update.
FAKE_SLACK_PROCESS = """
import sys
from tests.support.fake_slack import FakeSlack
fake = FakeSlack(token="xoxb-test").start()
print(fake.url, flush=True)
for line in sys.stdin:
    print(len(fake.records()), len(fake.records("chat.update")), flush=True)
"""


class _FakeSlackProcess:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", FAKE_SLACK_PROCESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def _counts(self) -> list[int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("?\n")
        self.process.stdin.flush()
        return [int(n) for n in self.process.stdout.readline().split()]

    def calls(self) -> int:
        """How many Web API calls arrived so far."""
        return self._counts()[0]

    def updates(self) -> int:
        """How many chat.update calls arrived so far."""
        return self._counts()[1]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def _clicks(clicks: int, fake: _FakeSlackProcess, settings_env: dict[str, str]) -> Burst:
    """Signed Approve clicks at once against `arbot serve` running in its own process, with the
    fake Slack API in a third process, so that neither competes with the client for a GIL."""
    return _burst_against_server(clicks, settings_env, fake)


def _burst_against_server(
    clicks: int, settings_env: dict[str, str], fake: _FakeSlackProcess
) -> Burst:
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
        updates_before = fake.updates()
        check = open_runtime(settings_env["DATABASE_URL"])
        with check.sessions() as session:  # what each card's Approve carries
            shown = versions_of(session, range(1, clicks + 1))
        check.close()
        latencies = _burst(address, _signed_clicks(address, range(1, clicks + 1), shown))
        started = time.monotonic()
        check = open_runtime(settings_env["DATABASE_URL"])
        while time.monotonic() < started + PATIENCE_SECONDS and _waiting(check, clicks):
            time.sleep(0.05)
        applied = time.monotonic() - started
        waiting = _waiting(check, clicks)
        check.close()
        redrawn, seen, last_change = applied, fake.updates(), time.monotonic()
        while time.monotonic() - last_change < QUIET_SECONDS:
            time.sleep(0.05)
            now_seen = fake.updates()
            if now_seen != seen:
                seen, last_change = now_seen, time.monotonic()
                redrawn = last_change - started
            if time.monotonic() > started + PATIENCE_SECONDS:
                break
        return Burst(latencies, applied, redrawn, clicks - waiting, seen - updates_before)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # still busy after a minute: its figures are taken
            server.kill()
            server.wait(timeout=10)


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


def _signed_clicks(
    address: tuple[str, int], reminder_ids: Iterable[int], shown: dict[int, str] | None = None
) -> list[bytes]:
    """Approve clicks as Slack sends them: distinct, freshly signed, ready to write, each with
    the version of the message its card shows (`shown`; without one, as no card carries it)."""
    slack = SlackRequests(f"http://{address[0]}:{address[1]}")
    clicks = []
    for reminder_id in reminder_ids:
        value = str(reminder_id)
        if shown and reminder_id in shown:
            value = approve_value(reminder_id, shown[reminder_id])
        payload = slack.click_payload("approve", value, trigger_id=f"t-{reminder_id}")
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
    """All clicks written at once, one per keep-alive connection opened (and used) beforehand:
    used with a path arbot does not serve (a 404 at once, without the database), so that the
    first connection is not left idle past the server's keep-alive while the others are used."""
    connections = [socket.create_connection(address) for _ in clicks]
    try:
        for connection in connections:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _exchange(connection, _request(address, "GET", "/warm-up"))
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
