"""The firmest step among a customer's due invoices: by tone, then by offset, and of two equally
firm steps the one that comes first, however often each is due."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bot.planning.facts import InvoiceFacts
from bot.planning.planner import DueInvoice, firmest
from playbooks.model import Step


def step(key: str, tone: str, offset: int) -> Step:
    return Step(key=key, offset_days=offset, channels=("email",), tone=tone, template="polite")


def due(*steps: Step) -> list[DueInvoice]:
    invoice = InvoiceFacts(
        1, "I-1", date(2026, 1, 1), date(2026, 2, 1), "USD", Decimal(1), Decimal(1),
        False, None, False, None,
    )  # fmt: skip
    return [DueInvoice(invoice, s, 7) for s in steps]


def test_the_firmest_tone_wins_then_the_later_offset() -> None:
    polite, firm, firmer = step("a", "polite", 7), step("b", "firm", 7), step("c", "firm", 14)
    assert firmest(due(polite, firm, polite, firmer, firm)) is firmer


def test_of_two_equally_firm_steps_the_first_due_wins_however_often_each_is_due() -> None:
    first, second = step("a", "firm", 14), step("b", "firm", 14)
    assert firmest(due(first, second, first)) is first
    assert firmest(due(second, first, second, first)) is second
