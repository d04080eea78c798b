"""The words a person reads for each word of the vocabulary: a step of the ladder ("second
reminder, 7 days late", not `plus7`), why a customer is held or a reminder cancelled, why a person
has an account, what a reply says, where a reminder or an escalation stands. One function per
vocabulary; a word none of them knows is shown with its underscores as spaces."""

from __future__ import annotations

import re

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")

# Steps the bundled playbooks name in words rather than by their day.
_NAMED_STEPS = {
    "courtesy": "courtesy note",
    "heads_up": "heads-up",
    "gentle": "gentle reminder",
    "check_in": "check-in",
    "owner_call": "call by the account owner",
    "thread_reply": "reply from the thread",
    "due_today": "reminder on the due date",
}
_DAY_KEY = re.compile(r"(plus|minus|day)_?(-?\d+)")
_INSTALMENT_KEY = re.compile(r"instalment-\d+-(\d+)")  # a payment plan's: plan, then instalment


def when(offset_days: int) -> str:
    """A day counted from the due date, in words."""
    if offset_days == 0:
        return "on the due date"
    days = abs(offset_days)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} late" if offset_days > 0 else f"{days} {unit} before the due date"


def when_due(days_past_due: int) -> str:
    """An invoice's due date from today: "7 days late", "due today", "due in 3 days"."""
    if days_past_due == 0:
        return "due today"
    days = abs(days_past_due)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} late" if days_past_due > 0 else f"due in {days} {unit}"


def step_label(key: str, offset_days: int | None = None, position: int | None = None) -> str:
    """A step of the ladder: "second reminder, 7 days late", "call by the account owner".
    `position` counts the ladder's steps from 1; without it or the offset, the key is read."""
    instalment = _INSTALMENT_KEY.fullmatch(key)
    if instalment:
        return f"reminder of payment plan instalment {int(instalment[1])}"
    match = _DAY_KEY.fullmatch(key)
    if offset_days is None and match:
        offset_days = int(match[2]) * (-1 if match[1] == "minus" else 1)
    named = _NAMED_STEPS.get(key)
    if named is not None:
        return (
            named if offset_days is None or key == "due_today" else f"{named}, {when(offset_days)}"
        )
    kind = "reminder"
    if position is not None and 1 <= position <= len(_ORDINALS):
        kind = f"{_ORDINALS[position - 1]} reminder"
    return f"{kind}: {words(key)}" if offset_days is None else f"{kind}, {when(offset_days)}"


_REASONS = {
    # why a customer or an invoice is held back today (bot/planning/guardrails.py)
    "paid": "paid",
    "below_write_off": "what is left is under the write-off amount",
    "disputed": "disputed",
    "promised": "promised to pay",
    "payment_plan": "on a payment plan",
    "paused": "paused",
    "already_planned_today": "already in today's plan",
    "pending_approval": "a reminder is already waiting",
    "escalated": "a person has the account",
    "payment_in_review": "a bank payment that may be theirs waits for a person to place it",
    "frequency_cap": "contacted recently enough",
    "no_contact": "no billing contact",
    "opted_out": "asked not to be contacted",
    "no_sms_consent": "no consent to texts",
    "unknown_timezone": "time zone unknown",
    "no_send_window": "no time to send today",
    "template_error": "the message could not be written",
    "payment_link_error": "the payment link could not be made",
    # held by an approved guardrail (bot/learning/guardrail_holds.py)
    "guardrail_bounces": "held: emails bounce, a new billing contact is asked for",
    "guardrail_wrong_contact": "held: we wrote to the wrong person, a new contact is asked for",
    "guardrail_correction": "held for review: an invoice was corrected after a reminder",
    "contact_needed": "a billing contact is needed",
    # why a reminder was cancelled, or why a person has the account
    # a payment or the ledger changed an invoice's balance (or paid, voided or reopened one of
    # several) under a waiting reminder, whose amounts are then untrue (bot/payments/record.py
    # cancel_for_invoices, bot/reminders/stale.py)
    "superseded": "an invoice's balance or status changed after the reminder was planned",
    # every invoice the reminder covers voided (or deleted) in the ledger: none was paid
    "voided": "voided in the ledger",
    "due_date_changed": "the invoice's due date changed",
    "total_changed": "the invoice's total changed",
    "email_changed": "the ledger gave the contact another email address",
    "phone_changed": "the ledger gave the contact another phone number",
    "never_automate": "always handed to a person",
    "never_automated": "always handed to a person",
    "send_failed": "a message could not be delivered",
    "send_unknown": "a message may or may not have gone out",
    "sent_after_stop": "a reminder went out after a stop was asked",
    "missed_promise": "a promise to pay was missed",
    "card_dispute": "card payment disputed",
    "payment_refunded": "a refund reopened invoices",
    "replied": "the customer replied",
    "bounced": "messages to the contact bounce",
    "no_invoice_copy": "a copy of an invoice could not be attached",
    "message_too_large": "the email with its invoice copies is too large",
    "plan_cancelled": "the payment plan was cancelled",
}
_STEP_REASON = re.compile(r"step (\S+) \(([+-]?\d+) days\)")


def reason_label(reason: str) -> str:
    """Why: a hold, a cancellation or an escalation, in words."""
    if reason in _REASONS:
        return _REASONS[reason]
    step = _STEP_REASON.fullmatch(reason)
    if step:
        key, offset = step[1], int(step[2])
        if key in _NAMED_STEPS:
            return f"the playbook's step: {step_label(key, offset)}"
        return f"the playbook hands it to a person {when(offset)}"
    head, colon, rest = reason.partition(": ")
    if colon and head in ("reply", "step"):
        return f"{head}: {words(rest)}" if head == "reply" else f"step: {step_label(rest)}"
    return words(reason)


_REPLY_LABELS = {
    "promise_to_pay": "promise to pay",
    "already_paid": "says it is paid",
    "payment_plan_request": "asks for a payment plan",
    "wrong_contact": "wrong contact",
    "opt_out": "asks to stop",
}


def reply_label(label: str) -> str:
    """What a reply says (the triage label)."""
    return _REPLY_LABELS.get(label, words(label))


_STATES = {
    "planned": "waiting for approval",
    "approved": "approved",
    "sending": "sending",
    "sent": "sent",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "failed": "failed",
    "unknown": "may or may not have gone out",
    "open": "waiting for a person",
    "claimed": "claimed",
    "resolved": "resolved",
    "applied": "applied",
    "unmatched": "left unmatched",
}


def state_label(state: str) -> str:
    """Where a reminder, an escalation or a payment review stands."""
    return _STATES.get(state, words(state))


def channel_label(channel: str) -> str:
    """How a message goes: "email" or "text message"."""
    return {"sms": "text message"}.get(channel, words(channel))


def words(key: str) -> str:
    """Any other key in words: underscores as spaces."""
    return key.replace("_", " ").strip()
