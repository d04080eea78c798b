"""A text or an email to a workspace that uninstalled arbot (its data is kept, and installing again
picks it up): only an opt-out is recorded, so that the number or address is not texted or mailed
after a reinstall (RULES A7, B2, C2).

An opt-out is a STOP keyword or a text triage reads as asking to stop (the number is opted out);
a mail to the unsubscribe address, or a reply triage reads as asking to stop (the address it came
from, or the one the reminder went to when its contact has moved since, is opted out); a spam
complaint (opted out) or a hard bounce (marked bouncing) of one of its reminders, recorded as
always, with the escalation that tells a person waiting in its data for a reinstall. Nothing is
posted to Slack (the workspace has no token) and nothing else is done: no reminder is paused, no
escalation opened for a reply, nothing texted back. Anything else is not kept at all (None): the
caller answers that the workspace is not served, as it did for every message before."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.core.runtime import Runtime
from bot.ledger.contact_addresses import OPTED_OUT
from bot.ledger.former_addresses import former_address, mark_former_address
from bot.replies.bounces import opt_out
from bot.replies.email import already_stored, email_needs_triage, handle_email, in_own_words
from bot.replies.match import (
    InboundResult,
    ReplyRules,
    contact_for,
    match_email,
    reminder_by_token,
    stored_email,
)
from bot.replies.sms import STOP_WORDS, keyword, record_opt_out, sms_needs_triage
from bot.replies.storable import storable, storable_email
from integrations.base.inbound import Classifier, Triage

if TYPE_CHECKING:
    from datetime import datetime

    from integrations.base.inbound import InboundEmail

log = logging.getLogger(__name__)
OPT_OUT = "opt_out"


class NotAnOptOut(Exception):
    """The message asks for nothing an uninstalled workspace records: what it wrote is rolled
    back."""


def receive_opt_out_sms(
    runtime: Runtime,
    sender: str,
    body: str,
    provider_id: str | None,
    *,
    classifier: Classifier,
) -> InboundResult | None:
    """A text: the number opted out when it asks to stop; None (nothing kept) otherwise."""
    text = storable(body).strip()
    triage = classifier.classify(text, runtime.today()) if sms_needs_triage(text) else None
    if keyword(text) not in STOP_WORDS and (triage is None or triage.label != OPT_OUT):
        log.info("a text to an uninstalled workspace was not kept: it does not ask to stop")
        return None
    with runtime.writing() as session:
        return record_opt_out(session, sender, body, provider_id, runtime.clock.now(), triage)


def receive_opt_out_email(
    runtime: Runtime,
    raw: bytes,
    read: Callable[[bytes], InboundEmail],
    *,
    classifier: Classifier,
) -> InboundResult | None:
    """An email as it arrived, read by `read`: the opt-out, complaint or hard bounce it is
    recorded; None (nothing kept) for anything else, or a message that cannot be read."""
    try:
        mail = storable_email(read(raw))
    except Exception as exc:
        log.warning("an email to an uninstalled workspace could not be read: %r", exc)
        return None
    rules = ReplyRules.from_settings(runtime.settings)
    triage = None
    if email_needs_triage(mail) and not _to_unsubscribe(mail, rules):
        with runtime.sessions() as session:
            mail = in_own_words(session, mail, rules.secret_key)
        triage = classifier.classify(mail.text, runtime.today())
    try:
        with runtime.writing() as session:
            return record_email_opt_out(session, mail, raw, runtime.clock.now(), rules, triage)
    except NotAnOptOut as exc:
        log.info("an email to an uninstalled workspace was not kept: %s", exc)
        return None


def record_email_opt_out(
    session: Session,
    mail: InboundEmail,
    raw: bytes | str,
    now: datetime,
    rules: ReplyRules,
    triage: Triage | None,
) -> InboundResult:
    """Store and record the opt-out `mail` is (storable already); raises NotAnOptOut, for the
    caller to roll back, when it is none. `triage`: its label, for a mail a person wrote."""
    seen = already_stored(session, mail, raw)
    if seen is not None:
        return InboundResult(seen, "duplicate")
    if mail.bounce is not None:
        bounce = mail.bounce
        if not (bounce.complaint or (bounce.permanent and not bounce.sender_side)):
            raise NotAnOptOut("a delivery delay, or a refusal for the sending side")
    if mail.bounce is not None or _to_unsubscribe(mail, rules):
        result = handle_email(session, mail, raw, now, rules, None)
        if result.outcome not in ("bounce", OPT_OUT):
            raise NotAnOptOut("a delivery report about no reminder of this workspace")
        return result
    if mail.automatic is not None or triage is None or triage.label != OPT_OUT:
        raise NotAnOptOut("it does not ask to stop")
    reminder, customer_id, how = match_email(session, mail, rules.secret_key)
    if customer_id is None:
        raise NotAnOptOut("an opt-out from no customer's address")
    contact = contact_for(session, customer_id, reminder, email=mail.sender)
    old_address = former_address(session, reminder) if reminder and contact is None else None
    if contact is None and (reminder is None or old_address is None):
        raise NotAnOptOut("an opt-out from no contact's address")
    stored = stored_email(
        mail,
        raw,
        now,
        reminder.id if reminder else None,
        customer_id=customer_id,
        matched_by=how,
        automatic=False,
        label=OPT_OUT,
        confidence=triage.confidence,
    )
    session.add(stored)
    session.flush()
    if contact is not None:
        opt_out(session, contact, "email", customer_id, now, "asked in a reply")
    else:  # the reminder went to an address its contact has moved from since: that one asked
        assert reminder is not None and old_address is not None
        mark_former_address(session, reminder, old_address, OPTED_OUT, now, how="asked in a reply")
    return InboundResult(stored.id, OPT_OUT, customer_id, OPT_OUT)


def _to_unsubscribe(mail: InboundEmail, rules: ReplyRules) -> bool:
    """Sent to a reminder's unsubscribe address (`List-Unsubscribe`'s mailto)."""
    return reminder_by_token(mail.recipients, rules.secret_key, "unsubscribe") is not None
