"""The send worker's loop: recover, claim a batch, send it on one connection, record each result
in its own transaction. `arbot send` runs it once; `arbot serve` will run it every minute."""

from __future__ import annotations

from contextlib import ExitStack

from sqlalchemy import func, select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import CHANNELS
from bot.reminders.outbox import FlushReport, claim, config_from, record, recover
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
            # One reminder at a time: `sending` is committed right before its own send, so a
            # crash leaves at most one reminder whose fate a person must check.
            now = runtime.clock.now()  # each claim at its own time: windows and leases hold
            with runtime.writing() as session:
                batch, examined = claim(session, now, config, report, channels, limit=1)
            if examined == 0:
                break
            for message in batch:
                delivery = opened[message.channel].send(message)
                with runtime.writing() as session:
                    record(session, message, delivery, runtime.clock.now(), report)
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


def backlog(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).where(Reminder.state == "approved")) or 0
