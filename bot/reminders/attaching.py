"""The copies of invoices a reminder's email carries, gathered right before it is sent.

A reminder carries the copies its `reminder_attachments` name (its step or ARBOT_ATTACH_INVOICE_PDF
asked for them at planning; a person ticked them in a thread's Reply form). They are gathered
(bot/ledger/invoice_copies.py) at its turn in its batch (already `sending`, not yet handed over),
with no transaction open and the results before it stored. It never goes without them:

- a source that is down or rate limiting: the reminder waits (back to `approved`, a later
  `send_after`, the error kept) and is tried again, up to MAX_ATTEMPTS tries in all;
- a copy that cannot be had (no such invoice at the source, a refused connection, not a PDF, no
  pdf_url or file), or the same after the last try: the reminder is cancelled (`no_invoice_copy`)
  and a person gets the account with the reason, naming the invoice;
- copies that would make the email larger than ARBOT_MAX_MESSAGE_MB (as sent: base64 and the
  text included): cancelled as `message_too_large`, saying by how much. Nothing is sent without
  its copies, and nothing is cut down to fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.escalations.service import open_or_add
from bot.ledger.invoice_copies import invoice_copies
from bot.reminders import state
from bot.reminders.outbox import Claimed, FlushReport
from bot.reminders.results import BACKOFF, MAX_ATTEMPTS
from integrations.base.documents import CopyFetchers, CopyRefused, encoded_size, megabytes
from integrations.base.outbound import Attachment, Outgoing

NO_COPY = "no_invoice_copy"
TOO_LARGE = "message_too_large"
# Headers and MIME structure, counted generously (a reminder with a copy has about 1.1 kB)
MIME_HEADROOM = 4096


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # NO_COPY or TOO_LARGE
    message: str  # what went wrong, naming the invoice, for a person
    later: bool  # worth another try (the source was down)


def max_bytes(runtime: Runtime) -> int:
    return int(runtime.settings.max_message_mb * 1_000_000)


def gather(
    runtime: Runtime, claimed: Claimed, copies: CopyFetchers | None
) -> tuple[Attachment, ...] | Refusal:
    """The copies the claimed reminder carries, or why it cannot go with them."""
    if not claimed.attach:
        return ()
    if claimed.outgoing.channel != "email":
        return Refusal(NO_COPY, "a text message cannot carry a copy of an invoice", False)
    if copies is None:
        return Refusal(NO_COPY, "no way to fetch copies of invoices was set up", False)
    limit = max_bytes(runtime)
    try:
        files = tuple(invoice_copies(runtime, claimed.attach, copies, limit))
    except CopyRefused as exc:
        return Refusal(TOO_LARGE if exc.too_large else NO_COPY, exc.message, exc.later)
    size = message_size(claimed.outgoing, files)
    if size > limit:
        names = ", ".join(f.filename for f in files)
        return Refusal(
            TOO_LARGE,
            f"with the copies {names} the email would be {megabytes(size)}, over the "
            f"{megabytes(limit)} limit (ARBOT_MAX_MESSAGE_MB); send fewer copies or raise it",
            False,
        )
    return files


def message_size(outgoing: Outgoing, files: tuple[Attachment, ...]) -> int:
    """What the email takes as sent, a little over: its texts, its files as base64, and
    MIME_HEADROOM for its headers and MIME structure."""
    texts = len((outgoing.text or "").encode()) + len((outgoing.html or "").encode())
    return MIME_HEADROOM + texts + sum(encoded_size(len(f.data)) for f in files)


def hold(
    session: Session, claimed: Claimed, refusal: Refusal, now: datetime, report: FlushReport
) -> None:
    """The reminder does not go without its copies: it waits for another try, or is cancelled
    and a person gets the account with the reason."""
    reminder_id = claimed.reminder_id
    if refusal.later and claimed.attempts < MAX_ATTEMPTS:
        wait = BACKOFF[min(claimed.attempts - 1, len(BACKOFF) - 1)]
        back, stopped = state.back_to_approved(  # the claim counted this try
            session,
            [reminder_id],
            now=now,
            events=[("reminder.retrying", {"error": refusal.message, "in": str(wait)})],
            send_after=now + wait,
            error=refusal.message,
        )
        report.cancelled.update(stopped)
        if back:
            report.retrying.append(reminder_id)
        return
    # A stop asked for since the claim (a payment, a reply, a dispute) is the reason it ends:
    # it is cancelled with that, and nobody is sent to find a copy for an invoice that is paid.
    cancelled, stopped = state.cancel_sending(
        session, [reminder_id], reason=refusal.reason, now=now
    )
    report.cancelled.update(stopped)
    if not cancelled:
        return
    session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id)
        .values(error=refusal.message)
        .execution_options(synchronize_session=False)
    )
    open_or_add(
        session,
        claimed.customer_id,
        refusal.reason,
        now,
        detail=refusal.message,
        reminder_id=reminder_id,
    )
    report.cancelled[reminder_id] = refusal.reason
    report.not_sent[reminder_id] = refusal.message
