"""`arbot import-payments` when Slack cannot be reached: the import stands, the summary says how
many reviews Slack actually got and that the rest are kept for the next sweep, in one line, with
no traceback."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.ledger_files import row

OURS = {"bot", "handlers", "integrations", "scheduler"}

# A Slack out of reach is tried as often as ever, without waiting between the tries.
pytestmark = pytest.mark.usefixtures("slack_retries_at_once")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _two_of_a_hundred(load: Any, tmp_path: Path) -> Path:
    """Acme owes two invoices of 100 and pays 100 without a reference: a person picks."""
    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    load(
        row(invoice_number="INV-1001", balance="100.00", due_date="2026-02-01", **acme),
        row(invoice_number="INV-1002", balance="100.00", due_date="2026-02-05", **acme),
    )
    bank = tmp_path / "bank.csv"
    bank.write_text("date,amount,currency,reference,payer\n2026-03-10,100.00,USD,,Acme Inc\n")
    return bank


def test_reviews_slack_did_not_get_are_said_in_one_line_without_a_traceback(
    cli: Any,
    load: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bank = _two_of_a_hundred(load, tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{_closed_port()}/api/")
    monkeypatch.setenv("ARBOT_FINANCE_CHANNEL", "C0FIN")

    result = cli("import-payments", str(bank))

    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    # what a terminal shows of arbot's logs (slack_sdk's go nowhere): no line, no traceback
    ours = [r for r in caplog.records if r.name.split(".")[0] in OURS]
    assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING or r.exc_info] == []
    assert "1 to review in Slack" not in result.stdout
    [line] = [t for t in result.stdout.splitlines() if "not posted to Slack" in t]
    assert "1 payment(s) to review" in line and "next sweep" in line
    doc = json.loads(cli("import-payments", str(bank), "--json").stdout)
    assert doc["already_imported"] == 1


def test_the_json_summary_counts_the_reviews_slack_got(
    cli: Any, load: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack_api: Any
) -> None:
    bank = _two_of_a_hundred(load, tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", slack_api.url)
    monkeypatch.setenv("ARBOT_FINANCE_CHANNEL", "C0FIN")

    doc = json.loads(cli("import-payments", str(bank), "--json").stdout)

    assert (doc["to_review"], doc["reviews_posted"]) == (1, 1)


def test_an_escalation_slack_did_not_get_is_one_line_without_a_traceback(
    cli: Any,
    load: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    load(row(invoice_number="INV-1001", balance="100.00", due_date="2026-02-01", **acme))
    bank = tmp_path / "over.csv"  # 900 more than INV-1001 owed: the escalation is posted
    bank.write_text(
        "date,amount,currency,reference,payer\n2026-03-10,1000.00,USD,INV-1001,Acme Inc\n"
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{_closed_port()}/api/")
    monkeypatch.setenv("ARBOT_FINANCE_CHANNEL", "C0FIN")

    result = cli("import-payments", str(bank))

    assert result.code == 0, result.stderr
    ours = [r for r in caplog.records if r.name.split(".")[0] in OURS]
    assert [r.getMessage() for r in ours if r.exc_info] == []
    [warning] = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert warning.startswith("escalation") and "not posted" in warning


def test_escalations_slack_cannot_reach_are_tried_once_and_counted_in_one_line(
    cli: Any,
    load: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Five customers each pay 900 beyond their invoice: five escalations, and Slack is down."""
    customers = [f"C{n}" for n in range(1, 6)]
    load(
        *(
            row(customer_id=c, customer_name=f"Firm {c}", invoice_number=f"INV-{c}",
                amount="100.00", balance="100.00", due_date="2026-02-01")
            for c in customers
        )
    )  # fmt: skip
    bank = tmp_path / "over.csv"
    bank.write_text(
        "date,amount,currency,reference,payer\n"
        + "".join(f"2026-03-10,1000.00,USD,INV-{c},Firm {c}\n" for c in customers)
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{_closed_port()}/api/")
    monkeypatch.setenv("ARBOT_FINANCE_CHANNEL", "C0FIN")

    result = cli("import-payments", str(bank))

    assert result.code == 0, result.stderr
    ours = [r for r in caplog.records if r.name.split(".")[0] in OURS]
    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("escalation"), warnings
    [line] = [t for t in result.stdout.splitlines() if "escalation(s) not posted" in t]
    assert line.startswith("5 escalation(s)") and "unreachable" in line and "next sweep" in line


def test_once_an_escalation_finds_slack_out_of_reach_no_review_is_tried(
    cli: Any,
    load: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    load(
        row(invoice_number="INV-1001", balance="100.00", due_date="2026-02-01", **acme),
        row(invoice_number="INV-1002", balance="100.00", due_date="2026-02-05", **acme),
        row(invoice_number="INV-1003", balance="100.00", due_date="2026-02-07", **acme),
    )
    caplog.set_level(logging.INFO)
    bank = tmp_path / "both.csv"  # 900 beyond INV-1001, then 100 that two invoices could take
    bank.write_text(
        "date,amount,currency,reference,payer\n"
        "2026-03-10,1000.00,USD,INV-1001,Acme Inc\n2026-03-11,100.00,USD,,Acme Inc\n"
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{_closed_port()}/api/")
    monkeypatch.setenv("ARBOT_FINANCE_CHANNEL", "C0FIN")

    result = cli("import-payments", str(bank))

    assert result.code == 0, result.stderr
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in OURS]
    assert not [m for m in ours if m.startswith("payment review")], ours
    [line] = [t for t in result.stdout.splitlines() if "payment(s) to review not posted" in t]
    assert line.startswith("1 payment(s)") and "unreachable" in line
    assert any(t.startswith("1 escalation(s) not posted") for t in result.stdout.splitlines())


def test_an_error_after_the_payments_are_stored_leaves_the_summary_and_the_reviews(
    cli: Any,
    load: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack_api: Any,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the second file's notes go to Slack, another process holds the ledger's write lock
    past the busy timeout: the thread's note cannot be claimed. The payments are stored by then,
    so the command still prints its summary, says what was not told, and keeps the review."""
    if not database_url.startswith("sqlite:///"):
        pytest.skip("a write lock held past the busy timeout is SQLite's")
    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    load(
        *(
            row(invoice_number=f"INV-100{n}", balance="100.00", due_date=f"2026-02-0{n}", **acme)
            for n in range(1, 5)
        )
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", slack_api.url)
    monkeypatch.setenv("ARBOT_FINANCE_CHANNEL", "C0FIN")
    header = "date,amount,currency,reference,payer\n"
    first = tmp_path / "first.csv"  # 900 beyond INV-1001: Acme's escalation, posted
    first.write_text(header + "2026-03-10,1000.00,USD,INV-1001,Acme Inc\n")
    assert cli("import-payments", str(first)).code == 0
    second = tmp_path / "second.csv"  # 900 beyond INV-1002 (a note owed), then 100 to place
    second.write_text(
        header + "2026-03-11,1000.00,USD,INV-1002,Acme Inc\n2026-03-11,100.00,USD,,Acme Inc\n"
    )
    holders: list[sqlite3.Connection] = []

    def lock_the_ledger(call: str) -> None:
        if call == "Slack chat.postMessage" and not holders:
            holder = sqlite3.connect(
                database_url.removeprefix("sqlite:///"), isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            holder.execute("BEGIN IMMEDIATE")
            holders.append(holder)

    slack_api.on_call = lock_the_ledger
    # SQLite's busy_timeout, read as each connection opens: a tenth of a second instead of 5 s
    # before the write lock held here is given up on, twice (the thread's note, the review)
    monkeypatch.setattr("bot.core.db.SQLITE_BUSY_TIMEOUT_MS", 100)
    try:
        result = cli("import-payments", str(second))
    finally:
        slack_api.on_call = None
        for holder in holders:
            holder.rollback()
            holder.close()

    assert holders and result.code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "second.csv: 1 payment(s) applied" in result.stdout
    [told] = [t for t in result.stdout.splitlines() if "not fully updated" in t]
    assert "database is locked" in told and "next sweep" in told
    [kept] = [t for t in result.stdout.splitlines() if "to review not posted" in t]
    assert kept.startswith("1 payment(s)") and "database is locked" in kept
    ours = [r for r in caplog.records if r.name.split(".")[0] in OURS]
    assert [r.getMessage() for r in ours if r.exc_info] == []
    doc = json.loads(cli("import-payments", str(second), "--json").stdout)
    assert doc["already_imported"] == 2


def test_a_payment_note_slack_refused_is_posted_in_the_thread_by_the_next_sweep(
    cli: Any,
    load: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack_api: Any,
    database_url: str,
) -> None:
    from bot.core.clock import FixedClock
    from bot.core.runtime import start
    from bot.core.settings import load_settings
    from bot.escalations.sweeps import sweep
    from integrations.slack_chat import SlackChat, web_client
    from tests.conftest import NOW

    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    load(
        row(invoice_number="INV-1001", balance="100.00", due_date="2026-02-01", **acme),
        row(invoice_number="INV-1002", balance="100.00", due_date="2026-02-05", **acme),
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", slack_api.url)
    monkeypatch.setenv("ARBOT_FINANCE_CHANNEL", "C0FIN")
    header = "date,amount,currency,reference,payer\n"
    first = tmp_path / "first.csv"  # 900 beyond INV-1001: Acme's escalation, posted
    first.write_text(header + "2026-03-10,1000.00,USD,INV-1001,Acme Inc\n")
    assert cli("import-payments", str(first)).code == 0
    second = tmp_path / "second.csv"  # INV-1002 paid: its thread is owed a note
    second.write_text(header + "2026-03-11,100.00,USD,INV-1002,Acme Inc\n")
    slack_api.fail_next("chat.postMessage", "ratelimited")

    result = cli("import-payments", str(second))

    assert result.code == 0, result.stderr

    def paid_notes() -> list[dict[str, Any]]:  # in a thread, as Slack took them
        posted = slack_api.messages.values()
        return [m for m in posted if m.get("thread_ts") and "Paid: INV-1002" in json.dumps(m)]

    assert paid_notes() == []
    later = FixedClock(NOW + timedelta(minutes=20))  # past the wait after Slack's refusal
    rt = start(load_settings(env_file=None, database_url=database_url), later, upgrade=False)
    try:
        sweep(rt, SlackChat(web_client("xoxb-test", slack_api.url)))
    finally:
        rt.close()
    assert len(paid_notes()) == 1
