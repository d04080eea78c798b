"""The plan in the finance channel: cards built from stored reminders, posted in as few messages as
Block Kit allows, and the same messages updated whenever a reminder changes state."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, func, select, update
from sqlalchemy.orm import Session

from bot.core import audit, message_versions, slack_retries
from bot.core.db import session_factory, writing_factory
from bot.core.labels import reason_label
from bot.core.models import (
    Contact,
    Customer,
    Escalation,
    Event,
    Invoice,
    PlanPost,
    Reminder,
    ReminderAttachment,
    ReminderInvoice,
)
from bot.core.money import format_money
from bot.core.runtime import Runtime
from bot.core.slack_retries import REDRAW, owe
from bot.core.vocabulary import TIERS
from bot.escalations import thread as escalation_thread
from bot.escalations.plans import instalment_asks
from bot.learning.trust import since_for
from bot.planning import plan_posts
from bot.planning.held import Stored
from bot.planning.step_places import step_places
from bot.planning.summary import states_for, summary_for
from bot.reminders.shown import version_of
from integrations.base.slack import (
    CardInvoice,
    EscalationPort,
    PlanSummary,
    PostedGroup,
    ReminderCard,
    SlackPort,
    Tag,
    escape,
)
from integrations.errors import SlackFailed, outcome_unknown, slack_error

log = logging.getLogger(__name__)

LATE_TAG = "late_plan"  # a late-plan notice names its plan post in its metadata
LATE_IN_DOUBT = "plan.late_notice_in_doubt"  # a try of it whose outcome is unknown (`plan_post`)


def cards_for(session: Session, reminders: list[Reminder], timezone: str) -> list[ReminderCard]:
    ids = [r.id for r in reminders]
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(Customer.id.in_({r.customer_id for r in reminders}))
        )
    }
    contacts = {
        c.id: c
        for c in session.scalars(
            select(Contact).where(Contact.id.in_({r.contact_id for r in reminders if r.contact_id}))
        )
    }
    invoices: dict[int, list[tuple[Invoice, date]]] = defaultdict(list)
    for reminder_id, invoice in session.execute(
        select(ReminderInvoice.reminder_id, Invoice)
        .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
        .where(ReminderInvoice.reminder_id.in_(ids))
        .order_by(Invoice.due_date, Invoice.number)
    ):
        invoices[reminder_id].append((invoice, invoice.due_date))
    owners = dict(
        session.execute(
            select(Escalation.reminder_id, Escalation.owner_slack_id).where(
                Escalation.reminder_id.in_(ids)
            )
        ).all()
    )
    # Who skipped, and why: one query for the whole group, not one per card.
    skips = {
        reminder_id: (actor, (payload or {}).get("reason") or None)
        for reminder_id, actor, payload in session.execute(
            select(Event.reminder_id, Event.actor, Event.payload).where(
                Event.reminder_id.in_([r.id for r in reminders if r.state == "skipped"]),
                Event.kind == "reminder.skipped",
            )
        )
    }
    # Sent though a stop was asked for after its claim (bot/reminders/results.py): the stop.
    sent = [r.id for r in reminders if r.state == "sent"]
    late_stops = {
        reminder_id: str((payload or {}).get("stop"))
        for reminder_id, payload in (
            session.execute(
                select(Event.reminder_id, Event.payload).where(
                    Event.reminder_id.in_(sent), Event.kind == "reminder.sent_after_stop"
                )
            )
            if sent
            else ()
        )
    }
    places = step_places(session, reminders, customers)
    asks = instalment_asks(session, [r.step_key for r in reminders])  # an instalment's amount
    copies: dict[int, list[str]] = defaultdict(list)  # the invoices whose PDF copies it carries
    for reminder_id, number in session.execute(
        select(ReminderAttachment.reminder_id, Invoice.number)
        .join(Invoice, Invoice.id == ReminderAttachment.invoice_id)
        .where(ReminderAttachment.reminder_id.in_([r.id for r in reminders]))
        .order_by(Invoice.number)
    ):
        copies[reminder_id].append(number)
    zone = ZoneInfo(timezone)
    # Approved automatically because their step earned trust: since when (bot/learning/trust.py).
    trusted = since_for(session, [(r, customers[r.customer_id]) for r in reminders])
    cards = []
    for r in reminders:
        customer = customers[r.customer_id]
        contact = contacts.get(r.contact_id) if r.contact_id else None
        lines = invoices.get(r.id, [])
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for invoice, _ in lines:
            totals[invoice.currency] += invoice.balance
        acted_at = r.approved_at or (r.updated_at if r.state not in ("planned",) else None)
        cards.append(
            ReminderCard(
                reminder_id=r.id,
                customer_name=customer.name,
                customer_id=customer.external_id,
                tier=customer.tier,
                action=r.action,
                state=r.state,
                step=r.step_key,
                channel=r.channel,
                contact=(contact.email if r.channel == "email" else contact.phone)
                if contact
                else owners.get(r.id)  # who the escalation went to (owner, or the tier's route)
                if r.action == "escalate"
                else None,
                invoices=tuple(
                    CardInvoice(
                        i.number, format_money(i.balance, i.currency), (r.plan_date - due).days
                    )
                    for i, due in lines
                ),
                total=format_money(*asks[r.step_key])
                if r.step_key in asks
                else ", ".join(format_money(v, k) for k, v in sorted(totals.items())) or "—",
                subject=r.subject,
                preview=r.body_text,
                send_after=r.send_after.astimezone(zone).strftime("%a %H:%M %Z")
                if r.send_after
                else None,
                acted_by=r.approved_by
                if r.state in ("approved", "sending", "sent")
                else skips.get(r.id, (None, None))[0],
                acted_at=acted_at.astimezone(zone).strftime("%H:%M %Z") if acted_at else None,
                note=_unknown_stop(r.cancel_reason)
                if r.state == "unknown" and r.cancel_reason
                else _sent_after_stop(late_stops[r.id])
                if r.id in late_stops
                else r.cancel_reason or r.error or skips.get(r.id, (None, None))[1],
                step_offset=places[r.id][0] if r.id in places else None,
                step_position=places[r.id][1] if r.id in places else None,
                copies=tuple(copies.get(r.id, ())),
                language=r.language,
                trusted_since=f"{trusted[r.id]:%-d %b %Y}" if r.id in trusted else None,
                text_version=version_of(r, contact),
            )
        )
    return cards


def card_of(session: Session, reminder_id: int, timezone: str) -> ReminderCard | None:
    """One reminder's card as the plan shows it (its whole text too): the Preview's content."""
    reminder = session.get(Reminder, reminder_id)
    return cards_for(session, [reminder], timezone)[0] if reminder is not None else None


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
        headless = _header_of(session, day) is None and bool(
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
        plan_posts.refused(runtime, row.id, _why(exc))
        raise
    notice = _late_notice(runtime, row) if row.late_since is not None else None
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
        if not reminders and _header_of(session, day) is not None:
            return 0
        summary = summary_for(session, day, row.held)
        cards = cards_for(session, list(reminders), runtime.settings.timezone)
        header = _header_of(session, day)

    def save(posted_channel: str, group: PostedGroup) -> None:
        with runtime.writing() as write:
            write.execute(
                update(Reminder)
                .where(Reminder.id.in_(group.reminder_ids))
                .values(slack_channel=posted_channel, slack_ts=group.ts)
            )

    def save_header(posted_channel: str, ts: str) -> None:
        plan_posts.header_posted(runtime, row.id, posted_channel, ts)

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


def _why(exc: Exception) -> str:
    """Slack's answer, in the words the finance channel and /healthz show: an error code, or
    the kind of failure; nothing in it is read as Slack markup."""
    text = exc.error if isinstance(exc, SlackFailed) else type(exc).__name__
    return re.sub(r"[^A-Za-z0-9_:. -]", "", text)[:200]


def _late_notice(runtime: Runtime, row: PlanPost) -> str:
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
            log.warning("the plan of %s is still not all in Slack: %s", day, _why(exc))
        return posted
    if row is not None and row.late_notice:
        tell_late(runtime, slack, channel, row.id, row.late_notice, again=True)
    return posted


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
        headers = {day: _header_of(lookup, day) for day in {day for _, _, day in touched}}
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
        why = _why(exc)
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
            slack_retries.refused_again(runtime, retry, _why(exc))
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
            owe(runtime.writes, REDRAW, channel, ts, _why(exc))
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
        header = _header_of(session, day)
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
            why = _why(exc)
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


def _header_of(session: Session, day: date) -> tuple[str, str] | None:
    row = plan_posts.row_of(session, day)
    if row is not None and row.channel and row.header_ts:
        return row.channel, row.header_ts
    for payload in session.scalars(  # a day posted before plan_posts kept its header here
        select(Event.payload).where(Event.kind == "plan.posted").order_by(Event.id.desc())
    ):
        if payload.get("day") == day.isoformat():
            return str(payload["channel"]), str(payload["header_ts"])
    return None


__all__ = ["cards_for", "post_plan", "refresh", "states_for", "summary_for"]


def _unknown_stop(reason: str) -> str:
    """The note of a reminder left `unknown` by a crash though a stop was asked for after its
    claim."""
    return f"a stop was asked ({reason}) after it was claimed; it was probably not handed over"


def _sent_after_stop(reason: str) -> str:
    """The note of a reminder that went out though a stop was asked for after its claim: the
    provider already had it."""
    return (
        f"it went out after a stop was asked ({reason_label(reason)}); a person has it in the "
        "customer's escalation"
    )
