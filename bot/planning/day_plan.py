"""What a day's plan holds: for each customer with a step due, a reminder or an escalation to a
person (`PlanItem`, with each invoice it covers and the step due on it); who was held back and
why (`Held`); and what was planned only to be observed (a customer outside the pilot or in the
control group). The plan's day starts at the business's midnight (`day_start`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import NamedTuple
from zoneinfo import ZoneInfo

from bot.escalations.plans import NextInstalment
from bot.planning.facts import ContactFacts, CustomerFacts, InvoiceFacts
from playbooks.model import Step
from playbooks.render import Rendered


class DueInvoice(NamedTuple):
    """An invoice with the step due on it. A named tuple, not a dataclass: a plan makes one for
    most of its open invoices."""

    invoice: InvoiceFacts
    step: Step
    days_past_due: int


@dataclass
class PlanItem:
    """One reminder, or one escalation, for one customer on the plan's day."""

    customer: CustomerFacts
    action: str  # "remind" | "escalate"
    step: Step  # the firmest step due
    ladder: str
    due: list[DueInvoice]
    contact: ContactFacts | None = None
    channel: str | None = None
    send_after: datetime | None = None
    auto_approve: bool = False
    escalate_to: str | None = None
    reason: str | None = None  # why a person gets it, for escalations
    message: Rendered | None = None
    language: str | None = None  # the message's language (BCP 47); None: English
    observe_only: bool = False
    control: bool = False  # observed only because the customer is in the control group
    instalment: NextInstalment | None = None  # a payment plan's instalment this reminds of

    def carries_copies(self, by_default: bool) -> bool:
        """Whether its email carries a PDF copy of each invoice: its step's say, else
        `by_default` (ARBOT_ATTACH_INVOICE_PDF); never a text or an escalation."""
        return (
            self.action == "remind"
            and self.channel == "email"
            and self.step.attaches_copies(by_default)
        )


@dataclass(frozen=True)
class Held:
    customer: CustomerFacts
    invoices: list[str]
    reason: str
    detail: str = ""


@dataclass
class Plan:
    day: date
    items: list[PlanItem] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    observed: list[PlanItem] = field(default_factory=list)


def day_start(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))
