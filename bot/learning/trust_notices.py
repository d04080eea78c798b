"""Trust taken back is told in the finance channel at once: which step (in words), why, since
when it had trust, and that its reminders need a person's approval again from the next plan.

The withdrawal itself (`playbook.trust_withdrawn`, bot/learning/trust.py) is the notice to post.
It is posted after the transaction that took the trust back has committed, from whichever entry
point took it (the Edit form in Slack, the plan) and from the sweep of `arbot serve`, which posts
any Slack refused. Each is claimed first (`trust.notice_posting`, under a lock), so two processes
or a retry never post one twice; `trust.notice_posted` records that Slack took it. A claim that
did not end in a post (Slack refused it, the process died) is tried again after a backoff that
grows with the claims: 2, 4, 8, then 15 minutes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.locks import schema_lock
from bot.core.models import Event
from bot.core.runtime import Runtime
from bot.core.slack_retries import backoff
from bot.learning.proposal import ladder_words
from bot.learning.trust import TRUST_KEEPER, WITHDRAWN
from integrations.base.mrkdwn import Mrkdwn, mrkdwn
from integrations.base.slack import SlackPort

log = logging.getLogger(__name__)

LOCK = "arbot trust notices"
POSTING = "trust.notice_posting"  # a job claimed the notice and is posting it
POSTED = "trust.notice_posted"  # Slack took it
TOLD_WITHIN = timedelta(days=7)  # older withdrawals are not told (the plan header shows a week)


@dataclass(frozen=True)
class Notice:
    withdrawal: int  # the playbook.trust_withdrawn event
    text: Mrkdwn


def notice_text(payload: dict[str, Any]) -> Mrkdwn:
    """The message: the step in words, why, since when it had trust, and what happens now."""
    step = str(payload.get("label") or payload.get("step"))
    ladder = ladder_words(str(payload.get("ladder")))
    since = _date(payload.get("since"))
    had = f" It had been approved automatically since {since}." if since else ""
    waiting = len(payload.get("back_to_planned") or [])
    back = (
        f" The {waiting} of its reminders approved automatically and not yet sent wait for a "
        "click again."
        if waiting > 1
        else " The one of its reminders approved automatically and not yet sent waits for a "
        "click again."
        if waiting == 1
        else ""
    )
    return mrkdwn(
        ":no_entry: *Trust taken back* from the ",
        step,
        ", for ",
        ladder,
        ": ",
        str(payload.get("why")),
        ".",
        had,
        " From the next plan its reminders need a person's approval again (Approve, Edit or "
        "Skip on their cards).",
        back,
    )


def _date(value: Any) -> str | None:
    if not value:
        return None
    try:
        return f"{datetime.fromisoformat(str(value)):%-d %b %Y}"
    except ValueError:
        return None


def post_waiting(runtime: Runtime, slack: SlackPort, channel: str) -> list[int]:
    """Post each withdrawal not told yet (claimed first, after the write that took the trust
    back has committed); a refusal is logged and the sweep tries again after its backoff.
    Returns the withdrawals posted."""
    with runtime.sessions() as session:  # most sweeps find nothing: no write for them
        if not _untold(session, runtime.clock.now()):
            return []
    with runtime.writing() as session:
        notices = claim(session, runtime.clock.now())
    done = []
    for notice in notices:
        try:
            slack.post_text(channel, notice.text)
        except Exception:
            log.exception(
                "trust withdrawal %s not told in Slack; the sweep tries again", notice.withdrawal
            )
            continue
        with runtime.writing() as session:
            audit.record(
                session,
                runtime.clock.now(),
                POSTED,
                actor=TRUST_KEEPER,
                payload={"withdrawal": notice.withdrawal, "channel": channel},
            )
        done.append(notice.withdrawal)
    return done


def _untold(session: Session, now: datetime) -> bool:
    """Whether a withdrawal of the last week has not been told yet."""
    withdrawn: set[int] = set()
    told: set[int] = set()
    for event in session.scalars(
        select(Event)
        .where(Event.customer_id.is_(None), Event.kind.in_((WITHDRAWN, POSTED)))
        .where(Event.at >= now - TOLD_WITHIN)
    ):
        if event.kind == WITHDRAWN:
            withdrawn.add(event.id)
        else:
            told.add(_withdrawal(event))
    return bool(withdrawn - told)


def claim(session: Session, now: datetime) -> list[Notice]:
    """The withdrawals of the last week not told yet and not being told by another job (or whose
    last try's backoff has passed), each claimed with a `trust.notice_posting` event."""
    schema_lock(session, LOCK)
    events = list(
        session.scalars(
            select(Event)
            .where(Event.customer_id.is_(None), Event.kind.in_((WITHDRAWN, POSTING, POSTED)))
            .where(Event.at >= now - TOLD_WITHIN - timedelta(days=1))
            .order_by(Event.id)
        )
    )
    told = {_withdrawal(e) for e in events if e.kind == POSTED}
    tries: dict[int, list[datetime]] = {}
    for event in events:
        if event.kind == POSTING:
            tries.setdefault(_withdrawal(event), []).append(event.at)
    notices = []
    for event in events:
        if event.kind != WITHDRAWN or event.id in told or event.at < now - TOLD_WITHIN:
            continue
        tried = tries.get(event.id, [])
        if tried and max(tried) > now - backoff(len(tried) + 1):
            continue  # being posted now, or refused a moment ago
        audit.record(session, now, POSTING, actor=TRUST_KEEPER, payload={"withdrawal": event.id})
        notices.append(Notice(event.id, notice_text(event.payload or {})))
    return notices


def _withdrawal(event: Event) -> int:
    return int((event.payload or {}).get("withdrawal") or 0)
