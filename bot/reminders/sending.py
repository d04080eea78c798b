"""The send worker's loop: recover, claim a batch, then for each claimed reminder commit `sending`
right before its send, on one connection per channel. Each result is committed with the next
reminder's `sending` (one transaction a message), the last one alone: at any moment at most one
message has been handed over without its result stored, so a crash leaves at most that one for a
person to check (`unknown`). With ARBOT_SEND_CONCURRENCY above 1, that many lanes send a batch
side by side, each on connections of its own (a sender that cannot open another keeps one lane),
and a crash leaves at most one such message per lane. `arbot send` runs it once; `arbot serve`
every minute."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from queue import Empty, SimpleQueue
from typing import Protocol, runtime_checkable

from sqlalchemy import func, select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import CHANNELS
from bot.reminders.attaching import Refusal, gather, hold
from bot.reminders.outbox import (
    BATCH,
    Claimed,
    FlushReport,
    SendConfig,
    claim,
    config_from,
    recover,
    start_sending,
)
from bot.reminders.results import Handed, record
from integrations.base.documents import CopyFetchers
from integrations.base.outbound import Attachment, Sender


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
    email that cannot carry them is held (bot/reminders/attaching.py), never sent without."""
    handed: Handed | None = None
    for claimed in batch:
        files: tuple[Attachment, ...] | Refusal = ()
        if claimed.attach:
            if handed is not None:
                with runtime.writing() as session:
                    record(session, handed, report)
                handed = None
            if report.outage or (stop is not None and stop.is_set()):
                break
            files = gather(runtime, claimed, copies)
        with runtime.writing() as session:
            if handed is not None:
                record(session, handed, report)
                handed = None
            if report.outage or (stop is not None and stop.is_set()):
                # the account failed: what is left stays approved, untouched
                break
            if isinstance(files, Refusal):
                hold(session, claimed, files, runtime.clock.now(), report)
                continue
            outgoing = start_sending(session, claimed, runtime.clock.now(), config.window, report)
        if outgoing is None:
            continue
        if files:
            outgoing = replace(outgoing, attachments=files)
        delivery = senders[outgoing.channel].send(outgoing)
        if delivery.status == "outage" and stop is not None:
            stop.set()  # the other lanes stop before their next message
        handed = Handed(claimed, outgoing, delivery, runtime.clock.now())
    if handed is not None:
        with runtime.writing() as session:
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
