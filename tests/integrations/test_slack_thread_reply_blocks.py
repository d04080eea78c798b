"""The escalation's parent message with its contact and what was sent, and the Reply, Show and
Mark disputed forms, at their largest, within Block Kit's limits (50 blocks a message, 100 a
modal, 3,000 characters a section, unique action_ids in a block, 100 options a select)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from integrations.base.mrkdwn import Mrkdwn
from integrations.base.slack import (
    ContactLine,
    EscalationView,
    HistoryLine,
    InvoiceLine,
    SentLine,
)
from integrations.slack_escalation import (
    dispute_modal,
    escalation_blocks,
    history_messages,
    reply_modal,
    sent_modal,
)
from tests.support.fake_slack import validate_blocks

LONG = "&<>*_" * 700  # 3,500 characters that grow when escaped


def _view() -> EscalationView:
    return EscalationView(
        id=7,
        customer_id=1,
        customer_name=LONG,
        customer_ref="C-1",
        tier="standard",
        owner="U07DANA01",
        state="open",
        reason="replied",
        detail=LONG,
        label="dispute",
        wrote=LONG,
        at_stake="$1,200.00",
        suggestion=LONG,
        claimed_by=None,
        invoices=tuple(
            InvoiceLine(f"INV-{n}", "$1.00", 3, False, None, f"https://pay.example/{n}?a=1&b=2")
            for n in range(300)
        ),
        history=tuple(
            HistoryLine(datetime(2026, 3, 1, tzinfo=UTC), "note.added", Mrkdwn(LONG))
            for _ in range(200)
        ),
        contacts=tuple(
            ContactLine(LONG, f"a{n}@example.com", "+13125550142", "billing", "opted out of email")
            for n in range(40)
        ),
        sent=tuple(
            SentLine(n, datetime(2026, 3, 1, tzinfo=UTC), "email", "second reminder", LONG)
            for n in range(3)
        ),
    )


def test_the_parent_message_at_its_largest_is_within_the_limits() -> None:
    blocks = escalation_blocks(_view())
    assert validate_blocks(blocks) == []
    shows = [b["accessory"] for b in blocks if b.get("accessory")]
    assert [s["action_id"] for s in shows] == ["esc_sent"] * 3
    assert [s["value"] for s in shows] == ["0", "1", "2"]
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert "esc_reply" in [b["action_id"] for b in buttons]
    for message in history_messages(_view()):
        assert validate_blocks(message) == []


def test_the_forms_at_their_largest_are_within_the_limits() -> None:
    reply = reply_modal(7, LONG, "ap@example.com", None, LONG, LONG * 2, "Mon 16 Mar 09:00 CDT")
    assert validate_blocks(reply["blocks"], max_blocks=100) == []
    fields = {b.get("block_id"): b["element"] for b in reply["blocks"] if b["type"] == "input"}
    assert len(fields["body"]["initial_value"]) <= fields["body"]["max_length"] == 3000
    assert len(fields["subject"]["initial_value"]) <= fields["subject"]["max_length"] == 150

    blocked = reply_modal(7, LONG, None, LONG, "s", "t", None)
    assert validate_blocks(blocked["blocks"], max_blocks=100) == [] and "submit" not in blocked

    shown = sent_modal(LONG, LONG, LONG * 200)
    assert validate_blocks(shown["blocks"], max_blocks=100) == []


def _dispute_picker(count: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The Mark disputed form's blocks for a customer with `count` open invoices, checked
    against the limits every block keeps, and its invoice select."""
    many = [(f"INV-{n}", f"INV-{n} · {LONG}") for n in range(count)]
    blocks = dispute_modal(date(2026, 3, 1).day, LONG, many)["blocks"]
    assert validate_blocks(blocks, max_blocks=50) == []
    for block in blocks:
        texts = [block.get("text"), *block.get("elements", [])]
        for text in texts:
            if isinstance(text, dict) and text.get("type") == "mrkdwn":
                assert len(text["text"]) <= 3000
        ids = [e["action_id"] for e in block.get("elements", []) if "action_id" in e]
        assert len(ids) == len(set(ids))
    picker = next(b for b in blocks if b.get("block_id") == "invoices")["element"]
    options = picker["options"]
    assert len(options) <= 100
    assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in options)
    assert len({o["value"] for o in options}) == len(options)
    assert all(o in options for o in picker["initial_options"])
    return blocks, picker


def test_mark_disputed_at_its_largest_offers_all_open_invoices_within_the_limits() -> None:
    blocks, picker = _dispute_picker(150)
    every = [o for o in picker["options"] if o["text"]["text"] == "All 150 open invoices"]
    assert every and picker["initial_options"] == every
    listed = [o["value"] for o in picker["options"] if o not in every]
    assert listed == [f"INV-{n}" for n in range(99)]
    notes = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert any("the other 51 are not" in note for note in notes)


def test_mark_disputed_lists_as_many_open_invoices_as_a_select_holds_all_picked() -> None:
    _, picker = _dispute_picker(100)
    assert [o["value"] for o in picker["options"]] == [f"INV-{n}" for n in range(100)]
    assert picker["initial_options"] == picker["options"]

    _, picker = _dispute_picker(101)
    assert len(picker["options"]) == 100
    assert picker["initial_options"][0]["text"]["text"] == "All 101 open invoices"
