"""`arbot send`: approved reminders sent by email through the outbox (claim, re-check, commit
`sending`, send, record) to an SMTP server on loopback in a process of its own, against its floor:
a bare smtplib loop sending as many messages of the same size on one connection.

Between runs the reminders are put back to `approved` (untimed)."""

from __future__ import annotations

from sqlalchemy import update

from benchmarks.books import TODAY, one_invoice_each
from benchmarks.databases import database, open_runtime
from benchmarks.floors import smtplib_loop
from benchmarks.options import Options
from benchmarks.results import PER_SECOND, Result, interleaved
from benchmarks.smtp_sink import SmtpSink
from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.ledger.sample import write_csv
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders.outbox import FlushReport
from bot.reminders.sending import flush
from integrations.csv_ledger import read_ledger_csv
from integrations.email_out import SmtpSender

RATE = 300.0  # emails a second
RATIO = 0.2  # of the bare smtplib loop's rate
LANES = (1, 4)  # ARBOT_SEND_CONCURRENCY: one connection, then four side by side


def _approved_day(runtime: Runtime, options: Options) -> None:
    rows = one_invoice_each(options.emails, 7)
    path = write_csv(options.folder / f"send-{options.emails}.csv", rows)
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(path), runtime.clock.now())
    with runtime.writing() as session:
        rules = PlanRules.from_settings(runtime.settings)
        run_plan(session, rules, TODAY, runtime.clock.now(), dry_run=False)
        session.execute(update(Reminder).values(state="approved", approved_by="bench"))


def _approve_again(runtime: Runtime) -> None:
    with runtime.writing() as session:
        session.execute(
            update(Reminder).values(
                state="approved",
                attempts=0,
                sent_at=None,
                message_id=None,
                provider_message_id=None,
                reply_token=None,
                error=None,
            )
        )


def measure(kind: str, options: Options, lanes: int) -> list[Result]:
    reports: list[FlushReport] = []
    received: list[int] = []
    with SmtpSink() as sink, database(kind, options.folder, "send") as url:
        runtime = open_runtime(
            url, from_email="ar@bench.example", secret_key="bench", send_concurrency=lanes
        )
        try:
            _approved_day(runtime, options)

            def send() -> None:
                sink.clear()
                sender = SmtpSender("127.0.0.1", sink.port, None, None, False)
                reports.append(flush(runtime, {"email": sender}))
                received.append(sink.count())

            send()  # one untimed run: a message to copy for the floor
            sample = sink.sample()
            messages = [
                ("bounce@bench.example", f"ap@c{n}.example", sample) for n in range(options.emails)
            ]
            seconds, floor_seconds = interleaved(
                options.runs,
                send,
                lambda: smtplib_loop(sink.port, messages),
                before=lambda: _approve_again(runtime),
            )
        finally:
            runtime.close()
    assert all(len(r.sent) == options.emails for r in reports), "not every email was sent"
    assert set(received) == {options.emails}, f"the server received {received}"
    return [
        Result(
            f"send {options.emails:,} emails, {lanes} lane{'s' if lanes > 1 else ''}",
            kind,
            f"{options.emails:,} emails, loopback SMTP",
            options.emails / seconds,
            unit=PER_SECOND,
            floor=options.emails / floor_seconds,
            floor_name="smtplib loop",
            ratio_target=RATIO,
            target=RATE,
            note=f"{len(sample):,} bytes a message; each sent exactly once in every run.",
        )
    ]


def run(options: Options) -> list[Result]:
    return [
        r for kind in options.databases for lanes in LANES for r in measure(kind, options, lanes)
    ]
