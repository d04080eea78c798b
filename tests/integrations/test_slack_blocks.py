"""Block Kit from pure functions, checked against Slack's limits."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from integrations.base.slack import CardInvoice, PlanSummary, ReminderCard, TierLine, escape
from integrations.slack_blocks import (
    MAX_BLOCKS,
    edit_modal,
    group_blocks,
    pack,
    plan_header_blocks,
    reminder_blocks,
)


def card(
    n: int, state: str = "planned", invoices: int = 3, action: str = "remind", **extra: Any
) -> ReminderCard:
    fields: dict[str, Any] = {
        "reminder_id": n,
        "customer_name": f"Customer <{n}> & Sons",
        "customer_id": f"C-{n}",
        "tier": "standard",
        "action": action,
        "state": state,
        "step": "plus7",
        "channel": "email",
        "contact": f"ap@c{n}.example",
        "invoices": tuple(CardInvoice(f"INV-{n}-{i}", "$1,200.00", 7 + i) for i in range(invoices)),
        "total": "$3,600.00",
        "subject": "Invoice INV-1 may have slipped through",
        "preview": "Hi Maria,\n\n" + "We wanted to check in. " * 80,
        "send_after": "Mon 09:00 EDT",
    }
    fields.update(extra)
    return ReminderCard(**fields)


def check_limits(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= MAX_BLOCKS
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "actions":
            action_ids = [e["action_id"] for e in block["elements"]]
            assert len(action_ids) == len(set(action_ids))
            assert len(block["elements"]) <= 25
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= 75 and len(element["value"]) <= 2000
        if block["type"] == "context":
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150


def test_a_300_reminder_day_fits_slacks_limits_in_few_messages() -> None:
    cards = [card(n, invoices=1 + n % 30) for n in range(300)]
    groups = pack(cards)
    assert sum(len(g) for g in groups) == 300
    for group in groups:
        check_limits(group_blocks(group))
    # 4 blocks a waiting reminder (section, preview, buttons, divider): 12 to a message.
    assert len(groups) == 25


def test_a_waiting_reminder_has_approve_edit_skip_and_a_preview() -> None:
    blocks = reminder_blocks(card(7))
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == ["approve", "edit", "skip"]
    assert {e["value"] for e in actions["elements"]} == {"7"}
    text = blocks[0]["text"]["text"]
    assert "Customer &lt;7&gt; &amp; Sons" in text  # escaped
    assert "INV-7-0" in text and "7 days late" in text
    assert "Invoice INV-1 may have slipped through" in blocks[1]["elements"][0]["text"]


def test_an_acted_reminder_shows_who_and_when_and_only_undo_while_approved() -> None:
    blocks = reminder_blocks(card(7, state="approved", acted_by="U0APPROVER", acted_at="10:02 EDT"))
    rows = [b for b in blocks if b["type"] == "actions"]
    assert [e["action_id"] for row in rows for e in row["elements"]] == ["undo"]
    assert ":white_check_mark: Approved by <@U0APPROVER> at 10:02 EDT" in str(blocks)
    for done in ("sent", "skipped", "cancelled"):
        blocks = reminder_blocks(card(7, state=done, acted_by="U0APPROVER"))
        assert not any(b["type"] == "actions" for b in blocks)
    by_playbook = reminder_blocks(card(7, state="approved", acted_by="playbook"))
    assert not any(b["type"] == "actions" for b in by_playbook)


def test_a_long_invoice_list_is_cut_with_a_count_and_stays_under_3000_characters() -> None:
    blocks = reminder_blocks(card(1, invoices=400))
    check_limits(blocks)
    assert "and 388 more" in blocks[0]["text"]["text"]


def test_an_escalation_card_names_the_person_and_has_no_buttons() -> None:
    blocks = reminder_blocks(
        card(
            3,
            action="escalate",
            state="cancelled",
            channel=None,
            contact="U07DANA01",
            note="step plus30 (+30 days)",
        )
    )
    assert (
        "needs a person: the playbook hands it to a person 30 days late"
        in blocks[0]["text"]["text"]
    )
    assert "<@U07DANA01>" in blocks[0]["text"]["text"]
    assert not any(b["type"] == "actions" for b in blocks)


def test_the_header_has_one_approve_all_button_per_tier_with_waiting_reminders() -> None:
    summary = PlanSummary(
        day=date(2026, 3, 16),
        tiers=(
            TierLine("strategic", 2, 1, "$5,000.00", 0),
            TierLine("standard", 12, 3, "$40,000.00", 12),
            TierLine("transactional", 5, 0, "$900.00", 2),
        ),
        held=(("frequency_cap", 3), ("disputed", 1)),
    )
    blocks = plan_header_blocks(summary)
    check_limits(blocks)
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == [
        "Approve all 12 standard",
        "Approve all 2 transactional",
    ]
    assert Counter(b["action_id"] for b in buttons).most_common(1)[0][1] == 1
    assert "Held back: contacted recently enough 3, disputed 1" in str(blocks)


def test_the_edit_modal_is_prefilled() -> None:
    view = edit_modal(9, "email", "Subject line", "Body text", "plus7", "Acme", ["Earlier edit"])
    assert view["callback_id"] == "edit_reminder"
    ids = [b.get("block_id") for b in view["blocks"]]
    assert "subject" in ids and "body" in ids
    assert view["blocks"][1]["element"]["initial_value"] == "Subject line"
    assert "How this team wrote this step last time" in str(view)


def test_escape_only_touches_what_slack_needs() -> None:
    assert escape("a & b < c > d *e*") == "a &amp; b &lt; c &gt; d *e*"
