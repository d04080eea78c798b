"""Guardrails from recurring errors, for a person: propose, approve, dismiss, release, show.

The rules are in `bot.learning.guardrail_rules`; the morning plan runs them (`propose_today`)
and posts each new proposal to the finance channel after the plan. A proposal is a
`guardrail.proposed` Event and changes nothing until an approver approves it in Slack:
- a hold keeps the customer out of the plan, with its reason in the plan header's held list and
  in `/ar status`, until someone clicks Release on the card (or, for a hold waiting for a new
  billing contact, until one is added);
- addresses that reached the wrong person are never written to again;
- a person is asked (an escalation thread) for a billing contact.
Dismissing records who and why, and the same guardrail is not proposed again for
SUPPRESS_WEEKS weeks; one still waiting is not proposed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.locks import schema_lock
from bot.core.models import Contact, Customer, Event
from bot.core.runtime import Runtime
from bot.escalations import service as escalations
from bot.learning.guardrail_holds import (
    APPROVED,
    DECISIONS,
    DISMISSED,
    POSTED,
    PROPOSED,
    RELEASED,
    holding,
    payload_text,
    proposal_of,
)
from bot.learning.guardrail_rules import NO_CONTACT, SUPPRESS_WEEKS, Candidate, detect
from bot.ledger.accounts import cancel_waiting
from integrations.base.slack import GuardrailPort, GuardrailView

log = logging.getLogger(__name__)
LOCK = "arbot guardrails"
PROPOSER = "guardrails"
WHY_LIMIT = 500
POSTING = "guardrail.posting"  # a job is posting the proposal to Slack now
CLAIM_FOR = timedelta(minutes=10)  # after which another job may try again


@dataclass(frozen=True)
class GuardrailDecision:
    changed: bool
    message: str  # what to tell the person who clicked
    cancelled: tuple[int, ...] = ()  # reminders a hold cancelled (their cards to redraw)


# --- proposing --------------------------------------------------------------------------------


def propose_all(session: Session, now: datetime, no_contact: Iterable[int] = ()) -> list[int]:
    """Store each guardrail the errors support as a proposal (its event id), unless one with the
    same key still waits, or a person dismissed it within SUPPRESS_WEEKS weeks (for a customer
    with no contact: decided either way within that time, so it is asked once)."""
    schema_lock(session, LOCK)
    waiting, last = _keys(session)
    window = now - timedelta(weeks=SUPPRESS_WEEKS)
    stored = []
    for candidate in detect(session, now, no_contact, lambda key: _at(last.get(key))):
        decided = last.get(candidate.key)
        if candidate.key in waiting:
            continue
        recent = decided is not None and decided.at > window
        if (
            recent
            and decided is not None
            and (decided.kind == DISMISSED or candidate.rule == NO_CONTACT)
        ):
            continue
        stored.append(_store(session, candidate, now))
        waiting.add(candidate.key)
    return stored


def _at(event: Event | None) -> datetime | None:
    return event.at if event is not None else None


def _store(session: Session, candidate: Candidate, now: datetime) -> int:
    event = Event(
        at=now,
        actor=PROPOSER,
        kind=PROPOSED,
        customer_id=candidate.customer_id,
        payload=candidate.payload(),
    )
    session.add(event)
    session.flush()
    return event.id


def _keys(session: Session) -> tuple[set[str], dict[str, Event]]:
    """Keys with a proposal still waiting, and each key's latest decision."""
    proposals: dict[int, str] = {}
    decided: dict[int, Event] = {}
    for event in session.scalars(
        select(Event).where(Event.kind.in_((PROPOSED, *DECISIONS))).order_by(Event.id)
    ):
        if event.kind == PROPOSED:
            proposals[event.id] = payload_text(event.payload, "key")
        elif (proposal := proposal_of(event)) is not None:
            decided[proposal] = event
    waiting = {key for pid, key in proposals.items() if pid not in decided}
    last: dict[str, Event] = {}
    for pid, event in decided.items():
        key = proposals.get(pid)
        if key and (key not in last or event.at >= last[key].at):
            last[key] = event
    return waiting, last


def propose_today(runtime: Runtime, no_contact: Iterable[int]) -> list[int]:
    """The morning plan's part, after the plan is stored: propose what the errors support."""
    with runtime.writing() as session:
        return propose_all(session, runtime.clock.now(), no_contact)


def post_waiting(runtime: Runtime, slack: GuardrailPort, channel: str) -> list[int]:
    """Post each waiting proposal not yet in Slack (after the morning plan, and from the sweep
    once the day's plan is all in Slack); a refusal is logged and tried again after CLAIM_FOR.
    Each is claimed first, so two jobs at once never post one twice. Returns those posted."""
    with runtime.writing() as session:
        claimed = _claim_unposted(session, runtime.clock.now())
        views = [view_of(session, proposal_id) for proposal_id in claimed]
    done = []
    for view in views:
        try:
            where, ts = slack.post_guardrail(channel, view)
        except Exception:
            log.exception(
                "guardrail proposal %s not posted; the sweep tries again", view.proposal_id
            )
            continue
        with runtime.writing() as session:
            audit.record(
                session,
                runtime.clock.now(),
                POSTED,
                customer_id=_proposal(session, view.proposal_id).customer_id,
                payload={"proposal": view.proposal_id, "channel": where, "ts": ts},
            )
        done.append(view.proposal_id)
    return done


def _claim_unposted(session: Session, now: datetime) -> list[int]:
    """The waiting proposals not in Slack and not being posted by another job, claimed."""
    schema_lock(session, LOCK)
    events = _events(session, (PROPOSED, POSTED, POSTING, *DECISIONS))  # one read of the log
    done_with = {proposal_of(e) for e in events if e.kind in (POSTED, *DECISIONS)}
    busy = {proposal_of(e) for e in events if e.kind == POSTING and e.at > now - CLAIM_FOR}
    claimed = []
    for event in events:
        if event.kind == PROPOSED and event.id not in done_with and event.id not in busy:
            audit.record(
                session, now, POSTING, customer_id=event.customer_id, payload={"proposal": event.id}
            )
            claimed.append(event.id)
    return claimed


def where_posted(session: Session, proposal_id: int) -> tuple[str, str] | None:
    for event in _events(session, (POSTED,)):
        if proposal_of(event) == proposal_id:
            return payload_text(event.payload, "channel"), payload_text(event.payload, "ts")
    return None


# --- deciding ---------------------------------------------------------------------------------


def approve(
    session: Session, proposal_id: int, by: str, now: datetime, routes: dict[str, str]
) -> GuardrailDecision:
    """Apply the guardrail: stop using the wrong addresses, hold the customer (its waiting
    reminders cancelled), ask a person for a contact; once, whoever clicks second is told."""
    schema_lock(session, LOCK)
    proposal = _proposal(session, proposal_id)
    already = _already(session, proposal_id)
    if already is not None:
        return GuardrailDecision(False, already)
    payload = proposal.payload
    customer = session.get(Customer, proposal.customer_id)
    assert customer is not None
    audit.record(
        session,
        now,
        APPROVED,
        actor=by,
        customer_id=customer.id,
        payload={"proposal": proposal_id, "key": payload_text(payload, "key")},
    )
    for contact_id in payload.get("unusable") or []:
        stopped = session.execute(
            update(Contact)
            .where(
                Contact.id == int(contact_id),
                Contact.customer_id == customer.id,
                Contact.email_unusable_at.is_(None),
            )
            .values(email_unusable_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if stopped.rowcount == 1:  # type: ignore[attr-defined]
            audit.record(
                session,
                now,
                "contact.wrong_person",
                actor=by,
                customer_id=customer.id,
                payload={"contact": int(contact_id), "proposal": proposal_id},
            )
    cancelled: list[int] = []
    if payload.get("hold"):
        cancelled = cancel_waiting(session, customer.id, "paused", now)
    ask = payload_text(payload, "ask")
    if ask:
        escalations.open_or_add(
            session,
            customer.id,
            "contact_needed",
            now,
            detail=ask,
            owner=escalations.owner_for(customer, routes),
            actor=by,
        )
    return GuardrailDecision(True, "", tuple(cancelled))


def dismiss(
    session: Session, proposal_id: int, by: str, why: str, now: datetime
) -> GuardrailDecision:
    """A person says no: nothing changes, and the guardrail is not proposed again for
    SUPPRESS_WEEKS weeks."""
    schema_lock(session, LOCK)
    proposal = _proposal(session, proposal_id)
    already = _already(session, proposal_id)
    if already is not None:
        return GuardrailDecision(False, already)
    audit.record(
        session,
        now,
        DISMISSED,
        actor=by,
        customer_id=proposal.customer_id,
        payload={
            "proposal": proposal_id,
            "key": payload_text(proposal.payload, "key"),
            "why": why.strip()[:WHY_LIMIT],
        },
    )
    return GuardrailDecision(True, "")


def release(session: Session, proposal_id: int, by: str, now: datetime) -> GuardrailDecision:
    """End an approved hold: the customer is planned again from the next plan."""
    schema_lock(session, LOCK)
    proposal = _proposal(session, proposal_id)
    view = view_of(session, proposal_id)
    if view.status != "approved" or not proposal.payload.get("hold"):
        return GuardrailDecision(
            False, "This guardrail holds nothing back, so there is nothing to release."
        )
    if not view.holding and view.released_by:
        return GuardrailDecision(
            False,
            f"The hold on {view.customer_name} was already released by <@{view.released_by}>.",
        )
    if not view.holding:
        return GuardrailDecision(
            False, f"The hold on {view.customer_name} has ended: a new contact was added."
        )
    audit.record(
        session,
        now,
        RELEASED,
        actor=by,
        customer_id=proposal.customer_id,
        payload={"proposal": proposal_id, "key": payload_text(proposal.payload, "key")},
    )
    return GuardrailDecision(True, "")


def _proposal(session: Session, proposal_id: int) -> Event:
    event = session.get(Event, proposal_id)
    if event is None or event.kind != PROPOSED or event.customer_id is None:
        raise UserError(f"there is no guardrail proposal {proposal_id}")
    return event


def _events(session: Session, kinds: tuple[str, ...]) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.kind.in_(kinds)).order_by(Event.id)))


def _decision(session: Session, proposal_id: int) -> Event | None:
    return next((e for e in _events(session, DECISIONS) if proposal_of(e) == proposal_id), None)


def _already(session: Session, proposal_id: int) -> str | None:
    decision = _decision(session, proposal_id)
    if decision is None:
        return None
    done = "approved" if decision.kind == APPROVED else "dismissed"
    return f"This guardrail was already {done} by <@{decision.actor}>."


# --- showing ----------------------------------------------------------------------------------


def view_of(session: Session, proposal_id: int) -> GuardrailView:
    proposal = _proposal(session, proposal_id)
    customer = session.get(Customer, proposal.customer_id)
    assert customer is not None
    decision = _decision(session, proposal_id)
    released = next(
        (e for e in _events(session, (RELEASED,)) if proposal_of(e) == proposal_id), None
    )
    status = "proposed"
    if decision is not None:
        status = "approved" if decision.kind == APPROVED else "dismissed"
    still = status == "approved" and proposal_id in holding(session)
    return GuardrailView(
        proposal_id=proposal_id,
        customer_name=customer.name,
        customer_id=customer.external_id,
        rule=payload_text(proposal.payload, "rule"),
        happened=payload_text(proposal.payload, "happened"),
        change=payload_text(proposal.payload, "change"),
        status=status,
        decided_by=decision.actor if decision else None,
        why=payload_text(decision.payload, "why") or None if decision else None,
        holding=still,
        released_by=released.actor if released else None,
    )


def holds_of(session: Session, customer_id: int) -> list[GuardrailView]:
    """The approved guardrails holding this customer back now (for `/ar status`)."""
    return [
        view_of(session, proposal_id)
        for proposal_id, (customer, _) in sorted(holding(session).items())
        if customer == customer_id
    ]
