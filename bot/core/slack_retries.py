"""What Slack refused and must still get: a redraw of a posted message, an escalation's history in
its thread, the notes owed to an escalation's thread (reasons added once it was posted:
bot/escalations/thread_notes.py). Each is owed in a row of `slack_retries` (one per kind and
message) and retried by the sweep with backoff until Slack takes it; then the row is deleted. The
backoff is shared with the plan's own posting (bot/planning/plan_posts.py).

An answer that will not pass by itself (the bot taken out of the channel, the channel archived or
gone, a token Slack no longer takes: FOR_A_PERSON) is still retried, so what is owed goes out once
someone has put it right, but it is also logged as an error, and named with what to do in
/healthz (`slack_refused`, scheduler/health.py) and by `arbot doctor`, until Slack takes it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.models import SlackRetry
from bot.core.runtime import Runtime

log = logging.getLogger(__name__)

FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(minutes=15)
REDRAW = "redraw"
# Answers a retry cannot change.
NEVER_TAKEN = frozenset(
    {"message_not_found", "cant_update_message", "invalid_blocks", "msg_too_long", "no_text"}
)
# Answers no retry changes until a person acts, with what they should do; retried all the same.
FOR_A_PERSON = {
    "not_in_channel": "the bot is not in the channel: type /invite @arbot in it",
    "channel_not_found": (
        "Slack cannot find the channel, or the bot cannot see it (a private channel): invite "
        "@arbot to it, or set ARBOT_FINANCE_CHANNEL / ARBOT_ESCALATION_CHANNEL to a channel's id"
    ),
    "is_archived": (
        "the channel is archived: unarchive it (and /invite @arbot), or set "
        "ARBOT_FINANCE_CHANNEL / ARBOT_ESCALATION_CHANNEL to another channel"
    ),
    "invalid_auth": (
        "Slack does not take SLACK_BOT_TOKEN: set it to the app's current Bot User OAuth Token "
        "(`arbot doctor` checks it)"
    ),
}
HISTORY = "history"
# How `last_error` starts when the last try's outcome is unknown (its answer lost, a server error,
# the process stopped while posting): Slack may have taken it, so the next try looks first.
IN_DOUBT = "in doubt: "
POSTING = IN_DOUBT + "being posted"  # set when a try is claimed; replaced by its outcome


def noted(error: str, unknown: bool) -> str:
    """The `last_error` of a failed try: Slack's answer, marked IN_DOUBT when Slack may have
    posted all the same."""
    return IN_DOUBT + error if unknown else error


def in_doubt(error: str | None) -> bool:
    """Whether the last try of what is owed may have reached Slack though it failed."""
    return bool(error and error.startswith(IN_DOUBT))


NOTE = "note"  # an escalation's thread is owed notes (bot/escalations/thread_notes.py)


def backoff(failures: int) -> timedelta:
    """How long to wait after `failures` refusals in a row: 1, 2, 4, 8, then 15 minutes."""
    doubled: int = 2 ** max(failures - 1, 0)
    return min(FIRST_WAIT * doubled, LONGEST_WAIT)


def owe(
    writes: sessionmaker[Session],
    kind: str,
    channel: str,
    ts: str,
    error: str,
    *,
    escalation_id: int | None = None,
) -> None:
    """Remember in a short write that Slack still needs this, for the next sweep; what is owed
    already stays owed once (a redraw draws the message as it is then)."""
    try:
        with writes.begin() as session:
            session.add(_owed_row(kind, channel, ts, escalation_id, attempts=1, why=error))
    except IntegrityError:
        return
    _tell_a_person(kind, channel, ts, error)


def _owed_row(
    kind: str, channel: str, ts: str, escalation_id: int | None, *, attempts: int, why: str
) -> SlackRetry:
    """A row owing Slack this message's work, due at the next sweep."""
    return SlackRetry(
        kind=kind,
        channel=channel,
        ts=ts,
        escalation_id=escalation_id,
        attempts=attempts,
        next_try_at=None,
        last_error=why[:500],
    )


def _tell_a_person(kind: str, channel: str, ts: str, error: str) -> None:
    if error in FOR_A_PERSON:
        log.error(
            "Slack refuses the %s of %s/%s (%s) until someone acts: %s",
            kind,
            channel,
            ts,
            error,
            FOR_A_PERSON[error],
        )


def owe_with(
    session: Session,
    kind: str,
    channel: str,
    ts: str,
    why: str,
    *,
    escalation_id: int | None = None,
) -> None:
    """Owe it in the caller's transaction, with the change that makes it owed: both commit, or
    neither. A row already owed is locked (FOR UPDATE on PostgreSQL), so a sweep deleting it once
    Slack took what it owed waits for this transaction and sees what it adds."""
    held = session.scalar(
        select(SlackRetry.id)
        .where(SlackRetry.kind == kind, SlackRetry.channel == channel, SlackRetry.ts == ts)
        .with_for_update()
    )
    if held is not None:
        return
    try:
        with session.begin_nested():
            session.add(_owed_row(kind, channel, ts, escalation_id, attempts=0, why=why))
    except IntegrityError:  # owed meanwhile by another transaction: posted all the same
        return


def due(session: Session, kind: str, now: datetime) -> list[SlackRetry]:
    return list(
        session.scalars(
            select(SlackRetry)
            .where(
                SlackRetry.kind == kind,
                or_(SlackRetry.next_try_at.is_(None), SlackRetry.next_try_at <= now),
            )
            .order_by(SlackRetry.id)
        )
    )


def owed(session: Session, kind: str) -> list[tuple[str, str]]:
    """Every message owed this kind of retry, due or waiting for its backoff: channel and ts."""
    return [
        (channel, ts)
        for channel, ts in session.execute(
            select(SlackRetry.channel, SlackRetry.ts).where(SlackRetry.kind == kind)
        )
    ]


def waiting_for_a_person(session: Session) -> list[SlackRetry]:
    """What is owed to Slack whose last answer will not change until a person acts, oldest
    first."""
    return list(
        session.scalars(
            select(SlackRetry)
            .where(SlackRetry.last_error.in_(FOR_A_PERSON))
            .order_by(SlackRetry.id)
        )
    )


def paid(runtime: Runtime, retry_id: int) -> None:
    """Slack took it."""
    with runtime.writing() as session:
        session.execute(delete(SlackRetry).where(SlackRetry.id == retry_id))


def refused_again(runtime: Runtime, retry: SlackRetry, error: str) -> None:
    """Slack refused it once more: wait longer. An answer no retry can change (the message is
    gone, or Slack will never take these blocks) ends the retries, with an error in the log."""
    if error in NEVER_TAKEN:
        log.error(
            "Slack will not take the %s of %s/%s (%s): no more retries",
            retry.kind,
            retry.channel,
            retry.ts,
            error,
        )
        paid(runtime, retry.id)
        return
    _tell_a_person(retry.kind, retry.channel, retry.ts, error)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(
            update(SlackRetry)
            .where(SlackRetry.id == retry.id)
            .values(
                attempts=retry.attempts + 1,
                next_try_at=now + backoff(retry.attempts + 1),
                last_error=error[:500],
            )
            .execution_options(synchronize_session=False)
        )
