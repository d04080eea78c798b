"""What a day's plan follows besides the playbook: the business's timezone and sending window, the
frequency cap, the write-off thresholds, where escalations go, the pilot's segment, the control
group's share and the sender, read once from the settings (`PlanRules.from_settings`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from bot.core.settings import Settings
from bot.core.vocabulary import RESOLUTIONS
from bot.planning.facts import CustomerFacts
from bot.planning.messages import Sender
from bot.planning.send_window import Window


@dataclass(frozen=True)
class Pilot:
    """Automation limited to a segment; everything else is planned in observe-only mode."""

    tiers: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    customers: frozenset[str] = frozenset()
    max_invoices: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.tiers or self.tags or self.customers or self.max_invoices)

    def covers(self, customer: CustomerFacts) -> bool:
        return self.scope_covers(customer.tier, customer.tags, customer.external_id)

    def scope_covers(self, tier: str, tags: Sequence[str], external_id: str) -> bool:
        """Whether the scope (tiers, tags, customers) takes in a customer; every customer when
        the pilot names none."""
        if not (self.tiers or self.tags or self.customers):
            return True
        return (
            tier in self.tiers
            or bool(self.tags.intersection(tags))
            or external_id in self.customers
        )


@dataclass(frozen=True)
class PlanRules:
    business_timezone: str
    window: Window = field(default_factory=Window)
    frequency_cap: timedelta = timedelta(days=3)
    write_off: dict[str, Decimal] = field(default_factory=dict)
    resolved_when: frozenset[str] = frozenset(RESOLUTIONS)
    escalation_routes: dict[str, str] = field(default_factory=dict)
    pilot: Pilot = field(default_factory=Pilot)
    control_share: Decimal = Decimal(0)  # ARBOT_CONTROL_SHARE (bot.planning.control)
    sender: Sender = field(default_factory=lambda: Sender("Accounts Receivable"))
    attach_invoice_pdf: bool = False  # ARBOT_ATTACH_INVOICE_PDF: a step's own say wins
    # ARBOT_UNDO_SECONDS: a trusted step's reminder, approved automatically, waits as long as
    # one a person approved, so that its Undo can take it back
    undo: timedelta = timedelta(0)

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanRules:
        start, end = settings.window()
        return cls(
            business_timezone=settings.timezone,
            window=Window(start, end, settings.weekday_numbers()),
            frequency_cap=timedelta(days=settings.frequency_cap_days),
            write_off=dict(settings.write_off),
            resolved_when=frozenset(settings.resolved_when),
            escalation_routes=dict(settings.escalation_routes),
            pilot=Pilot(
                tiers=frozenset(settings.pilot_tiers),
                tags=frozenset(t.lower() for t in settings.pilot_tags),
                customers=frozenset(settings.pilot_customers),
                max_invoices=settings.pilot_max_invoices,
            ),
            control_share=settings.control_share,
            sender=sender_from(settings),
            attach_invoice_pdf=settings.attach_invoice_pdf,
            undo=timedelta(seconds=settings.undo_seconds),
        )


def sender_from(settings: Settings) -> Sender:
    """Who a reminder is from, as its message names it: ARBOT_BUSINESS_NAME, ARBOT_FROM_EMAIL."""
    return Sender(settings.business_name, settings.from_email, None)
