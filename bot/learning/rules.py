"""The learning loop's two rules: the playbook changes the last weeks' edits and outcomes support.

Each rule has pinned thresholds:
- softened: when at least 8 of the last 10 approved edits of one step (in one ladder) made the
  draft at least 15% shorter or dropped a firm phrase, propose a new template for that step written
  from the latest such edit, with the customer's name, amounts, invoice numbers and dates turned
  back into the template's placeholders.
- channel order: when a step's text messages were followed by a payment within 7 days at least
  twice as often as its emails, with at least 20 of each, propose texting first at that step.
- timing: move a step to the day its reminders were clearly more often paid within 7 days, drop
  a step that did no better than going without it, or add a reminder halfway through a long gap
  after which payments waited for the next reminder (the evidence and its thresholds are in
  `bot.learning.timing`).
- trust: approve a step's reminders automatically once its last 30 decided reminders were approved
  as written, with no dispute or opt-out reply (`bot.learning.trust_rules`).

A proposal is a whole playbook version (the YAML plus the templates it uses, as a PlaybookVersion
stores them); only those that pass the loader and `arbot playbook check` are returned. Nothing is
stored here: `bot.learning.proposals` stores, approves, rejects and shows them.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from bot.core.models import (
    Customer,
    EditExample,
    Invoice,
    Payment,
    PaymentAllocation,
    Reminder,
    ReminderInvoice,
)
from bot.learning.check import check_bundle
from bot.learning.edit import edit_step
from bot.learning.metrics import local_day, start_of
from bot.learning.proposal import Proposal, ladder_words
from bot.learning.template_from_edit import edited_template
from bot.learning.timing_revisions import timing_proposals
from bot.learning.trust_rules import trust_proposals
from bot.learning.versions import active_version, bundle_of, load_checked
from playbooks.loader import TEMPLATE_PARTS, Bundle, PlaybookError
from playbooks.model import Playbook, Step

log = logging.getLogger(__name__)

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


# --- the rules ------------------------------------------------------------------------------


def evaluate(session: Session, today: date, timezone: str, weeks: int = WEEKS) -> list[Proposal]:
    """Each change the last `weeks` weeks of edits and outcomes support, checked; none stored.
    Days are the business's (`timezone`): the window starts at the start of its day, and a touch
    and the payment after it are compared by their days there."""
    current = _current_bundle(session)
    zone = ZoneInfo(timezone)
    since = start_of(today - timedelta(weeks=weeks), zone)
    found = (
        _softened(session, current, since)
        + _channel_order(session, current, today, since, zone)
        + timing_proposals(session, current, today, since, timezone)
        + trust_proposals(session, current)
    )
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
        # an edit of a message in another language says nothing of the English template
        .where(Reminder.language.is_(None))
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
        who = ladder_words(ladder)
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
    session: Session, current: Bundle, today: date, since: datetime, zone: ZoneInfo
) -> list[Proposal]:
    until = start_of(today - timedelta(days=PAID_WITHIN_DAYS), zone)
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
    paid = _paid_within(session, sent, zone)
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
            f"At step {step.key} ({_when(step)}) for {ladder_words(ladder)}, over the last "
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


def _paid_within(session: Session, sent: ColumnElement[bool], zone: ZoneInfo) -> set[int]:
    """The touches (reminders matching `sent`) after which money arrived for one of their
    invoices within the days allowed: a payment received, or the invoice marked paid. Days are
    the business's (`zone`), as a payment's `received_on` is."""
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
        sent_on = local_day(sent_at, zone)
        # by the business's days, as a payment received is: a ledger file's paid day is stored
        # from its start there, before any touch sent that day (and, east of UTC, on the UTC
        # day before)
        if any(sent_on <= day <= sent_on + window for day in received[invoice_id]) or (
            paid_at is not None and sent_on <= local_day(paid_at, zone) <= sent_on + window
        ):
            paid.add(reminder_id)
    return paid


# --- small pieces -------------------------------------------------------------------------------


def _current_bundle(session: Session) -> Bundle:
    version = active_version(session)
    return bundle_of(version) if version is not None else load_checked(None)


def _step(playbook: Playbook, ladder: str, key: str) -> Step | None:
    return next((s for name, s in playbook.all_steps() if name == ladder and s.key == key), None)


def _when(step: Step) -> str:
    return "due-day" if step.offset_days == 0 else f"{step.offset_days:+d}"


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
