"""Block Kit from pure functions, checked against Slack's limits."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any

from bot.core.vocabulary import REMINDER_STATES, TIERS
from integrations.base.slack import CardInvoice, PlanSummary, ReminderCard, TierLine, escape
from integrations.slack_blocks import (
    MAX_BLOCKS,
    _most_bare_blocks,
    edit_modal,
    group_blocks,
    pack,
    plan_header_blocks,
    reminder_blocks,
)
from tests.support.fake_slack import validate_blocks


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
        "text_version": f"v{n:05d}",
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
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
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


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    """The action_ids of every button drawn, in rows or beside a section's text."""
    elements = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    elements += [b["accessory"] for b in blocks if "accessory" in b]
    return [e["action_id"] for e in elements]


def test_a_300_reminder_day_fits_slacks_limits_in_few_messages() -> None:
    cards = [card(n, invoices=1 + n % 30) for n in range(300)]
    groups = pack(cards)
    assert sum(len(g) for g in groups) == 300
    for group in groups:
        check_limits(group_blocks(group))
    # 3 blocks a waiting reminder (the facts with Preview beside them, buttons, divider): 16 to
    # a message (it was 4 blocks and 12 a message while the card carried the email's opening).
    assert len(groups) == 19


def test_cards_alike_but_for_their_text_are_counted_in_every_state_once() -> None:
    """Each reminder's names, invoices and message version are its own; its block count in every
    state is not, and a plan's cards are not each drawn in all of them again."""
    _most_bare_blocks.cache_clear()
    cards = [card(n) for n in range(40)] + [card(n, action="escalate") for n in range(40, 60)]

    pack(cards)

    assert _most_bare_blocks.cache_info().misses == 2  # a reminder and an escalation


def test_a_waiting_reminder_shows_what_differs_in_fields_and_the_message_one_click_away() -> None:
    blocks = reminder_blocks(card(7, step_offset=7, step_position=3))
    assert buttons(blocks) == ["approve", "edit", "skip", "preview"]
    actions = next(b for b in blocks if b["type"] == "actions")
    # Edit and Skip name the reminder; Approve, the version of the message the card shows too
    assert [e["value"] for e in actions["elements"]] == ["7|v00007", "7", "7"]
    assert blocks[0]["accessory"]["value"] == "7"
    assert "Customer &lt;7&gt; &amp; Sons" in blocks[0]["text"]["text"]  # escaped
    facts = [f["text"] for f in blocks[0]["fields"]]
    assert facts[:4] == [
        "*Step*\nThird reminder, 7 days late",
        "*Asks for*\n$3,600.00",
        "*To*\nEmail to ap@c7.example",
        "*Sends*\nafter Mon 09:00 EDT",
    ]
    assert "INV-7-0: $1,200.00 (7 days late)" in facts[4]
    everything = str(blocks)
    assert "plus7" not in everything  # the step in words, not its key
    assert "We wanted to check in" not in everything  # the message is behind Preview
    assert len(blocks) == 3


def test_an_acted_reminder_shows_who_and_when_and_only_undo_while_approved() -> None:
    blocks = reminder_blocks(card(7, state="approved", acted_by="U0APPROVER", acted_at="10:02 EDT"))
    assert buttons(blocks) == ["preview", "undo"]  # the message can be read in every state
    line = next(b for b in blocks if b.get("accessory", {}).get("action_id") == "undo")
    assert line["text"]["text"] == ":white_check_mark: Approved by <@U0APPROVER> at 10:02 EDT"
    for done in ("sent", "skipped", "cancelled"):
        assert buttons(reminder_blocks(card(7, state=done, acted_by="U0APPROVER"))) == ["preview"]
    assert buttons(reminder_blocks(card(7, state="approved", acted_by="playbook"))) == ["preview"]


def test_a_long_invoice_list_is_cut_with_a_count_and_stays_under_3000_characters() -> None:
    blocks = reminder_blocks(card(1, invoices=400))
    check_limits(blocks)
    assert "and 388 more" in blocks[0]["fields"][4]["text"]


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
        "goes to a person: the playbook hands it to a person 30 days late"
        in blocks[0]["text"]["text"]
    )
    assert "<@U07DANA01>" in blocks[0]["text"]["text"]
    assert not any(b["type"] == "actions" for b in blocks)


def test_the_header_has_one_approve_all_button_per_tier_with_waiting_reminders() -> None:
    summary = PlanSummary(
        day=date(2026, 3, 16),
        tiers=(
            TierLine("strategic", 2, 1, "$5,000.00", 0),
            TierLine("standard", 12, 3, "$40,000.00", 12, tuple(range(1, 13)), "", ("v" * 6,) * 12),
            TierLine("transactional", 5, 0, "$900.00", 2, (20, 21), "", ("w" * 6,) * 2),
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
    assert "*Held back today*: contacted recently enough: 3, disputed: 1" in str(blocks)


def test_the_edit_modal_is_prefilled() -> None:
    view = edit_modal(9, "email", "Subject line", "Body text", "plus7", "Acme", ["Earlier edit"])
    assert view["callback_id"] == "edit_reminder"
    ids = [b.get("block_id") for b in view["blocks"]]
    assert "subject" in ids and "body" in ids
    assert view["blocks"][1]["element"]["initial_value"] == "Subject line"
    assert "How this team wrote this step last time" in str(view)


def test_escape_only_touches_what_slack_needs() -> None:
    assert escape("a & b < c > d *e*") == "a &amp; b &lt; c &gt; d *e*"


ACTED_BY = ("U0APPROVER", "playbook", None)


def acted(c: ReminderCard, state: str, by: str | None) -> ReminderCard:
    """The card redrawn in `state`, as posting.cards_for draws it then (who acted, when, why)."""
    if state == "planned":
        return replace(c, state=state, acted_by=None, acted_at=None, note=None)
    note = None if state in ("approved", "sending", "sent") else "x" * 4000
    return replace(c, state=state, acted_by=by, acted_at="10:02 EDT", note=note)


def problems(blocks: list[dict[str, Any]]) -> list[str]:
    check_limits(blocks)
    return validate_blocks(blocks)


def test_every_redraw_of_a_group_message_stays_within_slacks_limits() -> None:
    states = [str(s) for s in REMINDER_STATES]
    cards = [
        card(n, invoices=1 + n % 40, action="escalate" if n % 17 == 0 else "remind")
        for n in range(300)
    ]
    groups = pack(cards)
    assert sum(len(g) for g in groups) == 300
    for group in groups:
        assert problems(group_blocks(group)) == []  # as posted: every card planned
        for state in states:  # Approve all, a send run, a skip ... on the whole message
            for by in ACTED_BY:
                assert problems(group_blocks([acted(c, state, by) for c in group])) == [], state
        for shift in range(len(states)):  # and every mix of states in one message
            mixed = [
                acted(c, states[(i + shift) % len(states)], ACTED_BY[i % len(ACTED_BY)])
                for i, c in enumerate(group)
            ]
            assert problems(group_blocks(mixed)) == []


def test_a_card_has_as_many_blocks_in_every_state_as_when_it_was_posted() -> None:
    for action in ("remind", "escalate"):
        posted = len(reminder_blocks(card(1, action=action)))
        for state in REMINDER_STATES:
            for by in ACTED_BY:
                assert len(reminder_blocks(acted(card(1, action=action), state, by))) <= posted


def test_the_plan_header_stays_within_slacks_limits_in_every_state() -> None:
    reasons = [f"reason_{n}_" + "y" * 200 for n in range(40)]
    for awaiting in (0, 1, 150_000):
        for held in ((), tuple((r, n) for n, r in enumerate(reasons))):
            summary = PlanSummary(
                day=date(2026, 3, 16),
                tiers=tuple(
                    TierLine(
                        str(tier),
                        200_000,
                        200_000,
                        ", ".join(f"{c}9,999,999,999.99" for c in "$€£¥" * 40),
                        awaiting,
                        tuple(range(0, 2 * awaiting, 2)),
                        "$1.00",
                        ("v" * 6,) * awaiting,
                    )
                    for tier in TIERS
                ),
                held=held,
            )
            assert problems(plan_header_blocks(summary)) == []


def test_a_card_says_which_invoice_copies_its_email_carries() -> None:
    blocks = reminder_blocks(card(7, invoices=2, copies=("INV-7-0", "INV-7-1")))
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*Attaches*\nPDF copies of INV-7-0, INV-7-1" in fields
    plain = reminder_blocks(card(8))
    assert not any("Attaches" in f["text"] for b in plain for f in b.get("fields", []))
