"""A real `arbot send` process killed (SIGKILL) at random moments never sends a reminder twice,
and leaves every unfinished one `unknown` for a person."""

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

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from tests.support.ledger_files import row, write
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # `arbot send` processes, killed

REMINDERS = 1000
KILLS = 5


def test_killing_the_sender_at_random_never_duplicates_and_leaves_unknowns(
    cli: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
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
    assert cli("plan").code == 0
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.state == "planned")
            .values(state="approved", approved_by="U0APPROVER", approved_at=runtime.clock.now())
        )

    server = SmtpServer().start()
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
    }
    try:
        for round_number in range(KILLS + 1):
            # Each run is "later": past the lease, so what a killed run left `sending` is found.
            env["ARBOT_NOW"] = (now + timedelta(minutes=15 * round_number)).isoformat()
            process = subprocess.Popen(
                [sys.executable, "-m", "handlers.cli.main", "send"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if round_number < KILLS:
                deadline = time.monotonic() + rng.uniform(1.0, 4.0)
                while time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.01)
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=120)
        received = Counter(server.mailbox.message_ids())
    finally:
        server.stop()

    assert received, "nothing was sent at all"
    assert max(received.values()) == 1, "a message went out twice"
    with runtime.sessions() as session:
        reminders = session.execute(select(Reminder.state, Reminder.message_id)).all()
    by_state = Counter(state for state, _ in reminders)
    print("states after the kills:", dict(by_state), "messages:", sum(received.values()))
    assert set(by_state) <= {"sent", "unknown"}, by_state
    assert by_state["unknown"] <= KILLS  # at most the one in flight at each kill
    for state, message_id in reminders:
        if state == "sent":
            assert received[message_id] == 1
        else:
            assert received[message_id] <= 1  # it may have gone out before the kill
