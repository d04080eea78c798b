"""What Slack keeps refusing until a person acts (bot/core/slack_retries.FOR_A_PERSON: the bot out
of the channel, the channel archived or gone, a token Slack does not take), gathered for /healthz
(`slack_refused`, scheduler/health.py) and `arbot doctor`.

Three things are owed to Slack and retried until it takes them: a row of slack_retries (a redraw,
a history, a thread note), an escalation's parent message (an open escalation with no thread,
posted again by every sweep: bot/escalations/posting.py) and the finance channel's notice of a
Stripe event naming no payment of arbot's (bot/payments/unmatched_notices.py). The last two
record each failed attempt as an event (ESCALATION_REFUSED, NOTICE_REFUSED, with Slack's answer),
and one is named here while its last attempt ended in such an answer and it is still not in
Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Escalation, Event
from bot.core.slack_retries import FOR_A_PERSON, backoff, waiting_for_a_person

# A post of an escalation's parent message failed (payload: escalation, channel, error).
ESCALATION_REFUSED = "escalation.post_refused"
# The same post failed without Slack's own answer (bot/escalations/posting.IN_DOUBT): the last
# attempt's outcome is then unknown, not a refusal.
ESCALATION_IN_DOUBT = "escalation.post_in_doubt"
# A post of the notice of an unmatched Stripe event failed (payload: owed, event, channel,
# error), and the notice's own events (bot/payments/unmatched_notices.py).
NOTICE_REFUSED = "stripe.unmatched_refused"
NOTICE_OWED = "stripe.unmatched_owed"
NOTICE_POSTING = "stripe.unmatched_posting"
NOTICE_POSTED = "stripe.unmatched_posted"
OPEN_STATES = ("open", "claimed")


@dataclass(frozen=True)
class Refused:
    what: str  # "redraw", "history", "note", "escalation" or "stripe_unmatched"
    channel: str
    ts: str | None  # the message owed a redraw, a history or a note; None for a new post
    error: str
    attempts: int
    next_try_at: datetime | None  # None: at the next sweep

    @property
    def to_do(self) -> str:
        return FOR_A_PERSON.get(self.error, "")


def waiting(session: Session) -> list[Refused]:
    """Everything owed to Slack whose last answer will not change until a person acts."""
    found = [
        Refused(r.kind, r.channel, r.ts, r.last_error or "", r.attempts, r.next_try_at)
        for r in waiting_for_a_person(session)
    ]
    return found + _escalations(session) + _notices(session)


def _payload(event: Event) -> dict[str, Any]:
    return event.payload or {}


def _escalations(session: Session) -> list[Refused]:
    unposted = dict(
        session.execute(
            select(Escalation.id, Escalation.customer_id).where(
                Escalation.state.in_(OPEN_STATES), Escalation.slack_thread_ts.is_(None)
            )
        ).all()
    )
    if not unposted:
        return []
    tries: dict[int, list[Event]] = {}
    for event in session.scalars(
        select(Event)
        .where(
            Event.customer_id.in_(set(unposted.values())),
            Event.kind.in_((ESCALATION_REFUSED, ESCALATION_IN_DOUBT)),
        )
        .order_by(Event.id)
    ):
        escalation_id = _payload(event).get("escalation")
        if escalation_id in unposted:
            tries.setdefault(escalation_id, []).append(event)
    found = []
    for events in tries.values():
        last = _payload(events[-1])
        if events[-1].kind == ESCALATION_REFUSED and last.get("error") in FOR_A_PERSON:
            refusals = sum(e.kind == ESCALATION_REFUSED for e in events)
            found.append(
                Refused("escalation", str(last.get("channel")), None, last["error"], refusals, None)
            )
    return found


def _notices(session: Session) -> list[Refused]:
    events = list(
        session.scalars(
            select(Event)
            .where(
                Event.customer_id.is_(None),
                Event.kind.in_((NOTICE_OWED, NOTICE_POSTING, NOTICE_POSTED, NOTICE_REFUSED)),
            )
            .order_by(Event.id)
        )
    )
    told = {_payload(e).get("owed") for e in events if e.kind == NOTICE_POSTED}
    claims: dict[Any, list[Event]] = {}
    last_refusal: dict[Any, Event] = {}
    for event in events:
        owed = _payload(event).get("owed")
        if event.kind == NOTICE_POSTING:
            claims.setdefault(owed, []).append(event)
        elif event.kind == NOTICE_REFUSED:
            last_refusal[owed] = event
    found = []
    for owed, refusal in last_refusal.items():
        payload = _payload(refusal)
        tried = claims.get(owed) or [refusal]
        if owed in told or payload.get("error") not in FOR_A_PERSON or tried[-1].id > refusal.id:
            continue  # told since, refused for a passing reason, or being tried again now
        found.append(
            Refused(
                "stripe_unmatched",
                str(payload.get("channel")),
                None,
                payload["error"],
                len(tried),
                tried[-1].at + backoff(len(tried) + 1),
            )
        )
    return found
