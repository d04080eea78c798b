"""The late-plan notice: the finance channel is told what of its plan came late and why, once;
a try whose outcome is unknown is recorded, and the sweep's next try first looks for it in the
channel and keeps the one Slack has."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Event, PlanPost
from bot.core.runtime import Runtime
from bot.planning import plan_posts
from integrations.base.slack import SlackPort, Tag, escape
from integrations.errors import outcome_unknown, slack_error

log = logging.getLogger(__name__)

LATE_TAG = "late_plan"  # a late-plan notice names its plan post in its metadata
LATE_IN_DOUBT = "plan.late_notice_in_doubt"  # a try of it whose outcome is unknown (`plan_post`)


def notice_for(runtime: Runtime, row: PlanPost) -> str:
    zone = ZoneInfo(runtime.settings.timezone)
    since = row.late_since.astimezone(zone).strftime("%H:%M %Z") if row.late_since else "?"
    now = runtime.clock.now().astimezone(zone).strftime("%H:%M %Z")
    attempts = row.failures
    return (
        f":warning: The plan for {row.day.isoformat()} reached this channel late: "
        f"{row.late_cards} card(s) missing since {since} are posted now ({now}). Slack "
        f"answered `{row.last_error or 'an error'}` "
        f"({attempts} refused attempt{'s' if attempts != 1 else ''}). "
        "Please review what was added above."
    )


def tell_late(
    runtime: Runtime,
    slack: SlackPort,
    channel: str,
    row_id: int,
    notice: str,
    *,
    again: bool = False,
) -> None:
    """Tell the finance channel what came late and why; kept for the sweep if Slack refuses.
    The notice names its plan post in its metadata: a try whose outcome is unknown (its answer
    lost, a server error) is recorded (LATE_IN_DOUBT), and the sweep's try `again` then first
    looks for it in the channel and keeps the one Slack has."""
    maybe_posted = False
    if again:
        with runtime.sessions() as session:
            maybe_posted = _late_in_doubt(session, row_id)
    try:
        slack.post_text(  # nothing in it to escape: typed as mrkdwn
            channel, escape(notice), tag=Tag(LATE_TAG, str(row_id)), maybe_posted=maybe_posted
        )
    except Exception as exc:
        log.exception("late-plan notice not posted; the sweep tries again")
        if outcome_unknown(exc) and not maybe_posted:
            with runtime.writing() as session:
                audit.record(
                    session,
                    runtime.clock.now(),
                    LATE_IN_DOUBT,
                    payload={"plan_post": row_id, "error": slack_error(exc)},
                )
        return
    plan_posts.notice_told(runtime, row_id)


def _late_in_doubt(session: Session, row_id: int) -> bool:
    """Whether an earlier try of this plan post's late notice may have reached Slack."""
    return any(
        (payload or {}).get("plan_post") == row_id
        for payload in session.scalars(
            select(Event.payload).where(Event.customer_id.is_(None), Event.kind == LATE_IN_DOUBT)
        )
    )
