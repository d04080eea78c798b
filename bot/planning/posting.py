"""The plan in the finance channel: its cards (bot/planning/cards.py) posted in as few messages as
Block Kit allows, resumably, with what Slack refused posted by the sweep and a late-plan notice
(bot/planning/late_notice.py) once it is complete. The same messages are redrawn whenever a
reminder changes state (bot/planning/redraws.py); the names other modules use are kept here."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import case, func, select, update

from bot.core import audit
from bot.core.bulk_rows import among
from bot.core.models import Customer, PlanPost, Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import TIERS
from bot.planning import late_notice, plan_posts
from bot.planning.cards import card_of, cards_for
from bot.planning.held import Stored
from bot.planning.late_notice import tell_late
from bot.planning.redraws import redraw_headers_naming, refresh, retry_redraws
from bot.planning.summary import states_for, summary_for
from integrations.base.slack import PostedGroup, ReminderCard, SlackPort

log = logging.getLogger(__name__)

__all__ = [
    "card_of",
    "cards_for",
    "post_missing",
    "post_plan",
    "redraw_headers_naming",
    "refresh",
    "retry_redraws",
    "states_for",
    "summary_for",
    "tell_late",
]


def post_plan(
    runtime: Runtime,
    slack: SlackPort,
    channel: str,
    day: date,
    held: Stored | None = None,
) -> int:
    """Post what of the day's stored reminders is not posted yet (escalations are posted once,
    as escalations, and named in the header); returns how many cards were posted. `held` (see
    bot/planning/held.py) is kept with the day's plan, for the header and `/ar held`.

    Resumable and idempotent: the header's ts is stored as soon as Slack accepts it (a repost
    updates that header instead of adding a second one), and so is each message's ts, so a
    failure half-way leaves nothing to post twice; the sweep (`post_missing`) posts the rest.
    Slack is called outside any database transaction (a slow Slack must not hold SQLite's write
    lock while people click), under a short claim so two processes never post the same day.
    SlackFailed is raised after the refusal is recorded (see plan_posts.refused).

    A message Slack took whose ts was not kept (its answer lost on the way back, or the process
    killed between Slack's accept and the write of the ts) is not posted again: each message
    names what it is in its metadata (the header its day and workspace, a card message its
    reminders), and the next post, after a failure or a lapsed claim, finds it in the channel and
    keeps it. Only an install that may not read the channel (without the history scopes) posts
    it again: a duplicate whose buttons act on the same reminders (every decision is idempotent).
    """
    with runtime.sessions() as session:
        waiting = session.scalar(
            select(func.count(Reminder.id)).where(
                Reminder.plan_date == day, Reminder.action == "remind", Reminder.slack_ts.is_(None)
            )
        )
        headless = plan_posts.header_of(session, day) is None and bool(
            held or summary_for(session, day, []).escalations
        )
        earlier = plan_posts.row_of(session, day)
        # An earlier post failed, or its process died (its claim left), maybe after Slack took
        # the header: it is looked for before a header is posted.
        maybe_posted = earlier is not None and (
            earlier.failures > 0 or earlier.slack_claimed_at is not None
        )
    if not waiting and not headless:  # a day handing accounts over or holding some back
        if held is not None:  # still gets its header, once
            plan_posts.keep_held(runtime, day, held)
        return 0
    row = plan_posts.claim(runtime, day, held)
    if row is None:
        return 0  # another process is posting it
    try:
        cards = _post_claimed(runtime, slack, channel, day, row, maybe_posted)
    except Exception as exc:
        plan_posts.refused(runtime, row.id, plan_posts.refusal(exc))
        raise
    notice = late_notice.notice_for(runtime, row) if row.late_since is not None else None
    plan_posts.complete(runtime, row.id, notice)
    if notice is not None:
        tell_late(runtime, slack, channel, row.id, notice)
    return cards


def _post_claimed(
    runtime: Runtime,
    slack: SlackPort,
    channel: str,
    day: date,
    row: PlanPost,
    maybe_posted: bool,
) -> int:
    # Reminders by tier, then escalations: "Approve all <tier>" then redraws only that tier's
    # messages, which keeps Web API calls at about 0.2 per reminder on a busy day.
    tier_rank = case({tier: rank for rank, tier in enumerate(TIERS)}, value=Customer.tier)
    with runtime.sessions() as session:
        reminders = session.scalars(
            select(Reminder)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(
                Reminder.plan_date == day,
                Reminder.action == "remind",
                Reminder.slack_ts.is_(None),
            )
            .order_by(tier_rank, Reminder.id)
        ).all()
        if not reminders and plan_posts.header_of(session, day) is not None:
            return 0
        summary = summary_for(session, day, row.held)
        cards = cards_for(session, list(reminders), runtime.settings.timezone)
        header = plan_posts.header_of(session, day)

    saved: list[int] = []  # the reminders whose message's ts is stored

    def save(posted_channel: str, group: PostedGroup) -> None:
        with runtime.writing() as write:
            write.execute(
                update(Reminder)
                .where(Reminder.id.in_(group.reminder_ids))
                .values(slack_channel=posted_channel, slack_ts=group.ts)
            )
        saved.extend(group.reminder_ids)

    def save_header(posted_channel: str, ts: str) -> None:
        plan_posts.header_posted(runtime, row.id, posted_channel, ts)

    try:
        posted = slack.post_plan(
            channel,
            summary,
            cards,
            save,
            header=header,
            on_header=save_header,
            workspace=runtime.settings.workspace or "",
            header_maybe_posted=maybe_posted and header is None,
        )
    except Exception:
        try:  # what was posted before the failure is drawn as it is now all the same
            _redraw_changed(runtime, slack, cards, saved)
        except Exception:
            log.exception("cards changed while the plan of %s was posted not redrawn", day)
        raise
    _redraw_changed(runtime, slack, cards, saved)
    with runtime.writing() as session:
        audit.record(
            session,
            runtime.clock.now(),
            "plan.posted",
            payload={
                "day": day.isoformat(),
                "channel": posted.channel,
                "header_ts": posted.header_ts,
                "reminders": len(cards),
                "messages": len(posted.groups) + (0 if header else 1),
            },
        )
    return len(cards)


def _redraw_changed(
    runtime: Runtime, slack: SlackPort, cards: list[ReminderCard], saved: list[int]
) -> None:
    """Redraw the posted cards whose reminders changed while the plan was being posted (a
    payment, the send worker, a reply): each change asked for its card's redraw, which found no
    message to draw while the card's ts was not stored yet, so the card would show the state
    read before posting until its next change. Drawn through the messages' versions, as every
    redraw (bot/planning/redraws.py); nothing is drawn when nothing changed."""
    if not saved:
        return
    kept = set(saved)
    posted = {card.reminder_id: card for card in cards if card.reminder_id in kept}
    timezone = runtime.settings.timezone
    with runtime.sessions() as session:
        reminders = [  # a big plan's 20,000 ids: one array, or IN lists SQLite takes
            reminder
            for condition in among(session, Reminder.id, list(posted))
            for reminder in session.scalars(select(Reminder).where(condition))
        ]
        changed = [
            card.reminder_id
            for card in cards_for(session, reminders, timezone)
            if card != posted.get(card.reminder_id)
        ]
        if changed:
            refresh(session, slack, changed, timezone)


def post_missing(runtime: Runtime, slack: SlackPort) -> int:
    """The sweep's part: post whatever of today's plan Slack does not have yet, once its backoff
    has passed, and a late notice still owed. Returns how many cards were posted."""
    channel = runtime.settings.finance_channel
    if not channel:
        return 0
    day, now = runtime.today(), runtime.clock.now()
    with runtime.sessions() as session:
        gap = plan_posts.missing(session, day, now)
        row = plan_posts.row_of(session, day)
    posted = 0
    if gap is not None and (gap.next_try_at is None or gap.next_try_at <= now):
        try:
            posted = post_plan(runtime, slack, channel, day)
        except Exception as exc:
            log.warning(
                "the plan of %s is still not all in Slack: %s", day, plan_posts.refusal(exc)
            )
        return posted
    if row is not None and row.late_notice:
        tell_late(runtime, slack, channel, row.id, row.late_notice, again=True)
    return posted
