"""A day's plan in the finance channel, as a row of `plan_posts`: where its header is (so a
repost updates it instead of adding a second one), the held-back counts it shows, who is posting
it now (a short claim, as for escalations: bot/core/slack_claims.py), and what Slack refused
while parts of it were missing: how many refusals in a row, the last error, when the sweep tries
again (bot/core/slack_retries.backoff) and the notice owed to the channel once it is complete."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import slack_claims
from bot.core.models import Event, PlanPost, Reminder
from bot.core.runtime import Runtime
from bot.core.slack_retries import backoff
from integrations.errors import SlackFailed


@dataclass(frozen=True, slots=True)
class Missing:
    """What of a day's plan Slack does not have yet."""

    day: date
    cards: int  # reminders without a message (escalations are posted as escalations)
    of: int  # the day's reminders
    failures: int
    last_error: str | None
    next_try_at: datetime | None
    posting: bool  # a process is posting it right now


def row_of(session: Session, day: date) -> PlanPost | None:
    return session.scalars(select(PlanPost).where(PlanPost.day == day)).first()


def claim(runtime: Runtime, day: date, held: list[Any] | None) -> PlanPost | None:
    """Take the day's plan for posting (making its row the first time); None when another
    process is posting it. `held` replaces who is stored as held back when given (its shape:
    bot/planning/held.py)."""
    now = runtime.clock.now()
    for _ in range(2):  # a second process may make the row first
        try:
            with runtime.writing() as session:
                row = row_of(session, day)
                if row is None:
                    row = PlanPost(day=day, held=[], failures=0, late_cards=0)
                    session.add(row)
                    session.flush()
                if not slack_claims.claim(session, PlanPost, row.id, now):
                    return None
                if held is not None:
                    row.held = list(held)
                row.slack_claimed_at = now
                return row
        except IntegrityError:
            continue
    return None


def keep_held(runtime: Runtime, day: date, held: list[Any]) -> None:
    """Keep who the day's plan held back, on a day with nothing to post."""
    for _ in range(2):  # a second process may make the row first
        try:
            with runtime.writing() as session:
                row = row_of(session, day)
                if row is None:
                    row = PlanPost(day=day, held=[], failures=0, late_cards=0)
                    session.add(row)
                row.held = list(held)
                return
        except IntegrityError:
            continue


def header_posted(runtime: Runtime, row_id: int, channel: str, ts: str) -> None:
    with runtime.writing() as session:
        row = session.get(PlanPost, row_id)
        assert row is not None
        row.channel, row.header_ts = channel, ts


def refused(runtime: Runtime, row_id: int, error: str) -> None:
    """Slack refused a part: give the claim back, and wait longer before the next try."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        row = session.get(PlanPost, row_id)
        assert row is not None
        if row.late_since is None:
            row.late_since = now
            row.late_cards = _unposted(session, row.day)
        row.failures += 1
        row.last_error = error[:500]
        row.next_try_at = now + backoff(row.failures)
        row.slack_claimed_at = None


def complete(runtime: Runtime, row_id: int, late_notice: str | None) -> None:
    """Every part is in Slack: the claim is given back and a notice owed when it came late."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        row = session.get(PlanPost, row_id)
        assert row is not None
        row.slack_claimed_at = None
        row.failures = 0
        row.next_try_at = None
        row.posted_at = now
        row.late_since = None
        row.late_cards = 0
        if late_notice is not None:
            row.late_notice = late_notice


def notice_told(runtime: Runtime, row_id: int) -> None:
    with runtime.writing() as session:
        row = session.get(PlanPost, row_id)
        assert row is not None
        row.late_notice = None


def missing(session: Session, day: date, now: datetime) -> Missing | None:
    """What of the day's stored plan is not in Slack; None when all of it is (or none stored)."""
    unposted = _unposted(session, day)  # found through the index, without the posted ones
    if not unposted:
        return None
    total = session.scalar(
        select(func.count(Reminder.id)).where(
            Reminder.plan_date == day, Reminder.action == "remind"
        )
    )
    row = row_of(session, day)
    now_posting = (
        row is not None
        and row.slack_claimed_at is not None
        and row.slack_claimed_at >= now - slack_claims.CLAIM_LEASE
    )
    return Missing(
        day=day,
        cards=unposted,
        of=total or 0,
        failures=row.failures if row else 0,
        last_error=row.last_error if row else None,
        next_try_at=row.next_try_at if row else None,
        posting=now_posting,
    )


def _unposted(session: Session, day: date) -> int:
    return (
        session.scalar(
            select(func.count(Reminder.id)).where(
                Reminder.plan_date == day,
                Reminder.action == "remind",
                Reminder.slack_ts.is_(None),
            )
        )
        or 0
    )


def refusal(exc: Exception) -> str:
    """Slack's answer, in the words the finance channel and /healthz show: an error code, or
    the kind of failure; nothing in it is read as Slack markup."""
    text = exc.error if isinstance(exc, SlackFailed) else type(exc).__name__
    return re.sub(r"[^A-Za-z0-9_:. -]", "", text)[:200]


def header_of(session: Session, day: date) -> tuple[str, str] | None:
    """Where the day's plan header is in Slack (channel, ts), or None while it is not posted."""
    row = row_of(session, day)
    if row is not None and row.channel and row.header_ts:
        return row.channel, row.header_ts
    for payload in session.scalars(  # a day posted before plan_posts kept its header here
        select(Event.payload).where(Event.kind == "plan.posted").order_by(Event.id.desc())
    ):
        if payload.get("day") == day.isoformat():
            return str(payload["channel"]), str(payload["header_ts"])
    return None
