"""The card of a bank payment to place: every stored candidate can be picked, within Slack's limits."""

from __future__ import annotations

import json

from bot.payments.reconcile import MAX_CANDIDATES
from integrations.base.slack import ReviewOption, ReviewView
from integrations.slack_review import MAX_OPTIONS, review_blocks
from tests.support.fake_slack import validate_blocks


def _buttons(blocks: list[dict[str, object]]) -> list[dict[str, str]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]  # type: ignore[attr-defined]


def test_every_stored_candidate_has_its_apply_button_and_its_whole_line() -> None:
    long = "Acme Inc: " + ", ".join(f"INV-{n} $100.00" for n in range(1000, 1030))
    options = tuple(ReviewOption(f"{long} (option {n})") for n in range(1, MAX_CANDIDATES + 1))
    view = ReviewView(
        4, "$100.00 on 2026-03-10 from Acme Inc", "10 possible matches", options, "open"
    )

    blocks = review_blocks(view)

    assert validate_blocks(blocks) == []
    buttons = _buttons(blocks)
    labels = [b["text"]["text"] for b in buttons]  # type: ignore[index]
    assert labels == [f"Apply {n}" for n in range(1, MAX_CANDIDATES + 1)] + ["Leave unmatched"]
    assert len({b["action_id"] for b in buttons}) == len(buttons)
    assert all(len(b["elements"]) <= 25 for b in blocks if b["type"] == "actions")  # type: ignore[arg-type]
    assert len(blocks) <= 50
    text = json.dumps(blocks)
    for n in range(1, MAX_CANDIDATES + 1):
        assert f"(option {n})" in text  # no candidate's line is cut off
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000  # type: ignore[index]


def test_the_card_offers_as_many_candidates_as_a_review_stores() -> None:
    assert MAX_OPTIONS == MAX_CANDIDATES
