"""The send worker's loop: recover, claim a batch, then for each claimed reminder commit `sending`
right before its send, on one connection per channel. Each result is committed with the next
reminder's `sending` (one transaction a message), the last one alone: at any moment at most one
message has been handed over without its result stored, so a crash leaves at most that one for a
person to check (`unknown`). With ARBOT_SEND_CONCURRENCY above 1, that many lanes send a batch
side by side, each on connections of its own (a sender that cannot open another keeps one lane),
and a crash leaves at most one such message per lane. `arbot send` runs it once; `arbot serve`
every minute."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from queue import Empty, SimpleQueue
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from bot.core.db import WRITING
from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import CHANNELS
from bot.reminders.attaching import Refusal, gather, hold
from bot.reminders.one_trip import sent_then_sending
from bot.reminders.outbox import (
    BATCH,
    Claimed,
    FlushReport,
    SendConfig,
    claim,
    config_from,
    in_window,
    recover,
    start_sending,
)
from bot.reminders.results import Handed, record
from integrations.base.documents import CopyFetchers
from integrations.base.outbound import Attachment, Outgoing, Sender

log = logging.getLogger(__name__)


@runtime_checkable
class Parallel(Protocol):
    """A sender that can open another one like itself, on a connection of its own."""

    def another(self) -> Sender: ...


def flush(
    runtime: Runtime, senders: dict[str, Sender], copies: CopyFetchers | None = None
) -> FlushReport:
    """Send what is due. `copies` fetches the copies of invoices that emails carry
    (bot/reminders/attaching.py); without it, a reminder that is to carry one is not sent."""
    config = config_from(runtime.settings)
    report = FlushReport()
    now = runtime.clock.now()
    with runtime.writing() as session:
        report.unknown = recover(session, now)
    channels = set(senders)
    with ExitStack() as stack:
        lanes = _lanes(stack, senders, runtime.settings.send_concurrency)
        while not report.outage:  # an account problem stops the run before the next claim
            now = runtime.clock.now()
            with runtime.writing() as session:
                batch, examined = claim(session, now, config, report, channels, BATCH * len(lanes))
            if examined == 0:
                break
            if len(lanes) == 1:
                _send(runtime, iter(batch), lanes[0], config, report, copies)
            else:
                _send_side_by_side(runtime, batch, lanes, config, report, copies)
    missing = [c for c in CHANNELS if c not in senders]
    if missing:
        with runtime.sessions() as session:
            report.waiting_for_sender = list(
                session.scalars(
                    select(Reminder.id).where(
                        Reminder.state == "approved",
                        Reminder.channel.in_(missing),
                        Reminder.send_after <= now,
                    )
                )
            )
    return report


def _lanes(
    stack: ExitStack, senders: dict[str, Sender], concurrency: int
) -> list[dict[str, Sender]]:
    """The senders of each lane, opened: the first lane uses `senders`, each other one a copy."""
    lanes = [{channel: stack.enter_context(sender) for channel, sender in senders.items()}]
    copyable = {c: sender for c, sender in senders.items() if isinstance(sender, Parallel)}
    if len(copyable) == len(senders):
        for _ in range(concurrency - 1):
            lanes.append({c: stack.enter_context(s.another()) for c, s in copyable.items()})
    return lanes


def _send(
    runtime: Runtime,
    batch: Iterator[Claimed],
    senders: dict[str, Sender],
    config: SendConfig,
    report: FlushReport,
    copies: CopyFetchers | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Send claimed reminders one message at a time, each at its own time (windows and leases
    hold for each): the previous result and this reminder's `sending` in one commit, then its
    send. `stop` (set by another lane's outage) ends it before its next `sending`. Copies of
    invoices an email carries are gathered first, with no transaction open (the previous
    result is stored before, so no message waits on a fetch with its result unstored); an
    email that cannot carry them is held (bot/reminders/attaching.py), never sent without.
    The lane holds its connections for the batch (no pool checkout, no ping, per message)."""
    with _Connections(runtime) as lane:
        _send_on(lane, batch, senders, config, report, copies, stop)


class _Connections:
    """A lane's connections for one batch: one for the general step, and on PostgreSQL one in
    autocommit for the one-statement step (bot/reminders/one_trip.py)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.general: Connection | None = None
        self.one_trip: Connection | None = None
        self.postgresql = runtime.engine.dialect.name == "postgresql"

    def __enter__(self) -> _Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        for connection in (self.general, self.one_trip):
            if connection is not None:
                connection.close()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A transaction, like runtime.writing(), on the lane's connection."""
        if self.general is None or self.general.invalidated:
            if self.general is not None:
                self.general.close()
            self.general = self.runtime.engine.connect().execution_options(**{WRITING: True})
        with Session(bind=self.general, expire_on_commit=False) as session, session.begin():
            yield session

    def autocommit(self) -> Connection:
        if self.one_trip is None or self.one_trip.invalidated:
            if self.one_trip is not None:
                self.one_trip.close()
            self.one_trip = self.runtime.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return self.one_trip


def _send_on(
    lane: _Connections,
    batch: Iterator[Claimed],
    senders: dict[str, Sender],
    config: SendConfig,
    report: FlushReport,
    copies: CopyFetchers | None,
    stop: threading.Event | None,
) -> None:
    runtime = lane.runtime
    handed: Handed | None = None
    for claimed in batch:
        files: tuple[Attachment, ...] | Refusal = ()
        if handed is not None and (claimed.attach or handed.delivery.status != "sent"):
            # stored first: before a fetch of copies, or a result that may stop the run
            with lane.writing() as session:
                record(session, handed, report)
            handed = None
        if report.outage or (stop is not None and stop.is_set()):
            break  # the account failed: what is left stays approved, untouched
        if claimed.attach:
            files = gather(runtime, claimed, copies)
        now = runtime.clock.now()
        outgoing: Outgoing | None
        if (
            lane.postgresql
            and not isinstance(files, Refusal)
            and in_window(claimed, now, config.window)
        ):
            stored, outgoing = sent_then_sending(lane.autocommit(), handed, claimed, now)
            if handed is not None:
                if stored:
                    report.sent.append(handed.claimed.reminder_id)
                else:
                    log.warning(
                        "reminder %s was no longer sending when it was sent",
                        handed.claimed.reminder_id,
                    )
                handed = None
        else:
            with lane.writing() as session:
                if handed is not None:
                    record(session, handed, report)
                    handed = None
                if isinstance(files, Refusal):
                    hold(session, claimed, files, now, report)
                    continue
                outgoing = start_sending(session, claimed, now, config.window, report)
        if outgoing is None:
            continue
        if files:
            outgoing = replace(outgoing, attachments=files)
        delivery = senders[outgoing.channel].send(outgoing)
        if delivery.status == "outage" and stop is not None:
            stop.set()  # the other lanes stop before their next message
        handed = Handed(claimed, outgoing, delivery, runtime.clock.now())
    if handed is not None:
        with lane.writing() as session:
            record(session, handed, report)


class _Shared(Iterator[Claimed]):
    """A batch the lanes take reminders from, one at a time, in order."""

    def __init__(self, batch: list[Claimed]) -> None:
        self.queue: SimpleQueue[Claimed] = SimpleQueue()
        for claimed in batch:
            self.queue.put(claimed)

    def __next__(self) -> Claimed:
        try:
            return self.queue.get_nowait()
        except Empty:
            raise StopIteration from None


@dataclass
class _Lane:
    senders: dict[str, Sender]
    report: FlushReport = field(default_factory=FlushReport)
    error: BaseException | None = None


def _send_side_by_side(
    runtime: Runtime,
    batch: list[Claimed],
    lanes: list[dict[str, Sender]],
    config: SendConfig,
    report: FlushReport,
    copies: CopyFetchers | None = None,
) -> None:
    shared, stop = _Shared(batch), threading.Event()
    runs = [_Lane(senders) for senders in lanes]

    def run(lane: _Lane) -> None:
        try:
            _send(runtime, shared, lane.senders, config, lane.report, copies, stop)
        except BaseException as exc:  # raised again below, in the worker's own thread
            lane.error = exc
            stop.set()

    threads = [threading.Thread(target=run, args=(lane,), name="send-lane") for lane in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for lane in runs:
        _merge(report, lane.report)
    for lane in runs:
        if lane.error is not None:
            raise lane.error


def _merge(report: FlushReport, lane: FlushReport) -> None:
    report.sent += lane.sent
    report.cancelled.update(lane.cancelled)
    report.rescheduled += lane.rescheduled
    report.retrying += lane.retrying
    report.failed += lane.failed
    report.unknown += lane.unknown
    report.outage = report.outage or lane.outage
    report.not_sent.update(lane.not_sent)


def backlog(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).where(Reminder.state == "approved")) or 0
