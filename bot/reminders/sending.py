"""The send worker's loop: recover, claim a batch, then for each claimed reminder commit `sending`
right before its send, on one connection per channel. Each result is committed with the next
reminder's `sending` (one transaction a message), the last one alone: at any moment at most one
message has been handed over without its result stored, so a crash leaves at most that one for a
person to check (`unknown`). `arbot send` runs it once; `arbot serve` every minute."""

from __future__ import annotations

from contextlib import ExitStack

from sqlalchemy import func, select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import CHANNELS
from bot.reminders.outbox import (
    Claimed,
    FlushReport,
    Handed,
    SendConfig,
    claim,
    config_from,
    record,
    recover,
    start_sending,
)
from integrations.base.outbound import Sender


def flush(runtime: Runtime, senders: dict[str, Sender]) -> FlushReport:
    config = config_from(runtime.settings)
    report = FlushReport()
    now = runtime.clock.now()
    with runtime.writing() as session:
        report.unknown = recover(session, now)
    channels = set(senders)
    with ExitStack() as stack:
        opened = {channel: stack.enter_context(sender) for channel, sender in senders.items()}
        while not report.outage:  # an account problem stops the run before the next claim
            now = runtime.clock.now()
            with runtime.writing() as session:
                batch, examined = claim(session, now, config, report, channels)
            if examined == 0:
                break
            _send(runtime, batch, opened, config, report)
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


def _send(
    runtime: Runtime,
    batch: list[Claimed],
    senders: dict[str, Sender],
    config: SendConfig,
    report: FlushReport,
) -> None:
    """Send a claimed batch one message at a time, each at its own time (windows and leases hold
    for each): the previous result and this reminder's `sending` in one commit, then its send."""
    handed: Handed | None = None
    for claimed in batch:
        with runtime.writing() as session:
            if handed is not None:
                record(session, handed, report)
                handed = None
            if report.outage:  # the account failed: what is left stays approved, untouched
                return
            outgoing = start_sending(session, claimed, runtime.clock.now(), config.window, report)
        if outgoing is None:
            continue
        delivery = senders[outgoing.channel].send(outgoing)
        handed = Handed(claimed, outgoing, delivery, runtime.clock.now())
    if handed is not None:
        with runtime.writing() as session:
            record(session, handed, report)


def backlog(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).where(Reminder.state == "approved")) or 0
