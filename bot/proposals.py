"""The learning loop's weekly look back: playbook changes the evidence supports, for a person.

Two rules, each with pinned thresholds:
- softened: when at least 8 of the last 10 approved edits of one step (in one ladder) made the
  draft at least 15% shorter or dropped a firm phrase, propose a new template for that step written
  from the latest such edit, with the customer's name, amounts, invoice numbers and dates turned
  back into the template's placeholders.
- channel order: when a step's text messages were followed by a payment within 7 days at least
  twice as often as its emails, with at least 20 of each, propose texting first at that step.

A proposal is a whole playbook version (the YAML plus the templates it uses, as a PlaybookVersion
stores them) and must pass the loader and `arbot playbook check` before it is stored. It is stored
as `proposed` and changes nothing until a person approves it; a change already waiting is not
proposed twice, and one a person rejected is not proposed again within the evidence window.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from bot import audit
from bot.errors import UserError
from bot.models import (
    Customer,
    EditExample,
    Event,
    Invoice,
    Payment,
    PaymentAllocation,
    PlaybookVersion,
    Reminder,
    ReminderInvoice,
)
from bot.playbook_check import check_bundle
from bot.playbook_edit import edit_step
from bot.playbook_versions import (
    activate,
    active_version,
    bundle_of,
    ensure_active,
    load_checked,
    propose,
)
from bot.proposal_diff import version_diff
from bot.runtime import Runtime
from bot.template_from_edit import edited_template
from integrations.slack_proposal import ProposalView
from playbooks.loader import TEMPLATE_PARTS, Bundle, PlaybookError, parse_playbook
from playbooks.model import Playbook, Step

log = logging.getLogger(__name__)

PROPOSER = "learning"
WEEKS = 8  # how far back the evidence goes
SOFTENED_LAST = 10  # the last N approved edits of a step ...
SOFTENED_AT_LEAST = 8  # ... of which at least this many softened the draft
SHORTER_BY = 0.15  # an edit at least 15% shorter than the draft softened it
FIRM_PHRASES = (
    "as soon as possible",
    "as soon as you can",
    "immediately",
    "right away",
    "without delay",
    "promptly",
    "urgent",
    "past due",
    "overdue",
    "outstanding",
    "we haven't received",
    "we have not received",
    "please arrange payment",
    "must",
    "required",
)
CHANNEL_MIN_TOUCHES = 20  # of each channel, at one step
CHANNEL_RATIO = 2.0  # texts paid at least twice as often as emails
PAID_WITHIN_DAYS = 7


@dataclass(frozen=True)
class Proposal:
    rule: str  # "softened" | "channel_order"
    change: str  # what changes, e.g. "softened:strategic:gentle": one waiting proposal per change
    ladder: str  # "strategic", or "patients/standard" for a segment's ladder
    step: str
    rationale: str  # the evidence, in words
    playbook_yaml: str  # the whole new playbook file
    templates: dict[str, str]  # every template source it uses ("name/part" -> source)
    evidence: dict[str, Any] = field(default_factory=dict)  # the numbers behind the rationale

    def bundle(self) -> Bundle:
        return Bundle(
            playbook=parse_playbook(self.playbook_yaml, "proposal"),
            source=self.playbook_yaml,
            templates=dict(self.templates),
            label=f"proposal {self.change}",
        )


@dataclass(frozen=True)
class ProposalDecision:
    changed: bool
    version: int
    status: str
    message: str  # what to tell the person who clicked


# --- the rules ------------------------------------------------------------------------------


def evaluate(session: Session, today: date, weeks: int = WEEKS) -> list[Proposal]:
    """Each change the last `weeks` weeks of edits and outcomes support, checked; none stored."""
    current = _current_bundle(session)
    since = datetime.combine(today - timedelta(weeks=weeks), time.min, UTC)
    found = _softened(session, current, since) + _channel_order(session, current, today, since)
    return [p for p in found if _passes_check(p)]


def softening_signals(before: str, after: str) -> list[str]:
    """Why an edit counts as softening the draft (empty: it did not)."""
    signals = []
    if before.strip() and len(after.strip()) <= (1 - SHORTER_BY) * len(before.strip()):
        signals.append(f"{1 - len(after.strip()) / len(before.strip()):.0%} shorter")
    dropped = [p for p in FIRM_PHRASES if _has(before, p) and not _has(after, p)]
    if dropped:
        signals.append("dropped " + ", ".join(f"“{p}”" for p in dropped))
    return signals


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", text, re.IGNORECASE) is not None


def _softened(session: Session, current: Bundle, since: datetime) -> list[Proposal]:
    rows = session.execute(
        select(EditExample, Reminder, Customer)
        .join(Reminder, Reminder.id == EditExample.reminder_id)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(EditExample.created_at >= since)
        .order_by(EditExample.created_at.desc(), EditExample.id.desc())
    ).all()
    groups: dict[tuple[str, str], list[tuple[EditExample, Reminder, Customer]]] = defaultdict(list)
    for example, reminder, customer in rows:
        ladder, _ = current.playbook.ladder_for(example.tier, customer.tags or [])
        groups[(ladder, example.step_key)].append((example, reminder, customer))
    proposals = []
    for (ladder, key), edits in sorted(groups.items()):
        step = _step(current.playbook, ladder, key)
        last = edits[:SOFTENED_LAST]
        softened = [e for e in last if softening_signals(e[0].before, e[0].after)]
        if step is None or step.template is None or len(last) < SOFTENED_LAST:
            continue
        if len(softened) < SOFTENED_AT_LEAST:
            continue
        proposal = _template_proposal(session, current, ladder, step, len(softened), softened)
        if proposal is not None:
            proposals.append(proposal)
    return proposals


def _template_proposal(
    session: Session,
    current: Bundle,
    ladder: str,
    step: Step,
    count: int,
    softened: list[tuple[EditExample, Reminder, Customer]],
) -> Proposal | None:
    assert step.template is not None
    name = _new_template_name(current, ladder, step.key)
    for example, reminder, customer in softened:  # newest first: the first that generalises
        parts = edited_template(session, example.after, reminder, customer)
        if parts is None:
            continue
        templates = dict(current.templates)
        for part in TEMPLATE_PARTS:
            templates[f"{name}/{part}"] = parts.get(
                part, current.templates[f"{step.template}/{part}"]
            )
        who = _who(ladder)
        rationale = (
            f"{count} of the last {SOFTENED_LAST} {_when(step)} messages to {who} were softened "
            f"by approvers. Proposed: template {name} for step {step.key}, written from the edit "
            f"of {example.created_at:%Y-%m-%d} with the customer's name, amounts, invoice numbers "
            "and dates turned back into placeholders. Read it before approving: it was written "
            "for one customer."
        )
        return Proposal(
            rule="softened",
            change=f"softened:{ladder}:{step.key}",
            ladder=ladder,
            step=step.key,
            rationale=rationale,
            playbook_yaml=edit_step(current.source, ladder, step.key, template=name),
            templates=templates,
            evidence={"softened": count, "of": SOFTENED_LAST, "from_edit": example.id},
        )
    log.info("step %s of %s: no softened edit could be made generic", step.key, ladder)
    return None


def _channel_order(
    session: Session, current: Bundle, today: date, since: datetime
) -> list[Proposal]:
    until = datetime.combine(today - timedelta(days=PAID_WITHIN_DAYS), time.min, UTC)
    sent = (
        (Reminder.state == "sent")
        & (Reminder.action == "remind")
        & (Reminder.sent_at >= since)
        & (Reminder.sent_at < until)
    )
    touches = session.execute(
        select(Reminder.id, Reminder.step_key, Reminder.channel, Reminder.sent_at, Customer)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(sent)
    ).all()
    paid = _paid_within(session, sent)
    counts: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(
        lambda: {"email": [0, 0], "sms": [0, 0]}
    )
    for reminder_id, step_key, channel, _sent_at, customer in touches:
        ladder, _ = current.playbook.ladder_for(customer.tier, customer.tags or [])
        tally = counts[(ladder, step_key)][channel or "email"]
        tally[0] += 1
        tally[1] += reminder_id in paid
    proposals = []
    for (ladder, key), by_channel in sorted(counts.items()):
        step = _step(current.playbook, ladder, key)
        (emails, emails_paid), (texts, texts_paid) = by_channel["email"], by_channel["sms"]
        if step is None or "sms" not in step.channels or step.channels[0] == "sms":
            continue
        if min(emails, texts) < CHANNEL_MIN_TOUCHES or texts_paid == 0:
            continue
        if texts_paid / texts < CHANNEL_RATIO * (emails_paid / emails):
            continue
        order = ("sms", *(c for c in step.channels if c != "sms"))
        rationale = (
            f"At step {step.key} ({_when(step)}) for {_who(ladder)}, over the last "
            f"{(today - since.date()).days // 7} weeks: {texts_paid} of {texts} text messages "
            f"({texts_paid / texts:.0%}) were followed by a payment within {PAID_WITHIN_DAYS} "
            f"days, against {emails_paid} of {emails} emails ({emails_paid / emails:.0%}). "
            f"Proposed: {' then '.join(order)} at this step."
        )
        proposals.append(
            Proposal(
                rule="channel_order",
                change=f"channel_order:{ladder}:{key}:{','.join(order)}",
                ladder=ladder,
                step=key,
                rationale=rationale,
                playbook_yaml=edit_step(current.source, ladder, key, channels=list(order)),
                templates=dict(current.templates),
                evidence={
                    "sms": [texts_paid, texts],
                    "email": [emails_paid, emails],
                    "days": PAID_WITHIN_DAYS,
                },
            )
        )
    return proposals


def _paid_within(session: Session, sent: ColumnElement[bool]) -> set[int]:
    """The touches (reminders matching `sent`) after which money arrived for one of their
    invoices within the days allowed: a payment received, or the invoice marked paid."""
    covered = session.execute(
        select(Reminder.id, Reminder.sent_at, Invoice.id, Invoice.paid_at)
        .join(ReminderInvoice, ReminderInvoice.reminder_id == Reminder.id)
        .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
        .where(sent)
    ).all()
    received: dict[int, list[date]] = defaultdict(list)
    for invoice_id, received_on in session.execute(
        select(PaymentAllocation.invoice_id, Payment.received_on)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .join(ReminderInvoice, ReminderInvoice.invoice_id == PaymentAllocation.invoice_id)
        .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
        .where(sent)
        .distinct()
    ):
        received[invoice_id].append(received_on)
    window = timedelta(days=PAID_WITHIN_DAYS)
    paid = set()
    for reminder_id, sent_at, invoice_id, paid_at in covered:
        if sent_at is None:
            continue
        sent_on = sent_at.date()
        if any(sent_on <= day <= sent_on + window for day in received[invoice_id]) or (
            paid_at is not None and sent_at <= paid_at <= sent_at + window
        ):
            paid.add(reminder_id)
    return paid


# --- storing, approving, rejecting ----------------------------------------------------------


def propose_all(
    session: Session, today: date, now: datetime, weeks: int = WEEKS
) -> list[PlaybookVersion]:
    """Store each supported change as a `proposed` PlaybookVersion (activating nothing)."""
    waiting, refused = _changes_in_play(session, now, weeks)
    stored = []
    for proposal in evaluate(session, today, weeks):
        if proposal.change in waiting or proposal.change in refused:
            continue
        version = _store(session, proposal, now)
        waiting.add(proposal.change)
        stored.append(version)
    return stored


def weekly_proposals(runtime: Runtime, today: date) -> list[ProposalView]:
    """The weekly job's part: store what the evidence supports, and return the cards to post.
    Slack is called by the caller, after this transaction has committed."""
    with runtime.writing() as session:
        stored = propose_all(session, today, runtime.clock.now())
        return [view_of(session, version.id) for version in stored]


def _store(session: Session, proposal: Proposal, now: datetime) -> PlaybookVersion:
    with tempfile.TemporaryDirectory(prefix="arbot-proposal-") as folder:
        path = Path(folder) / "playbook.yml"
        path.write_text(proposal.playbook_yaml, encoding="utf-8")
        for name, source in proposal.templates.items():
            file = Path(folder) / "templates" / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(source, encoding="utf-8")
        version = propose(session, path, PROPOSER, proposal.rationale, now)
    audit.record(
        session,
        now,
        "playbook.evidence",
        actor=PROPOSER,
        payload={
            "version": version.version,
            "rule": proposal.rule,
            "change": proposal.change,
            "evidence": proposal.evidence,
        },
    )
    return version


def approve(session: Session, version_id: int, by: str, now: datetime) -> ProposalDecision:
    """Make a waiting proposal the active playbook. One proposed against a playbook that is no
    longer active is set aside instead (it would undo what was approved since)."""
    target = _load(session, version_id)
    if target.status != "proposed":
        return ProposalDecision(False, target.version, target.status, _already(session, target))
    current = ensure_active(session, now)
    if target.parent_id != current.id:
        parent = session.get(PlaybookVersion, target.parent_id) if target.parent_id else None
        _retire(session, target, by, now, "playbook.proposal_outdated")
        return ProposalDecision(
            True,
            target.version,
            "retired",
            f"version {target.version} was proposed as a change to version "
            f"{parent.version if parent else '?'}, but version {current.version} is active now; "
            "it was set aside, and the next weekly look back proposes it again if the evidence "
            "still holds",
        )
    previous = current.version
    activate(session, target.version, by, now)
    return ProposalDecision(
        True,
        target.version,
        "active",
        f"playbook version {target.version} is active; `arbot playbook rollback` goes back to "
        f"version {previous}",
    )


def reject(session: Session, version_id: int, by: str, now: datetime) -> ProposalDecision:
    """A person says no: the proposal is retired, and not proposed again within the window."""
    target = _load(session, version_id)
    if not _retire(session, target, by, now, "playbook.rejected"):
        session.refresh(target)
        return ProposalDecision(False, target.version, target.status, _already(session, target))
    return ProposalDecision(
        True, target.version, "retired", f"playbook version {target.version} was rejected"
    )


def _retire(session: Session, target: PlaybookVersion, by: str, now: datetime, kind: str) -> bool:
    result = session.execute(
        update(PlaybookVersion)
        .where(PlaybookVersion.id == target.id, PlaybookVersion.status == "proposed")
        .values(status="retired")
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    change = _change_of(session, target.version)
    audit.record(
        session, now, kind, actor=by, payload={"version": target.version, "change": change}
    )
    session.expire_all()
    return True


def id_of_version(session: Session, number: int) -> int:
    """The row id of playbook version `number` (what `arbot playbook list` shows)."""
    found = session.scalar(select(PlaybookVersion.id).where(PlaybookVersion.version == number))
    if found is None:
        raise UserError(f"there is no playbook version {number}; `arbot playbook list` shows them")
    return found


def _load(session: Session, version_id: int) -> PlaybookVersion:
    version = session.get(PlaybookVersion, version_id)
    if version is None:
        raise UserError(f"there is no playbook version with id {version_id}")
    return version


def _decision_event(session: Session, version: int) -> Event | None:
    kinds = ("playbook.rejected", "playbook.proposal_outdated", "playbook.activated")
    for event in session.scalars(
        select(Event).where(Event.kind.in_(kinds)).order_by(Event.id.desc())
    ):
        if event.payload.get("version") == version:
            return event
    return None


def _already(session: Session, version: PlaybookVersion) -> str:
    event = _decision_event(session, version.version)
    by = f" by {event.actor}" if event else ""
    if version.status == "active":
        return f"playbook version {version.version} is already active (approved{by})"
    if event is not None and event.kind == "playbook.rejected":
        return f"playbook version {version.version} was already rejected{by}"
    return f"playbook version {version.version} is no longer waiting ({version.status})"


def _change_of(session: Session, version: int) -> str | None:
    for event in session.scalars(select(Event).where(Event.kind == "playbook.evidence")):
        if event.payload.get("version") == version:
            return str(event.payload.get("change"))
    return None


def _changes_in_play(session: Session, now: datetime, weeks: int) -> tuple[set[str], set[str]]:
    """Changes with a proposal still waiting, and changes a person rejected within the window."""
    status = dict(session.execute(select(PlaybookVersion.version, PlaybookVersion.status)).all())
    waiting, refused = set(), set()
    for event in session.scalars(
        select(Event).where(Event.kind.in_(("playbook.evidence", "playbook.rejected")))
    ):
        change = event.payload.get("change")
        version = int(event.payload.get("version") or 0)
        if event.kind == "playbook.evidence" and status.get(version) == "proposed":
            waiting.add(str(change))
        elif event.kind == "playbook.rejected" and event.at >= now - timedelta(weeks=weeks):
            refused.add(str(change))
    return waiting, refused


# --- showing a proposal -----------------------------------------------------------------------


def view_of(session: Session, version_id: int) -> ProposalView:
    """What the Slack card shows for a stored version."""
    version = _load(session, version_id)
    parent = session.get(PlaybookVersion, version.parent_id) if version.parent_id else None
    diff = version_diff(parent.content, version.content) if parent else "(no earlier version)"
    event = None if version.status == "proposed" else _decision_event(session, version.version)
    outcome = {
        "playbook.activated": "approved",
        "playbook.rejected": "rejected",
        "playbook.proposal_outdated": "set aside: another version became active first",
    }
    return ProposalView(
        version_id=version.id,
        version=version.version,
        rationale=version.rationale or "",
        diff=diff,
        status=version.status,
        decided=outcome.get(event.kind) if event else None,
        decided_by=event.actor if event else None,
    )


# --- small pieces -------------------------------------------------------------------------------


def _current_bundle(session: Session) -> Bundle:
    version = active_version(session)
    return bundle_of(version) if version is not None else load_checked(None)


def _step(playbook: Playbook, ladder: str, key: str) -> Step | None:
    return next((s for name, s in playbook.all_steps() if name == ladder and s.key == key), None)


def _when(step: Step) -> str:
    return "due-day" if step.offset_days == 0 else f"{step.offset_days:+d}"


def _who(ladder: str) -> str:
    segment, _, tier = ladder.rpartition("/")
    return f"{tier} accounts in segment {segment}" if segment else f"{tier} accounts"


def _new_template_name(bundle: Bundle, ladder: str, step_key: str) -> str:
    stem = re.sub(r"[^a-z0-9_]+", "_", f"{ladder}_{step_key}".lower()).strip("_")[:36]
    taken = {key.split("/", 1)[0] for key in bundle.templates} | bundle.playbook.templates_used()
    name, number = stem, 1
    while name in taken:
        number += 1
        name = f"{stem}_{number}"
    return name


def _passes_check(proposal: Proposal) -> bool:
    """The loader and `arbot playbook check`, as `arbot playbook propose` applies them."""
    try:
        bundle = proposal.bundle()
    except PlaybookError as exc:
        log.warning("proposal %s does not load: %s", proposal.change, exc)
        return False
    problems = [p for check in check_bundle(bundle) for p in check.problems]
    if problems:
        log.warning("proposal %s fails the check: %s", proposal.change, problems[:3])
        return False
    return True
