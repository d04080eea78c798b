"""Escalations in Slack: post each new one as a parent message with its history in the thread,
re-draw it after a decision, add notes ("paid", "missed promise") to the open thread, and raise
again the ones nobody claimed.

Slack is called after the change that caused it is stored. A post that fails leaves the
escalation without a thread, and the next sweep posts it: an escalation never ends in silence.
A post that failed without Slack's own answer (its answer lost on the way back, a server error)
may have reached Slack all the same: that is recorded (`escalation.post_in_doubt`), and the next
post, like one after a claim its process left behind, first looks in the channel for the parent
message, which names its escalation in its metadata, and keeps it instead of posting a second
card with live buttons; a second escalation's "also needs" note in the customer's open thread
and the history's messages name theirs too, and are looked for in the thread the same way. Every
other failed post is recorded too (`escalation.post_refused`, with
Slack's answer), so one Slack refuses until a person acts reaches /healthz and `arbot doctor`
(bot/core/slack_refusals.py).
A history Slack refused is owed (bot/core/slack_retries.py) and posted by the sweep.
`post_new` holds no transaction open while Slack answers: each escalation is claimed in a short
write (so two processes never both post it), posted, and its thread stored in another.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from bot.core import audit, message_versions, slack_claims, slack_refusals, slack_retries
from bot.core.models import Customer, Escalation, Event
from bot.core.runtime import Runtime
from bot.core.slack_retries import HISTORY, owe
from bot.escalations import service, thread_notes
from bot.escalations import thread as thread_view
from bot.planning import plan_unit
from bot.planning import posting as plan_posting
from integrations.base.mrkdwn import HERE, Mrkdwn, mention, mrkdwn
from integrations.base.slack import EscalationPort, EscalationView, Tag
from integrations.errors import SlackFailed, outcome_unknown, slack_error

log = logging.getLogger(__name__)

# A post of the escalation's parent message failed in a way that leaves unknown whether Slack
# took it: the next post looks for it in the channel first.
IN_DOUBT = slack_refusals.ESCALATION_IN_DOUBT
ALSO_NEEDS = "also_needs"  # a reason joining another's thread names its escalation in metadata


def post_new(
    runtime: Runtime,
    slack: EscalationPort,
    channel: str | None = None,
    *,
    plan_first: bool = True,
    refused: list[str] | None = None,
) -> list[int]:
    """Post every open escalation that has no thread yet to `channel` (by default
    ARBOT_ESCALATION_CHANNEL, else the finance channel), with no transaction open while Slack is
    called, then redraw the plan header that names any of them (posted after the plan: the
    sweep's retry). Returns the ids posted; Slack's refusals (its error codes) are added to
    `refused`. Once Slack cannot be reached the rest are not tried: they wait for the sweep.

    In the finance channel, while today's plan is going out or half out (and not yet past
    plan_unit.PLAN_WAIT), nothing is posted with `plan_first`: an escalation a reply or a payment
    opened then would land between the plan's messages, so the sweep posts it once the plan is
    all there. The morning job, posting the day's escalations before its plan, passes False."""
    settings = runtime.settings
    channel = channel or settings.escalation_channel or settings.finance_channel
    if not channel:
        return []
    if plan_first and channel == settings.finance_channel:
        with runtime.sessions() as session:
            gap = plan_unit.unfinished(session, runtime.today(), runtime.clock.now())
        if gap is not None and not gap.overdue(runtime.clock.now()):
            log.info("escalations wait for today's plan in the finance channel: %s", gap.why)
            return []
    with runtime.sessions() as session:
        pending = list(
            session.scalars(
                select(Escalation.id)
                .where(
                    Escalation.state.in_(service.OPEN_STATES),
                    Escalation.slack_thread_ts.is_(None),
                )
                .order_by(Escalation.id)
            )
        )
    posted = []
    for escalation_id in pending:
        try:
            if _post_claimed(runtime, slack, escalation_id, channel):
                posted.append(escalation_id)
        except SlackFailed as exc:  # Slack refusing or out of reach: the next sweep tries again
            log.warning("escalation %s not posted: Slack said %s", escalation_id, exc.error)
            if refused is not None:
                refused.append(exc.error)
            if exc.unreachable:
                break  # each of the others would wait for Slack in turn
        except Exception:  # one bad post must not stop the others; the next sweep tries again
            log.exception("escalation %s not posted", escalation_id)
    if posted:  # a plan already in Slack names them in its header: give each line its link
        with runtime.sessions() as session:
            plan_posting.redraw_headers_naming(session, slack, posted)
    return posted


def without_thread(session: Session, escalation_ids: list[int]) -> list[int]:
    """Of these escalations, the open ones Slack has no thread of yet (the sweep posts them)."""
    if not escalation_ids:
        return []
    return list(
        session.scalars(
            select(Escalation.id).where(
                Escalation.id.in_(escalation_ids),
                Escalation.state.in_(service.OPEN_STATES),
                Escalation.slack_thread_ts.is_(None),
            )
        )
    )


def _post_claimed(
    runtime: Runtime, slack: EscalationPort, escalation_id: int, channel: str
) -> bool:
    settings = runtime.settings
    now = runtime.clock.now()
    with runtime.writing() as session:
        left_claimed = session.scalar(  # by a process that died posting it, maybe after Slack
            select(Escalation.slack_claimed_at).where(Escalation.id == escalation_id)
        )
        if not slack_claims.claim(
            session,
            Escalation,
            escalation_id,
            now,
            Escalation.state.in_(service.OPEN_STATES),
            Escalation.slack_thread_ts.is_(None),
        ):
            return False  # posted meanwhile, or another process is posting it
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None
        if escalation.owner_slack_id is None:
            customer = session.get(Customer, escalation.customer_id)
            assert customer is not None
            escalation.owner_slack_id = service.owner_for(
                customer, dict(settings.escalation_routes)
            )
        thread = _thread_of_another(session, escalation)
        view = (
            None
            if thread is not None
            else thread_view.view(session, escalation_id, runtime.today(), settings.timezone)
        )
        also = _also_needs(escalation)
        customer_id = escalation.customer_id
        maybe_posted = left_claimed is not None or _in_doubt(session, escalation)
    try:
        if thread is not None:  # one thread per customer: a second reason joins the first
            slack.post_in_thread(
                thread[0],
                thread[1],
                also,
                tag=Tag(ALSO_NEEDS, str(escalation_id)),
                maybe_posted=maybe_posted,
            )
            channel_id, ts = thread
        else:
            assert view is not None
            channel_id, ts = slack.post_escalation(
                channel,
                view,
                workspace=settings.workspace or "",
                maybe_posted=maybe_posted,
            )
    except Exception as exc:
        in_doubt = not maybe_posted and outcome_unknown(exc)
        with runtime.writing() as session:  # a refusal only a person ends reaches /healthz
            audit.record(
                session,
                now,
                IN_DOUBT if in_doubt else slack_refusals.ESCALATION_REFUSED,
                customer_id=customer_id,
                payload={
                    "escalation": escalation_id,
                    "channel": thread[0] if thread is not None else channel,
                    "error": _error(exc),
                },
            )
        slack_claims.give_back(runtime, Escalation, escalation_id)  # the next sweep posts it
        raise
    # Stored before the history goes into the thread, whose failure is caught below: the next
    # sweep must never post a second card with live buttons.
    with runtime.writing() as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None
        escalation.slack_channel, escalation.slack_thread_ts = channel_id, ts
        escalation.slack_claimed_at = None
        thread_notes.owe_added_while_posting(session, escalation)
        if view is not None:
            audit.record(
                session,
                now,
                "escalation.posted",
                customer_id=escalation.customer_id,
                payload={"escalation": escalation.id, "channel": channel_id, "ts": ts},
            )
    if view is not None:
        _post_history(runtime, slack, escalation_id, channel_id, ts, view)
    return True


def _in_doubt(session: Session, escalation: Escalation) -> bool:
    """Whether an earlier post of the escalation may have reached Slack though it failed."""
    return any(
        (payload or {}).get("escalation") == escalation.id
        for payload in session.scalars(
            select(Event.payload).where(
                Event.kind == IN_DOUBT, Event.customer_id == escalation.customer_id
            )
        )
    )


def _error(exc: Exception) -> str:
    return slack_error(exc)


def _also_needs(escalation: Escalation) -> Mrkdwn:
    return thread_notes.also_needs(escalation.reason, escalation.detail, escalation.owner_slack_id)


def _post_history(
    runtime: Runtime,
    slack: EscalationPort,
    escalation_id: int,
    channel_id: str,
    ts: str,
    view: EscalationView,
) -> None:
    """The account's history in the new thread; if Slack refuses it, it is owed, and the sweep
    posts it (`retry_histories`) until Slack takes it."""
    try:
        slack.post_history(channel_id, ts, view)
    except Exception as exc:
        log.warning(
            "escalation %s posted without its history (%s): the sweep posts it", escalation_id, exc
        )
        error = slack_retries.noted(slack_error(exc), outcome_unknown(exc))
        owe(runtime.writes, HISTORY, channel_id, ts, error, escalation_id=escalation_id)


def retry_histories(runtime: Runtime, slack: EscalationPort) -> list[int]:
    """Post the histories Slack refused into their threads, each when its backoff has passed.
    Returns the escalation ids whose history is in its thread now."""
    done = []
    with runtime.sessions() as session:
        owed = slack_retries.due(session, HISTORY, runtime.clock.now())
    for retry in owed:
        try:
            assert retry.escalation_id is not None
            with runtime.sessions() as session:
                view = thread_view.view(
                    session, retry.escalation_id, runtime.today(), runtime.settings.timezone
                )
            # after a try whose outcome is unknown, the parts Slack took are kept, not posted again
            slack.post_history(
                retry.channel, retry.ts, view, maybe_posted=slack_retries.in_doubt(retry.last_error)
            )
        except Exception as exc:
            error = slack_retries.noted(slack_error(exc), outcome_unknown(exc))
            slack_retries.refused_again(runtime, retry, error)
            continue
        slack_retries.paid(runtime, retry.id)
        done.append(retry.escalation_id)
    return done


def _thread_of_another(session: Session, escalation: Escalation) -> tuple[str, str] | None:
    other = session.scalars(
        select(Escalation)
        .where(
            Escalation.customer_id == escalation.customer_id,
            Escalation.id != escalation.id,
            Escalation.state.in_(service.OPEN_STATES),
            Escalation.slack_thread_ts.is_not(None),
        )
        .order_by(Escalation.id)
    ).first()
    if other is None or not other.slack_channel or not other.slack_thread_ts:
        return None
    return other.slack_channel, other.slack_thread_ts


def redraw(
    session: Session, slack: EscalationPort, escalation_id: int, today: date, timezone: str
) -> None:
    """Draw the parent message again from the escalation's state when it is sent, never older
    than a redraw already applied (two decisions in quick succession: the first one's redraw,
    answered late, must not overwrite the second's), through the message's version
    (bot/core/message_versions.py)."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or not escalation.slack_thread_ts or not escalation.slack_channel:
        return
    channel, ts = escalation.slack_channel, escalation.slack_thread_ts

    def draw(fresh: Session) -> None:
        view = thread_view.view(fresh, escalation_id, today, timezone)
        slack.update_escalation(channel, ts, view)

    engine = session.get_bind()
    assert isinstance(engine, Engine)
    message_versions.draw_newest(engine, channel, ts, draw)


def after_decision(
    session: Session,
    slack: EscalationPort,
    escalation_id: int,
    text: Mrkdwn,
    today: date,
    timezone: str,
) -> None:
    """Re-draw the parent message after a person's decision and say what happened in its thread."""
    redraw(session, slack, escalation_id, today, timezone)
    escalation = session.get(Escalation, escalation_id)
    if escalation and escalation.slack_channel and escalation.slack_thread_ts:
        slack.post_in_thread(escalation.slack_channel, escalation.slack_thread_ts, text)


def raise_unclaimed(runtime: Runtime, slack: EscalationPort, ids: list[int]) -> list[int]:
    """Mention the owner again in each of these threads (open, nobody claimed them). Each is
    marked raised in a short write before Slack is called, so no other sweep raises it too, and
    given back if Slack refuses."""
    raised = []
    for escalation_id in ids:
        try:
            if _raise_one(runtime, slack, escalation_id):
                raised.append(escalation_id)
        except Exception:
            log.exception("escalation %s not raised again", escalation_id)
    return raised


def _raise_one(runtime: Runtime, slack: EscalationPort, escalation_id: int) -> bool:
    now = runtime.clock.now()
    with runtime.writing() as session:
        escalation = session.get(Escalation, escalation_id)
        if escalation is None or escalation.state != "open":
            return False
        assert escalation.slack_channel and escalation.slack_thread_ts
        before = escalation.raised_at
        marked = session.execute(
            update(Escalation)
            .where(
                Escalation.id == escalation_id,
                Escalation.state == "open",
                Escalation.raised_at.is_(None)
                if before is None
                else Escalation.raised_at == before,
            )
            .values(raised_at=now)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            return False  # claimed, resolved or raised meanwhile
        channel, thread_ts = escalation.slack_channel, escalation.slack_thread_ts
        who = mention(escalation.owner_slack_id) if escalation.owner_slack_id else HERE
        hours = int((now - escalation.opened_at).total_seconds() // 3600)
        customer_id = escalation.customer_id
    try:
        slack.post_in_thread(
            channel,
            thread_ts,
            mrkdwn(
                who,
                f" this has waited {hours} hours without anyone claiming it. "
                "Claim it, or resolve it if nothing is needed.",
            ),
        )
    except Exception:
        with runtime.writing() as session:  # not raised after all: the next sweep tries again
            session.execute(
                update(Escalation)
                .where(Escalation.id == escalation_id, Escalation.raised_at == now)
                .values(raised_at=before)
                .execution_options(synchronize_session=False)
            )
        raise
    with runtime.writing() as session:
        audit.record(
            session,
            now,
            "escalation.raised",
            customer_id=customer_id,
            payload={"escalation": escalation_id, "waited_hours": hours},
        )
    return True
