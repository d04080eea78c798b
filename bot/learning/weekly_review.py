"""The weekly review posted to the finance channel: what came in over the last seven days (by
currency, from recorded payments), how many reminders went out, how many customers wrote back,
and how many escalations still wait for a person."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Escalation, InboundMessage, Payment, Reminder
from bot.core.money import format_money
from bot.core.runtime import Runtime
from bot.escalations.service import OPEN_STATES
from bot.learning.comparison import Comparison, compare, pilot_of
from bot.learning.metrics import DEFAULT_WEEKS
from bot.planning.planner import Pilot
from integrations.base.slack import ProposalView

DAYS = 7
COMPARE_WEEKS = DEFAULT_WEEKS
NOT_REPLIES = ("bounce", "opt_out", "opt_in", "help", "duplicate")  # inbound that nobody wrote


class PostsText(Protocol):
    def post_text(self, channel: str, text: str) -> None: ...

    def post_proposal(self, channel: str, view: ProposalView) -> tuple[str, str]: ...


@dataclass(frozen=True)
class WeeklyReview:
    first_day: date  # the seven days first_day..last_day, in the business's timezone
    last_day: date
    collected: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount received
    reminders_sent: int = 0
    replies_received: int = 0
    escalations_open: int = 0
    # The followed-up customers against the control group or the observed segment over the
    # COMPARE_WEEKS weeks before today, in one sentence (bot.learning.comparison); None when
    # there is nothing to compare.
    comparison: str | None = None


def weekly_review(
    session: Session, today: date, timezone: str, pilot: Pilot | None = None
) -> WeeklyReview:
    """The seven days before `today` (today itself is in next week's review)."""
    first_day, last_day = today - timedelta(days=DAYS), today - timedelta(days=1)
    zone = ZoneInfo(timezone)
    start = datetime.combine(first_day, time.min, zone)
    end = datetime.combine(today, time.min, zone)
    collected: dict[str, Decimal] = defaultdict(Decimal)
    for currency, amount in session.execute(
        select(Payment.currency, func.sum(Payment.amount))
        .where(Payment.received_on >= first_day, Payment.received_on <= last_day)
        .group_by(Payment.currency)
    ):
        collected[currency] += Decimal(amount)
    sent = session.scalar(
        select(func.count())
        .select_from(Reminder)
        .where(Reminder.sent_at >= start, Reminder.sent_at < end)
    )
    replies = session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.received_at >= start,
            InboundMessage.received_at < end,
            InboundMessage.automatic.is_(False),
            or_(InboundMessage.label.is_(None), InboundMessage.label.not_in(NOT_REPLIES)),
        )
    )
    open_now = session.scalar(
        select(func.count()).select_from(Escalation).where(Escalation.state.in_(OPEN_STATES))
    )
    return WeeklyReview(
        first_day=first_day,
        last_day=last_day,
        collected=dict(sorted(collected.items())),
        reminders_sent=sent or 0,
        replies_received=replies or 0,
        escalations_open=open_now or 0,
        comparison=_comparison(session, today, timezone, pilot),
    )


def _comparison(session: Session, today: date, timezone: str, pilot: Pilot | None) -> str | None:
    last_day = today - timedelta(days=1)
    since = today - timedelta(days=DAYS * COMPARE_WEEKS)
    found = compare(session, since, last_day, timezone=timezone, pilot=pilot)
    return found.sentence() if isinstance(found, Comparison) else None


def review_text(review: WeeklyReview) -> str:
    period = f"{review.first_day:%a %d %b} to {review.last_day:%a %d %b %Y}"
    collected = (
        ", ".join(format_money(amount, currency) for currency, amount in review.collected.items())
        or "nothing recorded"
    )
    return "\n".join(
        [
            f"*Weekly review* ({period})",
            f"• Collected: {collected}",
            f"• Reminders sent: {review.reminders_sent}",
            f"• Replies received: {review.replies_received}",
            f"• Escalations open: {review.escalations_open}",
            *([f"• Follow-up compared: {review.comparison}"] if review.comparison else []),
        ]
    )


def post_weekly_review(
    runtime: Runtime, slack: PostsText, channel: str, today: date, note: str | None = None
) -> WeeklyReview:
    """Post the review (with `note` under it: arbot's own words, e.g. that today's plan is not
    all in Slack yet), then note it in the audit log (counts only). Slack is called outside any
    transaction, so a slow Slack never holds the database's write lock."""
    with runtime.sessions() as session:
        review = weekly_review(
            session, today, runtime.settings.timezone, pilot_of(runtime.settings)
        )
    text = review_text(review)
    slack.post_text(channel, f"{text}\n{note}" if note else text)
    with runtime.writing() as session:
        audit.record(
            session,
            runtime.clock.now(),
            "review.weekly_posted",
            payload={
                "channel": channel,
                "first_day": review.first_day.isoformat(),
                "last_day": review.last_day.isoformat(),
                "collected": {c: str(a) for c, a in review.collected.items()},
                "reminders_sent": review.reminders_sent,
                "replies_received": review.replies_received,
                "escalations_open": review.escalations_open,
                "comparison": review.comparison,
            },
        )
    return review
