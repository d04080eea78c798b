"""The end of `arbot demo`: a customer pays through the Stripe link (a signed webhook event,
verified and handed to the same flow as `POST /webhooks/stripe`), and another replies to dispute
an invoice (a real MIME reply, parsed and handed to the same flow as `POST /webhooks/email`). What Slack would show is printed instead of posted."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime

from rich.console import Console
from rich.emoji import Emoji
from rich.panel import Panel
from rich.text import Text

from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.escalations import notes as followups
from bot.escalations import thread as thread_view
from bot.payments.flows import receive_stripe_event
from bot.payments.stripe_amounts import to_stripe_minor
from bot.replies.flows import receive_email
from bot.simulation import demo_subjects
from integrations.email_in import parse
from integrations.stripe_events import verify

WEBHOOK_SECRET = "whsec_demo_only"
MENTION = re.compile(r"<@([^>]+)>")  # Slack's mention syntax, shown as @name in a terminal
AT_NAME = r"@\1"


def play_payment(runtime: Runtime, console: Console) -> None:
    """The first customer with an approved reminder pays its invoices by the link."""
    with runtime.sessions() as session:
        subject = demo_subjects.payer(session)
    if subject is None:
        return
    invoices = subject.invoices
    currency = invoices[0].currency
    total = sum((i.balance for i in invoices if i.currency == currency), Decimal(0))
    minor = to_stripe_minor(total, currency)
    body = json.dumps(
        {
            "id": "evt_demo_1",
            "object": "event",
            "type": "checkout.session.completed",
            "livemode": False,
            "data": {
                "object": {
                    "id": "cs_demo_1",
                    "object": "checkout.session",
                    "amount_total": minor,
                    "currency": currency.lower(),
                    "payment_intent": "pi_demo_1",
                    "payment_status": "paid",
                    "created": int(runtime.clock.now().timestamp()),
                    "metadata": {
                        "arbot_invoice_ids": ",".join(
                            str(i.id) for i in invoices if i.currency == currency
                        )
                    },
                }
            },
        }
    ).encode()
    stamp = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    event = verify(body, f"t={stamp},v1={digest.hexdigest()}", WEBHOOK_SECRET)
    result = receive_stripe_event(runtime, event, slack=None, links=None)
    with runtime.sessions() as session:
        notes = followups.payment_notes(session, result.outcome)
    console.print()
    console.rule(Text(f"{subject.customer_name} pays by the Stripe link", style="bold"))
    console.print(
        f"Stripe webhook checkout.session.completed: {result.status}, "
        f"{len(result.outcome.closed)} invoice(s) paid, "
        f"{len(result.outcome.cancelled)} waiting reminder(s) cancelled (reason: paid) "
        "before they could go out.",
        markup=False,
    )
    for text in notes.values():  # its :moneybag: as Slack shows it
        console.print(f"In Slack: {Emoji.replace(text)}")


def play_dispute(runtime: Runtime, console: Console, secret_key: str) -> None:
    """A customer who got a reminder answers it: they dispute the invoice."""
    with runtime.sessions() as session:
        subject = demo_subjects.replier(session)
    if subject is None:
        return
    sender = subject.email or "ap@example.com"
    number = subject.invoice_number
    mail = EmailMessage()
    mail["From"] = f"Accounts Payable <{sender}>"
    mail["To"] = f"ar+r.{token(secret_key, subject.reminder_id, 'reply')}@brightwater.example"
    mail["Subject"] = f"Re: {subject.subject or 'Invoice'}"
    mail["Message-ID"] = "<reply-1@customer.example>"
    mail["In-Reply-To"] = subject.message_id or ""
    mail["Date"] = format_datetime(runtime.clock.now())
    mail.set_content(
        f"Hi,\n\nWe won't be paying {number} yet: the second delivery arrived damaged and we "
        "are disputing the charge until it is replaced. Please hold off.\n\nThanks,\nDana\n\n"
        f"On {runtime.today():%a, %b %d, %Y}, Accounts Receivable wrote:\n> "
        + (subject.body_text or "").replace("\n", "\n> ")
    )
    raw = mail.as_bytes()
    from bot.replies.triage import RuleClassifier
    from integrations.wiring import classifier_for

    classifier = classifier_for(runtime.settings, RuleClassifier())
    result = receive_email(runtime, parse(raw), raw.decode(), classifier=classifier, slack=None)
    console.print()
    console.rule(Text(f"{subject.customer_name} replies: a dispute", style="bold"))
    console.print(
        f"Matched to its reminder by the Reply-To token; labelled "
        f"{result.label}; {len(result.cancelled)} waiting reminder(s) paused; "
        "the invoice is marked disputed.",
        markup=False,
    )
    if result.escalation_id is None:
        return
    with runtime.sessions() as session:
        view = thread_view.view(
            session, result.escalation_id, runtime.today(), runtime.settings.timezone
        )
    owner = f"@{view.owner}" if view.owner else "the finance team"
    parent = (
        f"Needs a person · {view.customer_name} ({view.customer_ref}, {view.tier}) · {owner}\n"
        f"Why: {view.reason}\nAt stake: {view.at_stake}\n\nThey wrote:\n"
        + "\n".join(f"> {line}" for line in (view.wrote or "").splitlines())
        + f"\n\nNext step: {view.suggestion}\n\n"
        "[Claim] [Record promise] [Mark disputed] [Resume sequence] [Resolve]"
    )
    console.print(Panel(parent, title="#escalations (as it would look in Slack)", expand=False))
    thread = ["Open invoices"]
    thread += [
        f"  {i.number}: {i.balance}, "
        + (f"{i.days_overdue} days overdue" if i.days_overdue > 0 else "not yet due")
        + (" · disputed" if i.disputed else "")
        for i in view.invoices
    ]
    thread += ["History (oldest first)"]
    thread += [f"  {h.at:%Y-%m-%d %H:%M} {MENTION.sub(AT_NAME, h.text)}" for h in view.history]
    console.print(Panel("\n".join(thread), title="in its thread", expand=False))
