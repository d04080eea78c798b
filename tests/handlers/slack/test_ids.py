"""The ids Slack sends back: every button a Block Kit builder draws has a listener and every action
listener a button; every form has a listener for its submission and every view listener a form;
and every message and form those builders make stays within Block Kit's limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.core.vocabulary import TRUSTED_APPROVER
from bot.forecasting.cash import Forecast, InvoiceForecast, Week
from bot.forecasting.model import Prediction
from handlers.slack.app import FEATURES
from integrations.base.slack import (
    CardInvoice,
    EscalationLine,
    EscalationView,
    GuardrailView,
    HeldLine,
    HistoryLine,
    InvoiceLine,
    PlanSummary,
    ProposalView,
    ReminderCard,
    ReviewOption,
    ReviewView,
    SentLine,
    TierLine,
)
from integrations.slack_approvals import undo_all_blocks
from integrations.slack_blocks import (
    edit_modal,
    home_view,
    plan_header_blocks,
    reminder_blocks,
    skip_modal,
    text_blocks,
)
from integrations.slack_escalation import (
    dispute_modal,
    escalation_blocks,
    history_messages,
    promise_modal,
    reply_modal,
    resolve_modal,
    sent_modal,
)
from integrations.slack_forecast import forecast_text
from integrations.slack_guardrail import dismiss_modal, guardrail_blocks
from integrations.slack_ids import (
    INPUT,
    Action,
    ApprovedTogether,
    Field,
    Form,
    undo_all_value,
    undone_by,
)
from integrations.slack_plan_views import held_modal, preview_modal
from integrations.slack_plans import (
    MAX_INSTALMENTS,
    plan_modal,
    plan_row,
    resume_confirmation,
    resume_modal,
)
from integrations.slack_proposal import proposal_blocks
from integrations.slack_review import MAX_OPTIONS, review_blocks
from tests.integrations.test_slack_blocks import check_limits
from tests.support.fake_slack import validate_blocks

Block = dict[str, Any]
Constraint = str | re.Pattern[str]
LONG = "Ridgeline & <Roofing> " * 400  # far past any section's 3,000 characters


class Registered:
    """Stands in for Bolt's App and keeps what each feature's `register` asks for."""

    def __init__(self) -> None:
        self.actions: list[Constraint] = []
        self.views: list[Constraint] = []

    def action(self, constraint: Constraint) -> Callable[[Any], Any]:
        self.actions.append(constraint)
        return lambda listener: listener

    def view(self, constraint: Constraint) -> Callable[[Any], Any]:
        self.views.append(constraint)
        return lambda listener: listener

    def command(self, _name: str) -> Callable[[Any], Any]:
        return lambda listener: listener

    def event(self, _kind: str) -> Callable[[Any], Any]:
        return lambda listener: listener


def registered() -> Registered:
    app = Registered()
    for feature in FEATURES:
        feature.register(app, None)  # type: ignore[arg-type]
    return app


def matches(constraint: Constraint, some_id: str) -> bool:
    if isinstance(constraint, re.Pattern):
        return constraint.fullmatch(some_id) is not None
    return constraint == some_id


def card(text: str = "Acme", state: str = "planned", action: str = "remind") -> ReminderCard:
    return ReminderCard(
        reminder_id=7,
        customer_name=text,
        customer_id="C-7",
        tier="standard",
        action=action,
        state=state,
        step="plus7",
        channel="email" if action == "remind" else None,
        contact="ap@acme.example",
        invoices=tuple(CardInvoice(f"INV-{n}", "$1,200.00", n) for n in range(40)),
        total="$48,000.00",
        subject=text,
        preview=text,
        send_after="Mon 09:00 EDT",
        note=text,
        copies=(text, text, "INV-1"),
    )


def escalation(text: str = "Acme", state: str = "open") -> EscalationView:
    return EscalationView(
        id=3,
        customer_id=7,
        customer_name=text,
        customer_ref="C-7",
        tier="standard",
        owner="U07DANA01",
        state=state,
        reason="replied",
        detail=text,
        label="dispute",
        wrote=text,
        at_stake="$1,200.00",
        suggestion=text,
        claimed_by="U07DANA01" if state == "claimed" else None,
        invoices=tuple(
            InvoiceLine(f"INV-{n}", "$1,200.00", n, n % 2 == 0, None) for n in range(200)
        ),
        history=tuple(HistoryLine(datetime(2026, 3, 1, 9, 0), "note", text) for _ in range(60)),
        sent=tuple(SentLine(n, datetime(2026, 3, 1, 9, 0), "email", text, text) for n in range(3)),
    )


def messages(text: str = "Acme") -> list[list[Block]]:
    """One of each message a builder makes, with every button it can show."""
    every_tier_waiting = PlanSummary(
        day=date(2026, 3, 16),
        tiers=tuple(
            TierLine(tier, 2, 1, "$5,000.00", 2)
            for tier in ("strategic", "standard", "transactional")
        ),
        held=(("frequency_cap", 3),),
    )
    held = tuple(
        HeldLine(f"{text} {n}", f"C-{n}", ("disputed", "paused"), (text,)) for n in range(80)
    )
    handed = tuple(EscalationLine(text, "replied", "U07DANA01", "C0ESC", "1.2") for _ in range(40))
    names_and_links = replace(every_tier_waiting, held_customers=held, escalations=handed)
    trust = replace(every_tier_waiting, trusted=(text,) * 40, untrusted=(text,) * 40)
    options = tuple(ReviewOption(f"{text} {n}") for n in range(MAX_OPTIONS + 2))
    return [
        plan_header_blocks(every_tier_waiting),
        plan_header_blocks(names_and_links),
        reminder_blocks(card(text)),
        reminder_blocks(card(text, state="approved")),
        plan_header_blocks(trust),
        reminder_blocks(
            replace(card(text, state="approved"), acted_by=TRUSTED_APPROVER, trusted_since=text)
        ),
        undo_all_blocks(
            text, date(2026, 3, 16), "standard", datetime(2026, 3, 16, 14, 0), "U0APPROVER"
        ),
        reminder_blocks(card(text, state="cancelled", action="escalate")),
        escalation_blocks(escalation(text)),
        escalation_blocks(escalation(text, state="claimed")),
        escalation_blocks(replace(escalation(text, "resolved"), resolution=text, plan=(text,) * 7)),
        escalation_blocks(
            replace(escalation(text, "resolved"), resolution=text, plan=(text,), plan_running=True)
        ),
        escalation_blocks(replace(escalation(text, "claimed"), plan_running=True)),
        *history_messages(escalation(text)),
        proposal_blocks(ProposalView(5, 2, text, text, "proposed")),
        proposal_blocks(ProposalView(5, 2, text, text, "active", "approved", "U0APPROVER")),
        guardrail_blocks(GuardrailView(9, text, text, "bounces", text, text, "proposed")),
        guardrail_blocks(
            GuardrailView(9, text, text, "correction", text, text, "approved", "U0A", holding=True)
        ),
        guardrail_blocks(
            GuardrailView(9, text, text, "no_contact", text, text, "dismissed", "U0A", text)
        ),
        guardrail_blocks(
            GuardrailView(9, text, text, "wrong_contact", text, text, "approved", released_by="U0A")
        ),
        review_blocks(ReviewView(4, text, text, options, "open")),
        text_blocks(text),
        text_blocks(forecast_text(forecast(text), show_amounts=True)),
        home_view(text, text, text)["blocks"],
    ]


def forecast(text: str) -> Forecast:
    """Two years of weeks in five currencies, and many invoices named `text` with no history."""
    guess = Prediction(date(2026, 3, 16), date(2026, 3, 16), None, 0.5, "portfolio")
    invoices = [
        InvoiceForecast(text, text, text, "USD", Decimal(10**9), date(2026, 3, 16), guess)
        for _ in range(200)
    ]
    amounts = {c: Decimal(10**12) for c in ("USD", "EUR", "GBP", "JPY", "CAD")}
    weeks = [Week(date(2026, 3, 16), amounts)] * 104
    return Forecast(date(2026, 3, 16), invoices, weeks)


def forms(text: str = "Acme") -> list[Block]:
    """Every form a builder makes."""
    return [
        edit_modal(7, "email", text, text, "plus7", text, [text, text]),
        edit_modal(7, "sms", None, text, "plus7", text),
        skip_modal(7, text),
        dismiss_modal(9, text),
        promise_modal(3, text, "2026-03-23"),
        dispute_modal(3, text),
        dispute_modal(3, text, [(f"INV-{n}", text) for n in range(150)]),
        resolve_modal(3, text),
        plan_modal(3, text, [("account", text)] + [(f"INV-{n}", text) for n in range(120)], "USD"),
        resume_modal(3, text, {"promise": text, "dispute": text, "pause": text}),
        resume_confirmation(f"3|C0ESC|{text[:50]}", [text], [text]),
        reply_modal(3, text, "ap@acme.example", None, text, text, "Mon 09:00 EDT"),
        reply_modal(3, text, "ap@acme.example", None, text, text, None, [(1, text)], True),
        reply_modal(
            3, text, "ap@a.example", None, text, text, None, [(n, text) for n in range(150)], True
        ),
    ]


def buttons(blocks: list[Block]) -> list[str]:
    """Every button's action_id: in a row of buttons, or beside a section's text."""
    rows = [
        element for block in blocks if block["type"] == "actions" for element in block["elements"]
    ]
    beside = [block["accessory"] for block in blocks if "accessory" in block]
    return [element["action_id"] for element in rows + beside]


def test_every_button_drawn_has_a_listener_and_every_action_listener_a_button() -> None:
    listened = registered().actions
    drawn = {action_id for message in messages() for action_id in buttons(message)}
    assert sorted(d for d in drawn if not any(matches(c, d) for c in listened)) == []
    assert [c for c in listened if not any(matches(c, d) for d in drawn)] == []


def test_every_form_has_a_listener_for_its_submission_and_every_view_listener_a_form() -> None:
    listened = registered().views
    drawn = {form["callback_id"] for form in forms()}
    assert sorted(d for d in drawn if not any(matches(c, d) for c in listened)) == []
    assert [c for c in listened if not any(matches(c, d) for d in drawn)] == []


def test_every_id_is_drawn_by_some_builder() -> None:
    drawn = {action_id for message in messages() for action_id in buttons(message)}
    for action in Action:  # approve_all and review_apply are prefixes: "<id>_<tier or option>"
        assert action in drawn or any(d.startswith(f"{action}_") for d in drawn), action
    assert {form["callback_id"] for form in forms()} == set(Form)
    fields = {
        block["block_id"] for form in forms() for block in form["blocks"] if "block_id" in block
    }
    rows = {plan_row(kind, n) for kind in ("date", "amount") for n in range(1, MAX_INSTALMENTS + 1)}
    assert fields - rows == set(Field)  # a plan's instalment rows are numbered, not in Field
    assert rows <= fields


def test_each_field_of_a_form_is_read_by_the_one_input_id() -> None:
    for form in forms():
        for block in form["blocks"]:
            if block["type"] == "input":
                assert block["element"]["action_id"] == INPUT


def test_every_message_stays_within_block_kits_limits_even_with_very_long_text() -> None:
    for text in ("Acme", LONG):
        for message in messages(text):
            check_limits(message)  # 50 blocks, 3,000 characters a section, unique action_ids
            assert validate_blocks(message) == []


def test_every_form_stays_within_block_kits_limits_even_with_very_long_text() -> None:
    for text in ("Acme", LONG):
        for form in forms(text):
            assert validate_blocks(form["blocks"], "/view/blocks", 100) == []
            assert all(
                len(block["text"]["text"]) <= 3000
                for block in form["blocks"]
                if block["type"] == "section"
            )


def views(text: str = "Acme") -> list[Block]:
    """Every read-only modal a builder makes (no submission, so no callback_id)."""
    held = [HeldLine(f"{text} {n}", f"C-{n}", ("disputed",), (text,)) for n in range(300)]
    return [
        preview_modal(text, text, "email", text, text, text * 40),
        preview_modal(text, text, "sms", None, None, ""),
        held_modal(date(2026, 3, 16), held),
        held_modal(date(2026, 3, 16), []),
        sent_modal(text, text, text * 40),
        sent_modal(text, None, ""),
    ]


def test_every_read_only_view_stays_within_block_kits_limits_even_with_very_long_text() -> None:
    for text in ("Acme", LONG, "&" * 5000):
        for view in views(text):
            assert "callback_id" not in view and "submit" not in view
            assert validate_blocks(view["blocks"], "/view/blocks", 100) == []
            check_limits(view["blocks"][:50])
            check_limits(view["blocks"][50:])
            assert len(view["title"]["text"]) <= 24


def test_an_undo_of_approve_all_names_its_approver_and_old_undos_still_read() -> None:
    day, at = date(2026, 3, 16), datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
    value = undo_all_value(day, "standard", at, "U0APPROVER")
    assert undone_by(value) == ApprovedTogether(day, "standard", at, "U0APPROVER")
    posted_before = f"{day.isoformat()}|standard|{at.isoformat()}"
    assert undone_by(posted_before) == ApprovedTogether(day, "standard", at, None)
    for odd in (f"{posted_before}|", f"{value}|U0OTHER", "2026-03-16|standard"):
        with pytest.raises(ValueError):
            undone_by(odd)
