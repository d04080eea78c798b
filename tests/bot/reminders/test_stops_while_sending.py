"""A stop asked for while a reminder is already `sending` (a payment, reply, pause or dispute that
cancels the customer's waiting reminders) is never lost: every way back to `approved` (the window
closed, the batch late, the lane stopped, a transient error, an outage, a copy to fetch later)
cancels it with that reason instead, and a crash keeps it in what a person is told."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock
from bot.core.models import Escalation, Event, Reminder, ReminderAttachment
from bot.core.runtime import Runtime
from bot.ledger.accounts import cancel_waiting
from bot.reminders import state
from bot.reminders.outbox import FlushReport
from bot.reminders.results import SENT_AFTER_STOP
from integrations.base.outbound import Delivery, Outgoing
from tests.bot.reminders.test_outbox import _sender_env, approved, mail_env, smtp, states
from tests.support.slack_requests import wait_for

__all__ = ["mail_env", "smtp"]  # fixtures


class Sender:
    """A sender that runs `meanwhile` with each message handed over and answers what it says."""

    def __init__(self, meanwhile: Callable[[Outgoing, int], Delivery]) -> None:
        self.meanwhile = meanwhile
        self.handed: list[int] = []

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: Outgoing) -> Delivery:
        self.handed.append(message.reminder_id)
        return self.meanwhile(message, len(self.handed))


def stop(runtime: Runtime, customer_id: int, reason: str) -> None:
    with runtime.writing() as session:
        cancel_waiting(session, customer_id, reason, runtime.clock.now())


def cancelled_events(runtime: Runtime) -> dict[int, Any]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(Event.reminder_id, Event.payload).where(Event.kind == "reminder.cancelled")
        ).all()
    return {reminder_id: payload for reminder_id, payload in rows}


def flush_with(runtime: Runtime, database_url: str, sender: Sender, **worker: Any) -> FlushReport:
    from bot.reminders.sending import flush

    env = _sender_env(runtime, database_url)
    for name, value in worker.items():
        setattr(env, name, value)
    try:
        return flush(env, {"email": sender})
    finally:
        env.close()


def assert_stopped(runtime: Runtime, report: FlushReport, reminder_id: int, reason: str) -> None:
    assert report.cancelled.get(reminder_id) == reason
    assert states(runtime)[reminder_id] == "cancelled"
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
    assert reminder is not None and reminder.cancel_reason == reason
    assert cancelled_events(runtime)[reminder_id] == {"reason": reason}


def test_a_reply_while_the_window_closes_cancels_instead_of_waiting_for_the_morning(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Six Chicago customers, five minutes a send from 16:40: customer 6 replies during the
    first; at 17:00 the window has closed, and reminder 6 is cancelled, not put off."""
    approved(mail_env, runtime, tmp_path, customers=6)
    clock = FixedClock(datetime(2026, 3, 16, 21, 40, tzinfo=UTC))  # 16:40 in Chicago (CDT)
    with runtime.writing() as session:
        session.execute(update(Reminder).values(send_after=clock.now()))

    def slow(message: Outgoing, count: int) -> Delivery:
        if count == 1:
            stop(runtime, 6, "replied")
        clock.advance(timedelta(minutes=5))
        return Delivery("sent", provider_id=f"p-{message.reminder_id}")

    sender = Sender(slow)
    report = flush_with(runtime, database_url, sender, clock=clock)
    assert sender.handed == [1, 2, 3, 4]
    assert report.rescheduled == [5]
    assert_stopped(runtime, report, 6, "replied")
    assert states(runtime)[5] == "approved"


def test_a_payment_while_the_batch_runs_late_cancels_instead_of_putting_back(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The first send takes longer than a batch may: the rest go back to `approved`, except the
    one whose customer paid meanwhile."""
    from bot.reminders.outbox import TURNS_END

    approved(mail_env, runtime, tmp_path, customers=3)
    clock = FixedClock(runtime.clock.now())

    def late(message: Outgoing, count: int) -> Delivery:
        stop(runtime, 2, "paid")
        clock.advance(TURNS_END + timedelta(minutes=1))
        return Delivery("sent", provider_id=f"p-{message.reminder_id}")

    sender = Sender(late)
    report = flush_with(runtime, database_url, sender, clock=clock)
    assert sender.handed == [1, 3]  # 3 went back, and the next claim sent it
    assert_stopped(runtime, report, 2, "paid")


def test_a_stop_during_an_outage_of_the_account_cancels_the_ones_left_and_the_one_in_hand(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The account fails on the first message: it and the two never handed over go back as they
    were, except those whose customers replied meanwhile."""
    approved(mail_env, runtime, tmp_path, customers=3)

    def outage(message: Outgoing, count: int) -> Delivery:
        stop(runtime, 1, "replied")
        stop(runtime, 3, "disputed")
        return Delivery("outage", error="SMTP login refused: 535")

    report = flush_with(runtime, database_url, Sender(outage))
    assert report.outage == "SMTP login refused: 535"
    assert_stopped(runtime, report, 1, "replied")
    assert_stopped(runtime, report, 3, "disputed")
    assert states(runtime)[2] == "approved"


def test_a_stop_during_a_transient_error_cancels_instead_of_retrying(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    approved(mail_env, runtime, tmp_path, customers=2)

    def transient(message: Outgoing, count: int) -> Delivery:
        if message.reminder_id == 1:
            stop(runtime, 1, "paused")
            return Delivery("transient", error="451 try again later")
        return Delivery("sent", provider_id="p-2")

    report = flush_with(runtime, database_url, Sender(transient))
    assert report.retrying == [] and report.sent == [2]
    assert_stopped(runtime, report, 1, "paused")
    with runtime.sessions() as session:
        told = session.scalars(select(Event.kind).where(Event.reminder_id == 1)).all()
    assert "reminder.retrying" not in told


def paid_while_its_copy_is_asked(
    mail_env: Any,
    runtime: Runtime,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    refused: str,
    again: bool,
) -> tuple[Sender, FlushReport]:
    """One approved reminder carrying its invoice's copy, sent while the copy cannot be had
    (`refused`; worth another try later when `again`) and its customer pays as it is asked."""
    from bot.reminders import sending
    from bot.reminders.attaching import NO_COPY, Refusal

    approved(mail_env, runtime, tmp_path, customers=1)
    with runtime.writing() as session:
        session.add(ReminderAttachment(reminder_id=1, invoice_id=1))

    def refusing(*args: Any) -> Refusal:
        stop(runtime, 1, "paid")
        return Refusal(NO_COPY, refused, again)

    monkeypatch.setattr(sending, "gather", refusing)
    sender = Sender(lambda message, count: Delivery("sent", provider_id="p"))
    return sender, flush_with(runtime, database_url, sender)


def test_a_stop_while_a_copy_is_fetched_cancels_instead_of_retrying_later(
    mail_env: Any,
    runtime: Runtime,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The source of the invoice's copy is down (worth another try later); the customer paid
    while it was asked."""
    sender, report = paid_while_its_copy_is_asked(
        mail_env, runtime, tmp_path, database_url, monkeypatch, "the source answered 503", True
    )
    assert sender.handed == [] and report.retrying == []
    assert_stopped(runtime, report, 1, "paid")


def test_a_stop_while_a_copy_cannot_be_had_keeps_its_reason_and_opens_no_escalation(
    mail_env: Any,
    runtime: Runtime,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The invoice's copy cannot be had (no other try); the customer paid while it was asked.
    The reminder is cancelled as paid, not as missing its copy, and nobody is sent to find a
    copy of an invoice that is paid."""
    sender, report = paid_while_its_copy_is_asked(
        mail_env,
        runtime,
        tmp_path,
        database_url,
        monkeypatch,
        "no such invoice at the source",
        False,
    )
    assert sender.handed == [] and report.not_sent == {}
    assert_stopped(runtime, report, 1, "paid")
    with runtime.sessions() as session:
        assert session.scalars(select(Escalation)).all() == []
        reminder = session.get(Reminder, 1)
    assert reminder is not None and reminder.error is None


def test_a_stop_asked_before_a_crash_is_kept_and_told_with_the_unknown_reminder(
    mail_env: Any,
    runtime: Runtime,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker died with reminder 2 `sending`; customer 2 paid before it was found: it is
    `unknown`, its Event keeps the stop, and the finance channel is told."""
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    approved(mail_env, runtime, tmp_path, customers=2)
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.id == 2)
            .values(state="sending", updated_at=runtime.clock.now() - timedelta(hours=1))
        )
    stop(runtime, 2, "paid")
    assert mail_env("send").code == 0
    assert states(runtime) == {1: "sent", 2: "unknown"}
    with runtime.sessions() as session:
        payloads = session.scalars(
            select(Event.payload).where(Event.kind == "reminder.unknown", Event.reminder_id == 2)
        ).all()
    assert payloads == [{"stop": "paid"}]
    texts = [c.get("text", "") for c in slack_api.calls("chat.postMessage")]
    assert sum("may or may not" in text for text in texts) == 1
    told = [text for text in texts if "a stop was asked" in text]
    assert told == [
        "Reminder 2: a stop was asked (paid) after it was claimed; it was probably not handed over."
    ]
    cards = [json.dumps(message["blocks"]) for message in slack_api.messages.values()]
    card = next(one for one in cards if "(C-2," in one)
    assert "Unknown: check whether it went out" in card
    assert "a stop was asked (paid) after it was claimed" in card


def test_a_payment_while_the_provider_has_the_message_leaves_it_sent_and_tells_a_person(
    mail_env: Any,
    runtime: Runtime,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Customer 1 pays while the mail server holds reminder 1: it went out and cannot be
    unsent, so it is `sent`, its Event keeps the stop, customer 1's escalation says it went out
    after the payment, the finance channel is told, and its card says so. Reminder 2, with no stop, is only sent."""
    from integrations.email_out import SmtpSender

    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    approved(mail_env, runtime, tmp_path, customers=2)

    def pays_meanwhile(self: SmtpSender, message: Outgoing) -> Delivery:
        if message.reminder_id == 1:
            stop(runtime, 1, "paid")  # the payment commits while the server has the message
        return Delivery("sent", provider_id=f"p-{message.reminder_id}")

    monkeypatch.setattr(SmtpSender, "send", pays_meanwhile)
    assert mail_env("send").code == 0
    assert states(runtime) == {1: "sent", 2: "sent"}
    with runtime.sessions() as session:
        told = session.execute(
            select(Event.reminder_id, Event.payload).where(Event.kind == "reminder.sent_after_stop")
        ).all()
        [escalation] = session.scalars(select(Escalation)).all()
    assert told == [(1, {"stop": "paid", "channel": "email"})]
    assert (escalation.customer_id, escalation.reminder_id) == (1, 1)
    assert escalation.reason == SENT_AFTER_STOP
    assert escalation.detail == (
        "reminder 1 went out after a stop was asked (paid): the provider already had it when "
        "the stop came, so it was not stopped. Check whether to apologise or put it right with "
        "Reply."
    )
    texts = [c.get("text", "") for c in slack_api.calls("chat.postMessage")]
    assert [text for text in texts if "after a stop was asked" in text] == [
        "Reminder 1 went out after a stop was asked (paid): the provider already had it. It is "
        "in its customer's escalation, for a person."
    ]
    cards = [json.dumps(message["blocks"]) for message in slack_api.messages.values()]
    card = next(one for one in cards if "(C-1," in one)
    assert "it went out after a stop was asked (paid); a person has it in the" in card
    assert card.count("a stop was asked") == 1  # customer 2's reminder only went out


def _claim_now(env: Runtime) -> list[Any]:
    from bot.reminders.outbox import claim, config_from

    with env.writing() as session:
        batch, _ = claim(
            session, env.clock.now(), config_from(env.settings), FlushReport(), {"email"}
        )
    return batch


def test_an_older_claim_does_not_send_a_reminder_put_back_to_wait_for_its_retry(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Lane B claimed reminder 1; lane A, from a claim of its own, met a transient error and put
    it back to wait: B's older claim moves nothing, and nothing goes out before the wait."""
    from bot.reminders.outbox import start_sending

    approved(mail_env, runtime, tmp_path, customers=1)
    env = _sender_env(runtime, database_url)
    env.clock = FixedClock(runtime.clock.now() + timedelta(minutes=1))
    older = _claim_now(env)
    assert [one.reminder_id for one in older] == [1]
    sender = Sender(lambda message, count: Delivery("transient", error="451 later"))
    report = flush_with(runtime, database_url, sender, clock=env.clock)
    assert report.retrying == [1] and states(runtime) == {1: "approved"}
    with env.writing() as session:
        assert start_sending(session, older, env.clock.now()) == []
    env.close()
    assert states(runtime) == {1: "approved"}
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
    assert reminder is not None and reminder.send_after is not None
    assert reminder.send_after > env.clock.now() and reminder.attempts == 1


def test_a_reminder_undone_edited_and_approved_again_after_its_claim_goes_out_as_edited(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    from bot.reminders import state
    from bot.reminders.outbox import start_sending

    approved(mail_env, runtime, tmp_path, customers=1)
    env = _sender_env(runtime, database_url)
    older = _claim_now(env)
    later = runtime.clock.now() + timedelta(minutes=1)
    with runtime.writing() as session:
        state.transition(
            session, [1], from_states=(state.APPROVED,), to=state.PLANNED, now=later, events=[]
        )
        session.execute(update(Reminder).values(body_text="Edited text.\n"))
        state.transition(
            session, [1], from_states=(state.PLANNED,), to=state.APPROVED, now=later, events=[]
        )
    with env.writing() as session:
        assert start_sending(session, older, later) == []
    env.close()
    assert states(runtime) == {1: "approved"}
    texts: list[str] = []

    def keep(message: Outgoing, count: int) -> Delivery:
        texts.append(message.text or "")
        return Delivery("sent", provider_id="p")

    report = flush_with(runtime, database_url, Sender(keep), clock=FixedClock(later))
    assert report.sent == [1] and texts == ["Edited text.\n"]


def meanwhile(
    pool: ThreadPoolExecutor, env: Runtime, work: Callable[[Session], Any]
) -> Future[Any]:
    """Run `work` in a transaction of its own on `env`, in `pool`'s thread, and return when it
    has committed or waits for a row another transaction holds (PostgreSQL's pg_blocking_pids)."""
    backend: list[int] = []

    def run() -> Any:
        with env.writing() as session:
            backend.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            return work(session)

    def waits() -> bool:
        with env.engine.connect() as probe:
            blockers = probe.execute(
                text("SELECT pg_blocking_pids(:pid)"), {"pid": backend[0]}
            ).scalar_one()
        return bool(blockers)

    done = pool.submit(run)
    wait_for(lambda: done.done() or (backend and waits()))
    return done


@contextmanager
def after_first_update(
    env: Runtime, then: Callable[[], None], table: str = "reminders"
) -> Iterator[None]:
    """Within the block, `then` is called once, right after `env`'s first UPDATE of `table`."""
    fired: list[bool] = []

    def listener(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if not fired and statement.startswith(f"UPDATE {table}"):
            fired.append(True)
            then()

    event.listen(env.engine, "after_cursor_execute", listener)
    try:
        yield
    finally:
        event.remove(env.engine, "after_cursor_execute", listener)
    assert fired


@pytest.mark.postgres
def test_a_reply_while_the_worker_puts_a_held_reminder_back_cancels_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Reminder 1 is `sending`, held at its turn; customer 1 replies, and the worker puts the
    reminder back to `approved` right after the cancel's first statement: it waits for the
    reply, then cancels the reminder, and the next run sends nothing."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writing transactions run one at a time (BEGIN IMMEDIATE)")
    approved(mail_env, runtime, tmp_path, customers=1)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
    worker = _sender_env(runtime, database_url)
    settled: list[Future[Any]] = []

    def settle() -> None:
        back = meanwhile(pool, worker, lambda s: state.back_to_approved(s, [1], now=now, events=[]))
        settled.append(back)

    with ThreadPoolExecutor(1) as pool, after_first_update(runtime, settle):
        stop(runtime, 1, "replied")
    worker.close()
    assert settled[0].result() == ([], {1: "replied"})
    assert states(runtime) == {1: "cancelled"}
    assert cancelled_events(runtime) == {1: {"reason": "replied"}}
    sender = Sender(lambda message, count: Delivery("sent", provider_id="p"))
    assert flush_with(runtime, database_url, sender).sent == []


@pytest.mark.postgres
def test_a_reply_between_the_workers_two_statements_putting_a_reminder_back_cancels_it(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The other way round: customer 1 replies right after the first statement of the worker's
    move of reminder 1 back to `approved`: the reply waits for it, then cancels the reminder,
    which does not stay `sending` for a person to find after its lease."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writing transactions run one at a time (BEGIN IMMEDIATE)")
    approved(mail_env, runtime, tmp_path, customers=1)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="sending", updated_at=now))
    worker = _sender_env(runtime, database_url)
    replies: list[Future[Any]] = []

    def reply() -> None:
        replies.append(meanwhile(pool, runtime, lambda s: cancel_waiting(s, 1, "replied", now)))

    with (
        ThreadPoolExecutor(1) as pool,
        after_first_update(worker, reply),
        worker.writing() as session,
    ):
        state.back_to_approved(session, [1], now=now, events=[])
    worker.close()
    replies[0].result()
    assert states(runtime) == {1: "cancelled"}
    assert cancelled_events(runtime) == {1: {"reason": "replied"}}
