"""The send worker's loop: recover, claim a batch (bot/reminders/outbox.py), then a few of its
reminders at a time (ARBOT_SEND_BATCH): move them to `sending` in one commit, with the results of
the few before, and hand each to its provider in turn. Every message's `sending` is committed
before its provider is called, so nothing is ever sent twice; what a crash costs is the few in
hand: they are left `sending`, and each becomes `unknown` for a person to check (at most
ARBOT_SEND_BATCH a lane, sent or not). Right before its send each is checked again, with one read
and no commit (bot/reminders/turns.py): a payment, reply, pause, dispute or opt-out since stops
it, and so does its contact's window closing. With ARBOT_SEND_CONCURRENCY above 1, that many lanes
share a batch, each on connections of its own (a sender that cannot open another is shared by the
lanes, one message at a time).
`arbot send` runs it once; `arbot serve` every minute. One commit for a few messages rather than
one a message: on PostgreSQL each commit waits for its write-ahead log to reach the disk."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from queue import Empty, SimpleQueue
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from bot.core.db import WRITING
from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import CHANNELS
from bot.reminders.attaching import Refusal, gather, hold
from bot.reminders.outbox import (
    BATCH,
    TURNS_END,
    Claimed,
    FlushReport,
    SendConfig,
    claim,
    config_from,
    recover,
    start_sending,
)
from bot.reminders.results import Handed, refuses_our_mail
from bot.reminders.turns import Turns, check, settle
from integrations.base.documents import CopyFetchers
from integrations.base.outbound import (
    Attachment,
    Delivery,
    Outgoing,
    RemembersRefusal,
    Sender,
)

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
        recovered = recover(session, now)
    report.unknown = list(recovered)
    report.stopped_unknown = {one: stop for one, stop in recovered.items() if stop}
    stops = _Stops(set(senders))
    with runtime.sessions() as session:  # an outage that lasts is not one message's to fail
        for channel, sender in senders.items():
            stopped = refuses_our_mail(session, channel)
            if isinstance(sender, RemembersRefusal) and stopped is not None:
                sender.refused_before(stopped.stopped_at, stopped.again)
    with ExitStack() as stack:
        lanes = _lanes(stack, senders, runtime.settings.send_concurrency)
        while stops.going():  # an account problem stops its channel before the next claim
            now = runtime.clock.now()
            with runtime.writing() as session:
                batch, examined = claim(
                    session, now, config, report, stops.going(), BATCH * len(lanes)
                )
            if examined == 0:
                break
            if len(lanes) == 1:
                _send(runtime, iter(batch), lanes[0], config, report, copies, stops)
            else:
                _send_side_by_side(runtime, batch, lanes, config, report, copies, stops)
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
    """The senders of each lane, opened: the first lane uses `senders`, each other one a copy.
    A sender that cannot open another is shared by the lanes, one message at a time, so the
    other channels still go side by side; when none can, there is one lane."""
    opened = {channel: stack.enter_context(sender) for channel, sender in senders.items()}
    shared: dict[str, Sender] = {
        channel: _OneAtATime(opened[channel])
        for channel, sender in senders.items()
        if not isinstance(sender, Parallel)
    }
    if concurrency == 1 or len(shared) == len(senders):
        return [opened]
    lanes: list[dict[str, Sender]] = [{**opened, **shared}]
    for _ in range(concurrency - 1):
        lanes.append(
            {
                channel: shared.get(channel) or stack.enter_context(_another(sender))
                for channel, sender in senders.items()
            }
        )
    return lanes


def _another(sender: Sender) -> Sender:
    assert isinstance(sender, Parallel)
    return sender.another()


class _OneAtATime:
    """A sender the lanes share: it takes one message at a time (its one connection)."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.lock = threading.Lock()

    def __enter__(self) -> _OneAtATime:
        return self

    def __exit__(self, *exc: object) -> None:
        return None  # the sender itself is closed with the run

    def send(self, message: Outgoing) -> Delivery:
        with self.lock:
            return self.sender.send(message)


class _Stops:
    """What stops the handing over, shared by the lanes of a run: an outage of a channel's
    account stops that channel (its reminders wait, untouched, for a later run; the other
    channels go on), and a lane that failed stops them all."""

    def __init__(self, channels: set[str]) -> None:
        self.channels = frozenset(channels)
        self.stopped: frozenset[str] = frozenset()  # replaced whole: read by the other lanes
        self.failed = threading.Event()

    def stop(self, channel: str) -> None:
        self.stopped = self.stopped | {channel}

    def going(self) -> set[str]:
        """The channels still sending (none once a lane failed)."""
        return set() if self.failed.is_set() else set(self.channels - self.stopped)

    def stops(self, claimed: Claimed) -> bool:
        return self.failed.is_set() or claimed.outgoing.channel in self.stopped


def _send(
    runtime: Runtime,
    batch: Iterator[Claimed],
    senders: dict[str, Sender],
    config: SendConfig,
    report: FlushReport,
    copies: CopyFetchers | None,
    stops: _Stops,
) -> None:
    """Send claimed reminders one message at a time, ARBOT_SEND_BATCH at a time moved to
    `sending` in one commit with the results before, each checked at its own turn
    (bot/reminders/turns.py). `stops` (an outage of a channel's account, met in any lane, or a
    lane that failed) ends the handing over of what it stops: that goes back to, or stays,
    `approved`, untouched. Copies of invoices an email carries are gathered first, with no
    transaction open and the results before stored (no message waits on a fetch with its result
    unstored); an email that cannot carry them is held (bot/reminders/attaching.py), never sent
    without. The lane holds its connections for the batch (no pool checkout, no ping, per
    message)."""
    with _Connections(runtime) as lane:
        _send_on(lane, batch, senders, config, report, copies, stops)


class _Connections:
    """A lane's connections for one batch: one for the transactions that store, and one for each
    reminder's check at its turn (on PostgreSQL in autocommit: no transaction to begin or end)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.general: Connection | None = None
        self.reading: Connection | None = None

    def __enter__(self) -> _Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        for connection in (self.general, self.reading):
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

    def reader(self) -> Connection:
        if self.reading is None or self.reading.invalidated:
            if self.reading is not None:
                self.reading.close()
            self.reading = self.runtime.engine.connect()
            if self.reading.dialect.name == "postgresql":  # SQLite's read transaction is local
                self.reading = self.reading.execution_options(isolation_level="AUTOCOMMIT")
        return self.reading


def _send_on(
    lane: _Connections,
    batch: Iterator[Claimed],
    senders: dict[str, Sender],
    config: SendConfig,
    report: FlushReport,
    copies: CopyFetchers | None,
    stops: _Stops,
) -> None:
    runtime = lane.runtime
    turns = Turns()  # the results not stored yet
    while stops.going():
        taken: list[Claimed] = []
        for claimed in batch:  # one a channel stopped is left `approved`, as claimed
            if not stops.stops(claimed):
                taken.append(claimed)
                if len(taken) == runtime.settings.send_batch:
                    break
        if not taken:
            break
        with lane.writing() as session:  # the results before, and these reminders' `sending`
            settle(session, turns, report)
            started = start_sending(session, taken, runtime.clock.now())
        turns = Turns()
        chunk = iter(started)
        try:
            _hand_over(lane, chunk, senders, config, report, copies, stops, turns)
        except Exception:
            # What was handed over is stored, what was never handed over goes back; the one in
            # hand when it failed stays `sending`, for a person once its lease is over.
            now = runtime.clock.now()
            for claimed in chunk:
                turns.back(claimed, now)
            with lane.writing() as session:
                settle(session, turns, report)
            raise
    if turns:
        with lane.writing() as session:
            settle(session, turns, report)


def _hand_over(
    lane: _Connections,
    chunk: Iterator[Claimed],
    senders: dict[str, Sender],
    config: SendConfig,
    report: FlushReport,
    copies: CopyFetchers | None,
    stops: _Stops,
    turns: Turns,
) -> None:
    """Hand the reminders just moved to `sending` to their providers, each checked at its turn,
    keeping what came of each in `turns`. An outage stops its channel (`stops`)."""
    runtime = lane.runtime
    for claimed in chunk:
        now = runtime.clock.now()
        if stops.stops(claimed) or _late(claimed, now):
            turns.back(claimed, now)  # never handed over: as it was
            continue
        files: tuple[Attachment, ...] = ()
        if claimed.attach:
            if turns:  # stored first: no message waits on a fetch with its result unstored
                with lane.writing() as session:
                    settle(session, turns, report)
                turns.clear()
            gathered = gather(runtime, claimed, copies)
            now = runtime.clock.now()
            if isinstance(gathered, Refusal):
                with lane.writing() as session:
                    hold(session, claimed, gathered, now, report)
                continue
            files = gathered
        held = check(lane.reader(), claimed, now, config.window)
        if held is not None:
            turns.held.append((claimed, held, now))
            continue
        outgoing = replace(claimed.outgoing, date=now, attachments=files)
        delivery = senders[outgoing.channel].send(outgoing)
        if delivery.status == "outage":  # every lane stops this channel before its next message
            stops.stop(outgoing.channel)
        turns.handed.append(Handed(claimed, outgoing, delivery, runtime.clock.now()))


def _late(claimed: Claimed, now: datetime) -> bool:
    """Whether the batch has taken so long that nothing more of it may be handed over."""
    return claimed.claimed_at is not None and now >= claimed.claimed_at + TURNS_END


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
    copies: CopyFetchers | None,
    stops: _Stops,
) -> None:
    shared = _Shared(batch)
    runs = [_Lane(senders) for senders in lanes]

    def run(lane: _Lane) -> None:
        try:
            _send(runtime, shared, lane.senders, config, lane.report, copies, stops)
        except BaseException as exc:  # raised again below, in the worker's own thread
            lane.error = exc
            stops.failed.set()

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
    """Add what a lane saw to the run's report: every field, so none a lane fills is lost
    (lists are joined, mappings joined, the first outage kept)."""
    for one in fields(FlushReport):
        mine, theirs = getattr(report, one.name), getattr(lane, one.name)
        if isinstance(mine, list):
            mine.extend(theirs)
        elif isinstance(mine, dict):
            mine.update(theirs)
        elif mine is None:
            setattr(report, one.name, theirs)


def backlog(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).where(Reminder.state == "approved")) or 0
