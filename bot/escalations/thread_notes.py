"""The notes an escalation's Slack thread is owed: each reason added once the escalation was in
Slack (a refund, a send in doubt, a dispute, a reply, a failed send...), so the person watching
the thread hears of it, and each note written for it (what a payment paid: `owe_note`, an
`escalation.note_owed` event with its text).

`service.open_or_add` records the reason (an `escalation.added` event marked `thread_note`) and
owes its thread a `note` row of slack_retries in the same transaction. `post_owed` posts what a
thread is owed: the entry point that added the reason calls it after its commit, and the sweep
calls it until Slack takes every note, with the shared backoff after a refusal. A thread is
claimed first in a short write (its row's `next_try_at` set a lease ahead, as slack_claims
does), so the flow and the sweep, or two replicas, never both post it; each note Slack took is
recorded at once (an `escalation.noted` event), so a retry, after a refusal or a crash part-way,
posts only the notes Slack did not take. Each note names its event in its metadata: after a try
whose outcome is unknown (its answer lost, a server error, the process stopped while posting),
the thread's replies are read first and a note Slack has is kept, not posted again (an install
that may not read the channel posts it as before). The row is deleted once nothing is owed, under its row
lock, so a reason added meanwhile keeps it owed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.core import audit, slack_retries
from bot.core.labels import reason_label
from bot.core.models import Escalation, Event, InboundMessage, SlackRetry
from bot.core.runtime import Runtime
from bot.core.slack_claims import CLAIM_LEASE
from bot.core.slack_retries import NOTE
from bot.escalations import service
from bot.escalations.notes import reply_note
from bot.escalations.service import ADDED, THREAD_NOTE
from integrations.base.mrkdwn import Mrkdwn, clip, mention, mrkdwn
from integrations.base.slack import EscalationPort, Tag
from integrations.errors import outcome_unknown, slack_error

log = logging.getLogger(__name__)

NOTED = "escalation.noted"  # Slack took the note of an `escalation.added` event (`added`)
WRITTEN = "escalation.note_owed"  # a note written already (a payment's), its text in `text`
NOTE_TAG = "thread_note"  # a note names its event (added or note_owed) in its metadata
LONGEST = 3000  # characters of a note: Slack's limit for a section's text
ROUNDS = 3  # a thread told again at once when reasons were added while it was being told
# Reasons whose note mentions the escalation's owner: a missed instalment ends the plan they
# agreed, and only they can take it up with the customer.
CALLS_THE_OWNER = frozenset({"missed_instalment"})


@dataclass(frozen=True)
class Note:
    added: int  # the `escalation.added` event
    escalation_id: int
    customer_id: int
    text: Mrkdwn


def also_needs(reason: str, detail: str | None, owner: str | None = None) -> Mrkdwn:
    """A reason added, in words: ":rotating_light: Also needs a person: <reason>: <detail>"; a
    reason the owner must act on (CALLS_THE_OWNER) mentions `owner` first (a Slack id as a live
    mention, anything else as escaped text)."""
    who = mrkdwn(mention(owner), " ") if owner and reason in CALLS_THE_OWNER else ""
    told = mrkdwn(":rotating_light: ", who, "Also needs a person: ", reason_label(reason))
    return clip(mrkdwn(told, ": ", detail) if detail else told, LONGEST)


def owe_note(session: Session, customer_id: int, text: Mrkdwn, now: datetime) -> bool:
    """Owe the customer's open escalation thread this note (what a payment changed), in the
    caller's transaction, for `post_owed` to post now or the sweep once Slack takes it. False
    when the customer has no escalation thread to say it in."""
    escalation = service.open_for(session, customer_id)
    channel, ts = (
        (escalation.slack_channel, escalation.slack_thread_ts) if escalation else (None, None)
    )
    if escalation is None or not channel or not ts:
        return False
    payload = {"escalation": escalation.id, THREAD_NOTE: True, "text": str(text)}
    audit.record(session, now, WRITTEN, customer_id=customer_id, payload=payload)
    slack_retries.owe_with(session, NOTE, channel, ts, "a note", escalation_id=escalation.id)
    return True


def owe_added_while_posting(session: Session, escalation: Escalation) -> None:
    """The escalation's thread was just stored: the reasons added while it was being posted (its
    history was read before them) are owed to it, in the same transaction."""
    channel, ts = escalation.slack_channel, escalation.slack_thread_ts
    if channel and ts and _unposted(session, channel, ts):
        slack_retries.owe_with(
            session,
            NOTE,
            channel,
            ts,
            "reasons added while it was posted",
            escalation_id=escalation.id,
        )


def post_owed(runtime: Runtime, slack: EscalationPort) -> int:
    """Post the notes of every thread owed some and due (never refused, or its backoff passed).
    Returns how many notes Slack took."""
    with runtime.sessions() as session:
        owed = slack_retries.due(session, NOTE, runtime.clock.now())
    posted = 0
    for retry in owed:
        for _ in range(ROUNDS):
            taken, again = _tell_thread(runtime, slack, retry)
            posted += taken
            if not again:
                break
    return posted


def _tell_thread(runtime: Runtime, slack: EscalationPort, retry: SlackRetry) -> tuple[int, bool]:
    """Post what this thread is owed, if this process may. Returns how many notes Slack took, and
    whether more were added meanwhile (to tell at once)."""
    now = runtime.clock.now()
    lease = now + CLAIM_LEASE
    with runtime.writing() as session:
        before = session.scalar(select(SlackRetry.last_error).where(SlackRetry.id == retry.id))
        taken = session.execute(
            update(SlackRetry)
            .where(
                SlackRetry.id == retry.id,
                or_(SlackRetry.next_try_at.is_(None), SlackRetry.next_try_at <= now),
            )
            .values(next_try_at=lease, last_error=slack_retries.POSTING)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return 0, False  # told now by another process, or told already
        notes = _unposted(session, retry.channel, retry.ts)
    # The last try failed without Slack's own answer, or its process stopped while posting:
    # a note Slack took then is found in the thread (by its metadata) instead of posted again.
    maybe_posted = slack_retries.in_doubt(before)
    posted = 0
    for note in notes:
        try:
            slack.post_in_thread(
                retry.channel,
                retry.ts,
                note.text,
                tag=Tag(NOTE_TAG, str(note.added)),
                maybe_posted=maybe_posted,
            )
        except Exception as exc:
            error = slack_error(exc)
            log.warning(
                "note %s for escalation %s not posted (%s): the sweep posts it",
                note.added,
                note.escalation_id,
                error,
            )
            slack_retries.refused_again(
                runtime, retry, slack_retries.noted(error, outcome_unknown(exc))
            )
            return posted, False
        with runtime.writing() as session:  # taken: never posted again
            audit.record(
                session,
                runtime.clock.now(),
                NOTED,
                customer_id=note.customer_id,
                payload={"escalation": note.escalation_id, "added": note.added},
            )
        posted += 1
    return posted, _settle(runtime, retry.id)


def _settle(runtime: Runtime, retry_id: int) -> bool:
    """Every note posted: the row is deleted, unless a reason added meanwhile is still owed (then
    it is due again at once, and True). The row is locked first, so a transaction adding a
    reason either commits before this reads what is owed or finds the row gone and owes anew."""
    with runtime.writing() as session:
        retry = session.scalars(
            select(SlackRetry).where(SlackRetry.id == retry_id).with_for_update()
        ).first()
        if retry is None:
            return False
        if _unposted(session, retry.channel, retry.ts):
            retry.next_try_at = None
            retry.last_error = "reasons added while it was told"  # Slack took every try's
            return True
        session.execute(delete(SlackRetry).where(SlackRetry.id == retry_id))
        return False


def _unposted(session: Session, channel: str, thread_ts: str) -> list[Note]:
    """The notes this thread is owed and Slack has not taken, oldest first."""
    sharing: dict[int, int] = {
        escalation_id: customer_id
        for escalation_id, customer_id in session.execute(
            select(Escalation.id, Escalation.customer_id).where(
                Escalation.slack_channel == channel, Escalation.slack_thread_ts == thread_ts
            )
        )
    }
    if not sharing:
        return []
    events = list(
        session.scalars(
            select(Event)
            .where(
                Event.customer_id.in_(set(sharing.values())),
                Event.kind.in_((ADDED, WRITTEN, NOTED)),
            )
            .order_by(Event.id)
        )
    )
    noted = {(e.payload or {}).get("added") for e in events if e.kind == NOTED}
    notes = []
    for event in events:
        payload = event.payload or {}
        escalation_id = payload.get("escalation")
        if (
            event.kind not in (ADDED, WRITTEN)
            or not payload.get(THREAD_NOTE)
            or escalation_id not in sharing
            or event.id in noted
        ):
            continue
        notes.append(Note(event.id, escalation_id, sharing[escalation_id], _text(session, event)))
    return notes


def _text(session: Session, event: Event) -> Mrkdwn:
    """The note: as written when it was owed; the reply itself, quoted, when a reply is the
    reason; else the reason in words."""
    payload = event.payload or {}
    if isinstance(payload.get("text"), str):
        return clip(Mrkdwn(payload["text"]), LONGEST)
    inbound_id = payload.get("inbound")
    message = session.get(InboundMessage, inbound_id) if isinstance(inbound_id, int) else None
    if message is not None:
        return clip(reply_note(session, message.id, message.label), LONGEST)
    escalation_id = payload.get("escalation")
    escalation = session.get(Escalation, escalation_id) if isinstance(escalation_id, int) else None
    owner = (escalation.owner_slack_id if escalation is not None else None) or payload.get("owner")
    return also_needs(str(payload.get("reason") or ""), payload.get("detail"), owner)
