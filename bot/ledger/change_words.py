"""Words for what the ledger changed, read from the payloads of its Events: the same in
`arbot status` (handlers/cli/tables.py) and in an escalation thread's history
(bot/escalations/thread.py). Plain text: the Slack side escapes it like any text from outside.
An instant is written by the caller's `minute` (UTC in the terminal, the business's timezone in
Slack, where the lines' own times are)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bot.core.money import decimal_str

# why a consent was dropped when the ledger gave no "no", and why a waiting text was cancelled:
# the ledger gave its contact another phone number (the text was approved for the old one)
PHONE_CHANGED = "phone_changed"
CONSENT_WITHDRAWN = "consent to texts withdrawn"
# why a waiting email was cancelled: the ledger gave its contact another address
EMAIL_CHANGED = "email_changed"


def ledger_change(kind: str, payload: dict[str, Any], minute: Callable[[str], str]) -> str | None:
    """The words for an Event of one of the changes below, or None for any other kind."""
    number = str(payload.get("number", ""))
    if kind == "invoice.due_date_changed":
        return f"{number} due date {payload.get('due_before')} → {payload.get('due_after')}"
    if kind == "invoice.issue_date_changed":
        return f"{number} issue date {payload.get('issue_before')} → {payload.get('issue_after')}"
    if kind in ("invoice.balance_changed", "invoice.total_changed"):
        # each amount to its currency's places (they are stored with four)
        what = kind.removeprefix("invoice.").removesuffix("_changed")
        currency = str(payload.get("currency"))
        amounts = [payload.get(f"{what}_{end}") for end in ("before", "after")]
        if None in amounts:  # an Event written without them: say what changed, no more
            return f"{number} {what} changed"
        before, after = (decimal_str(Decimal(str(amount)), currency) for amount in amounts)
        return f"{number} {what} {before} → {after} {currency}"
    if kind == "invoice.restored":  # voided as deleted, and its source has it after all
        back = f"{number} restored, back in {payload.get('source')} after being voided as deleted"
        if payload.get("status_after") != "open":
            return f"{back}: {payload.get('status_after')}"
        currency = str(payload.get("currency"))
        owed = decimal_str(Decimal(str(payload.get("balance_after"))), currency)
        return f"{back}: open, {owed} {currency} owed"
    if kind in ("invoice.renumbered", "invoice.moved"):  # by the source, which names it by its id
        old, new = payload.get("number_before"), payload.get("number_after")
        source = f" ({payload['source']})" if payload.get("source") else ""
        if kind == "invoice.renumbered":
            return f"{old} renumbered {new}{source}"
        was = f" (was {old})" if old != new else ""
        former = payload.get("customer_before_name") or "another customer"
        return f"{new} moved here from {former}{was}{source}"
    if kind == "invoice.paid_at_changed":  # a ledger file's paid_date corrected the day it was paid
        earlier = payload.get("paid_before")
        was = f" (was {minute(str(earlier))})" if earlier else ""
        return f"{number} paid at {minute(str(payload['paid_after']))}{was}"
    if kind == "contact.sms_consent_withdrawn":
        # the ledger said no, or the contact's phone number changed (consent is per number)
        why = ": the phone number changed" if payload.get("reason") == PHONE_CHANGED else ""
        source = f" ({payload['source']})" if payload.get("source") else ""
        return f"{CONSENT_WITHDRAWN}{why}{source}"
    if kind == "contact.email_changed":  # the ledger moved a contact to another address
        old = payload.get("from")
        marks = [
            words
            for mark, words in (
                ("email_unusable_at", "had bounced or reached the wrong person"),
                ("email_opted_out_at", "had opted out of email"),
            )
            if payload.get(mark)
        ]
        notes = [str(payload["source"])] if payload.get("source") else []
        if marks:  # the new address has neither: they stay with the old one
            notes.append(f"{old} {' and '.join(marks)}")
        said = f" ({'; '.join(notes)})" if notes else ""
        return f"email address {old} → {payload.get('to')}{said}"
    if kind == "contact.phone_changed":  # the ledger gave a contact another number
        notes = [str(payload["source"])] if payload.get("source") else []
        if payload.get("consent_given"):  # else any consent went with the old number
            notes.append("consent to texts given with it")
        if cancelled := len(payload.get("texts_cancelled") or []):
            notes.append(f"{cancelled} waiting text{'' if cancelled == 1 else 's'} cancelled")
        said = f" ({'; '.join(notes)})" if notes else ""
        return f"phone number {payload.get('from')} → {payload.get('to')}{said}"
    return None
