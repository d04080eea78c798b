"""A Stripe event naming a payment arbot never recorded (status "unmatched",
bot/payments/stripe_events.py) is money no customer's escalation can carry: the finance channel
is told, durably, as a withdrawal of trust is (bot/learning/trust_notices.py).

The notice is owed (`stripe.unmatched_owed`, its text in the payload) in the transaction that
stores the event, so Stripe's 2xx never outruns it. It is posted after that commit by the webhook
and, when Slack refused it or the process died first, by the sweep. Each is claimed first
(`stripe.unmatched_posting`, under a lock), so the webhook and the sweep, or two replicas, never
both post it; `stripe.unmatched_posted` records that Slack took it. A claim that did not end in a
post is tried again after the shared backoff, growing with the claims: 2, 4, 8, then 15 minutes.
A failed post is recorded with Slack's answer (`stripe.unmatched_refused`), so one Slack refuses
until a person acts reaches /healthz and `arbot doctor` (bot/core/slack_refusals.py). The notice
names its Stripe event in its metadata: after a try whose outcome is unknown (its answer lost, a
server error, the process stopped while posting), the channel's recent messages are read first
and a notice Slack has is kept, not posted again (an install that may not read the channel posts
it as before).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit, slack_refusals
from bot.core.locks import schema_lock
from bot.core.models import Event
from bot.core.runtime import Runtime
from bot.core.slack_retries import backoff
from integrations.base.mrkdwn import Mrkdwn, mrkdwn
from integrations.base.slack import SlackPort, Tag
from integrations.errors import outcome_unknown, slack_error

log = logging.getLogger(__name__)

LOCK = "arbot stripe unmatched notices"
OWED = slack_refusals.NOTICE_OWED  # the finance channel must hear of this event (`text`)
POSTING = slack_refusals.NOTICE_POSTING  # a job claimed the notice and is posting it
POSTED = slack_refusals.NOTICE_POSTED  # Slack took it
REFUSED = slack_refusals.NOTICE_REFUSED  # a post failed, with Slack's answer (for /healthz)
KINDS = (OWED, POSTING, POSTED, REFUSED)
TAG = "stripe_unmatched"  # the notice names its Stripe event in its metadata


@dataclass(frozen=True)
class Notice:
    owed: int  # the `stripe.unmatched_owed` event
    stripe_event: str
    text: Mrkdwn
    maybe_posted: bool = False  # an earlier try's outcome is unknown: Slack may have it


def owe(session: Session, now: datetime, stripe_event: str, text: str) -> None:
    """The finance channel is owed this, in the caller's transaction (the one storing the event)."""
    audit.record(session, now, OWED, payload={"event": stripe_event, "text": text})


def post_waiting(runtime: Runtime, slack: SlackPort, channel: str) -> list[str]:
    """Post each notice not told yet (claimed first); a refusal is logged and the sweep tries
    again after its backoff. Returns the Stripe events told."""
    with runtime.sessions() as session:  # most sweeps find nothing: no write for them
        if not _untold(session):
            return []
    with runtime.writing() as session:
        notices = claim(session, runtime.clock.now())
    done = []
    for notice in notices:
        try:
            slack.post_text(
                channel,
                notice.text,
                tag=Tag(TAG, notice.stripe_event),
                maybe_posted=notice.maybe_posted,
            )
        except Exception as exc:
            log.exception(
                "Stripe event %s: the finance channel was not told; the sweep tries again",
                notice.stripe_event,
            )
            with runtime.writing() as session:  # a refusal only a person ends: /healthz says so
                audit.record(
                    session,
                    runtime.clock.now(),
                    REFUSED,
                    payload={
                        "owed": notice.owed,
                        "event": notice.stripe_event,
                        "channel": channel,
                        "error": slack_error(exc),
                        "in_doubt": outcome_unknown(exc),
                    },
                )
            continue
        with runtime.writing() as session:
            audit.record(
                session,
                runtime.clock.now(),
                POSTED,
                payload={"owed": notice.owed, "event": notice.stripe_event, "channel": channel},
            )
        done.append(notice.stripe_event)
    return done


def _events(session: Session) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.customer_id.is_(None), Event.kind.in_(KINDS))
            .order_by(Event.id)
        )
    )


def _untold(session: Session) -> bool:
    events = _events(session)
    told = {_owed(e) for e in events if e.kind == POSTED}
    return any(e.kind == OWED and e.id not in told for e in events)


def claim(session: Session, now: datetime) -> list[Notice]:
    """The notices not told yet and not being told by another job (or whose last try's backoff
    has passed), each claimed with a `stripe.unmatched_posting` event."""
    schema_lock(session, LOCK)
    events = _events(session)
    told = {_owed(e) for e in events if e.kind == POSTED}
    tries: dict[int, list[datetime]] = {}
    settled: dict[int, bool] = {}  # whether the last try ended in Slack's own refusal
    for event in events:
        if event.kind == POSTING:
            tries.setdefault(_owed(event), []).append(event.at)
            settled[_owed(event)] = False  # the process may have stopped while posting
        elif event.kind == REFUSED:
            settled[_owed(event)] = not (event.payload or {}).get("in_doubt", True)
    notices = []
    for event in events:
        if event.kind != OWED or event.id in told:
            continue
        tried = tries.get(event.id, [])
        if tried and max(tried) > now - backoff(len(tried) + 1):
            continue  # being posted now, or refused a moment ago
        payload = event.payload or {}
        stripe_event = str(payload.get("event"))
        audit.record(session, now, POSTING, payload={"owed": event.id, "event": stripe_event})
        text = mrkdwn(":warning: ", str(payload["text"]))
        maybe_posted = bool(tried) and not settled.get(event.id, False)
        notices.append(Notice(event.id, stripe_event, text, maybe_posted))
    return notices


def _owed(event: Event) -> int:
    return int((event.payload or {}).get("owed") or 0)
