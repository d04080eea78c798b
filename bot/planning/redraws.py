"""Redrawing the plan's messages in Slack when their reminders change: the cards and the day's
header, each from a fresh read (bot/core/message_versions.py); a redraw Slack refuses is owed and
the sweep draws it again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.core import message_versions, slack_retries
from bot.core.db import session_factory, writing_factory
from bot.core.models import Escalation, PlanPost, Reminder
from bot.core.runtime import Runtime
from bot.core.slack_retries import REDRAW, owe
from bot.escalations import thread as escalation_thread
from bot.planning import plan_posts
from bot.planning.cards import cards_for
from bot.planning.summary import summary_for
from integrations.base.slack import EscalationPort, PlanSummary, SlackPort

log = logging.getLogger(__name__)


def refresh(session: Session, slack: SlackPort, reminder_ids: list[int], timezone: str) -> None:
    """Re-draw the Slack messages holding these reminders (and the plan header's counts).

    A redraw Slack refuses is owed (bot/core/slack_retries.py) and the sweep draws the message
    again until Slack takes it (`retry_redraws`); the change itself is stored already, so the
    person who acted is not told it failed.

    Which messages those are is read in a short transaction of its own, closed before any is
    drawn: each is drawn from a fresh read of its own (bot/core/message_versions.py)."""
    engine = session.get_bind().engine
    with session_factory(engine)() as lookup:
        touched = lookup.execute(
            select(Reminder.slack_channel, Reminder.slack_ts, Reminder.plan_date)
            .where(Reminder.id.in_(reminder_ids), Reminder.slack_ts.is_not(None))
            .distinct()
        ).all()
        headers = {day: plan_posts.header_of(lookup, day) for day in {day for _, _, day in touched}}
    for channel, ts, _day in touched:
        assert channel is not None and ts is not None
        _redraw(engine, slack, channel, ts, timezone)
    for day, header in headers.items():
        if header:
            _redraw(engine, slack, header[0], header[1], timezone, day=day)


def _redraw(
    engine: Engine,
    slack: SlackPort,
    channel: str,
    ts: str,
    timezone: str,
    *,
    day: date | None = None,
) -> None:
    """Draw the message at channel/ts from the state read when it is sent, never older than a
    redraw already applied, and once for many redraws asked for at once (see
    bot/core/message_versions.py)."""
    try:
        message_versions.draw_newest(
            engine, channel, ts, _drawing(slack, channel, ts, timezone, day)
        )
    except Exception as exc:
        why = plan_posts.refusal(exc)
        log.warning("redraw of %s/%s refused (%s): the sweep draws it again", channel, ts, why)
        owe(writing_factory(engine), REDRAW, channel, ts, why)


def _drawing(
    slack: SlackPort,
    channel: str,
    ts: str,
    timezone: str,
    day: date | None,
    today: date | None = None,
) -> Callable[[Session], None]:
    """The drawing of channel/ts from the state a session reads (see `_draw`)."""
    return lambda session: _draw(session, slack, channel, ts, timezone, day, today)


def _draw(
    session: Session,
    slack: SlackPort,
    channel: str,
    ts: str,
    timezone: str,
    day: date | None,
    today: date | None = None,
) -> None:
    """Draw the message at channel/ts as it is now: a plan header (for `day`), or cards; for the
    sweep (given `today`), also an escalation's parent message, which is drawn through its
    message version too (bot/escalations/posting.redraw)."""
    if day is None:
        day = _header_day(session, channel, ts)
    if day is not None:
        slack.update_plan_header(channel, ts, summary_for(session, day))
        return
    group = session.scalars(
        select(Reminder)
        .where(Reminder.slack_channel == channel, Reminder.slack_ts == ts)
        .order_by(Reminder.action.desc(), Reminder.id)
    ).all()
    if group:
        slack.update_cards(channel, ts, cards_for(session, list(group), timezone))
        return
    if today is None or not isinstance(slack, EscalationPort):
        return
    escalation_id = session.scalar(
        select(Escalation.id).where(
            Escalation.slack_channel == channel, Escalation.slack_thread_ts == ts
        )
    )
    if escalation_id is not None:
        view = escalation_thread.view(session, escalation_id, today, timezone)
        slack.update_escalation(channel, ts, view)


def retry_redraws(runtime: Runtime, slack: SlackPort) -> int:
    """The sweep's part: draw again every message whose redraw Slack refused, with backoff, and
    every message whose drawer died with a redraw still wanted (bot/core/message_versions.py)."""
    done = 0
    with runtime.sessions() as session:
        owed = slack_retries.due(session, REDRAW, runtime.clock.now())
        waiting = set(slack_retries.owed(session, REDRAW))
        abandoned = [
            message
            for message in message_versions.abandoned(session, message_versions.REAL_TIME.now())
            if message not in waiting
        ]
    timezone, today = runtime.settings.timezone, runtime.today()
    for retry in owed:
        try:
            message_versions.draw_newest(
                runtime.engine,
                retry.channel,
                retry.ts,
                _drawing(slack, retry.channel, retry.ts, timezone, None, today),
            )
        except Exception as exc:
            slack_retries.refused_again(runtime, retry, plan_posts.refusal(exc))
            continue
        slack_retries.paid(runtime, retry.id)
        done += 1
    for channel, ts in abandoned:  # asked for, and its drawer died before drawing it
        try:
            if message_versions.draw_newest(
                runtime.engine, channel, ts, _drawing(slack, channel, ts, timezone, None, today)
            ):
                done += 1
        except Exception as exc:
            owe(runtime.writes, REDRAW, channel, ts, plan_posts.refusal(exc))
    return done


@runtime_checkable
class HeaderRedraws(Protocol):
    def update_plan_header(self, channel: str, ts: str, summary: PlanSummary) -> None: ...


def redraw_headers_naming(session: Session, slack: object, escalation_ids: list[int]) -> int:
    """Draw again the plan headers that name these escalations (just posted, so each header's
    line gets its link): the header of the day whose plan handed the account to a person.
    A redraw Slack refuses is owed like any other. Returns how many headers were drawn."""
    if not escalation_ids or not isinstance(slack, HeaderRedraws):
        return 0
    days = session.scalars(
        select(Reminder.plan_date)
        .join(Escalation, Escalation.reminder_id == Reminder.id)
        .where(Escalation.id.in_(escalation_ids), Reminder.action == "escalate")
        .distinct()
    ).all()
    drawn = 0
    for day in days:
        header = plan_posts.header_of(session, day)
        if header is None:  # the plan is not posted yet: its header links them when it is
            continue
        try:
            message_versions.draw_newest(
                session.get_bind().engine,
                header[0],
                header[1],
                _header_drawing(slack, header[0], header[1], day),
            )
        except Exception as exc:
            why = plan_posts.refusal(exc)
            log.warning("header of %s not redrawn (%s): the sweep draws it again", day, why)
            owe(writing_factory(session.get_bind().engine), REDRAW, header[0], header[1], why)
            continue
        drawn += 1
    return drawn


def _header_drawing(
    slack: HeaderRedraws, channel: str, ts: str, day: date
) -> Callable[[Session], None]:
    return lambda session: slack.update_plan_header(channel, ts, summary_for(session, day))


def _header_day(session: Session, channel: str, ts: str) -> date | None:
    return session.scalar(
        select(PlanPost.day).where(PlanPost.channel == channel, PlanPost.header_ts == ts)
    )
