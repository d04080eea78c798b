"""A real `arbot send` process killed (SIGKILL) at random moments while it sends never sends a
reminder twice, and leaves every unfinished one `unknown` for a person: each kill leaves at most
the batch in hand (ARBOT_SEND_BATCH a lane), every one of them claimed and committed `sending`
before its message went out.

The kills come after a random number of this round's messages reached the mail server, not after a
random time: a slow machine must not turn them into kills during start-up, which prove nothing.
CI runs all the rounds; ARBOT_CRASH_ROUNDS=1 makes a quicker local run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.models import Event, Reminder
from bot.core.runtime import Runtime
from tests.support.ledger_files import row, write
from tests.support.slack_requests import PROCESS_PATIENCE
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # `arbot send` processes, killed

REMINDERS = 1000
MOST_PER_ROUND = 100  # a killed round sends 1 to this many first: the last round sends the most
BATCH = 7  # ARBOT_SEND_BATCH: reminders a lane claims at once (not a divisor of the kill points)


def kill_rounds() -> int:
    rounds = int(os.environ.get("ARBOT_CRASH_ROUNDS", "5"))
    if rounds < 1:
        raise ValueError(f"ARBOT_CRASH_ROUNDS={rounds}: at least one kill, or nothing is proven")
    return rounds


def wait_for_messages(server: SmtpServer, count: int, process: subprocess.Popen[bytes]) -> None:
    """Poll until the server holds `count` messages or the process has ended (a bound, not a
    duration: PROCESS_PATIENCE). The messages are counted, not listed: listing their ids at each
    poll read a header of every message so far, a hundred times a second, in the process whose
    mail server thread receives them."""
    deadline = time.monotonic() + PROCESS_PATIENCE
    while len(server.mailbox.messages) < count and process.poll() is None:
        assert time.monotonic() < deadline, f"arbot send made no progress towards {count}"
        time.sleep(0.01)


@pytest.mark.parametrize("lanes", [1, 3])
def test_killing_the_sender_at_random_never_duplicates_and_leaves_unknowns(
    cli: Any, runtime: Runtime, tmp_path: Path, database_url: str, lanes: int
) -> None:
    """With ARBOT_SEND_CONCURRENCY lanes, at most one batch per lane is in doubt at a kill."""
    due = "2026-03-09"
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Customer {n}",
            email=f"ap@c{n}.example",
            phone="",
            sms_consent="false",
            invoice_number=f"I-{n}",
            issue_date="2026-01-01",
            due_date=due,
        )
        for n in range(REMINDERS)
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    assert cli("plan", "--json").code == 0  # not the table of a thousand rows, never read
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.state == "planned")
            .values(state="approved", approved_by="U0APPROVER", approved_at=runtime.clock.now())
        )

    server = SmtpServer().start()
    kills = kill_rounds()
    assert kills * MOST_PER_ROUND < REMINDERS, "too many rounds: a killed one could run dry"
    rng = random.Random(20260316)
    now = runtime.clock.now()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ARBOT_TIMEZONE": "America/New_York",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(server.port),
        "SMTP_STARTTLS": "false",
        "ARBOT_FROM_EMAIL": "ar@b.example",
        "ARBOT_SECRET_KEY": "k",
        "ARBOT_SEND_CONCURRENCY": str(lanes),
        "ARBOT_SEND_BATCH": str(BATCH),
    }
    try:
        for round_number in range(kills + 1):
            # Each run is "later": past the lease, so what a killed run left `sending` is found.
            env["ARBOT_NOW"] = (now + timedelta(minutes=15 * round_number)).isoformat()
            log = tmp_path / f"send-{round_number}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "handlers.cli.main", "send"],
                    env=env,
                    cwd=tmp_path,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            if round_number < kills:
                # Kill it mid-run: after a random number of its messages arrived, wherever it is
                # then (the next message's DATA, its commit, the one after).
                goal = len(server.mailbox.messages) + rng.randint(1, MOST_PER_ROUND)
                wait_for_messages(server, goal, process)
                assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=PROCESS_PATIENCE)
            else:  # the last run sends the rest: up to all of them, on a loaded machine minutes
                code = process.wait(timeout=2 * PROCESS_PATIENCE)
                assert code == 0, log.read_text(encoding="utf-8", errors="replace")
        received = Counter(server.mailbox.message_ids())
    finally:
        server.stop()

    assert received, "nothing was sent at all"
    assert max(received.values()) == 1, "a message went out twice"
    with runtime.sessions() as session:
        reminders = session.execute(select(Reminder.state, Reminder.message_id)).all()
        told = session.scalars(select(Event.reminder_id).where(Event.kind == "reminder.unknown"))
        unknown = session.scalars(select(Reminder.id).where(Reminder.state == "unknown"))
        assert sorted(told) == sorted(unknown)  # each one in doubt is handed to a person
    by_state = Counter(state for state, _ in reminders)
    print("states after the kills:", dict(by_state), "messages:", sum(received.values()))
    assert set(by_state) <= {"sent", "unknown"}, by_state
    assert by_state["unknown"] <= kills * lanes * BATCH  # at most the batches in hand at each kill
    for state, message_id in reminders:
        if state == "sent":
            assert received[message_id] == 1
        else:
            assert received[message_id] <= 1  # it may have gone out before the kill
