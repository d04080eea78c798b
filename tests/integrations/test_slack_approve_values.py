"""What Approve and Approve all carry: the reminders and the version of each one's message as the
card or header showed it, within Slack's 2,000 characters a button's value and with unique
action_ids in each block; and the values of buttons posted before still read."""

from __future__ import annotations

from datetime import date

import pytest

from integrations.base.slack import MOST_APPROVED_TOGETHER, PlanSummary, TierLine
from integrations.slack_approvals import approve_all_button
from integrations.slack_blocks import plan_header_blocks, reminder_blocks
from integrations.slack_ids import (
    BUTTON_VALUE_LIMIT,
    Approving,
    Covered,
    approve_all_value,
    approve_value,
    approving,
    covered_by,
)
from tests.integrations.test_slack_blocks import card, check_limits
from tests.support.fake_slack import validate_blocks

DAY = date(2026, 3, 16)


def version(n: int) -> str:
    return f"{n % 1_000_000:06d}"[::-1].replace("0", "_")  # distinct, in base64url's alphabet


def test_approve_names_the_reminder_and_the_message_its_card_shows() -> None:
    blocks = reminder_blocks(card(7, text_version="Ab3_-z"))
    check_limits(blocks)
    assert validate_blocks(blocks) == []
    approve = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    assert (approve["action_id"], approve["value"]) == ("approve", "7|Ab3_-z")
    assert approving(approve["value"]) == Approving(7, "Ab3_-z")
    assert approving(approve_value(2**31 - 1, "zzzzzz")) == Approving(2**31 - 1, "zzzzzz")


def test_an_approve_posted_before_it_carried_the_version_reads_as_showing_none() -> None:
    assert approving("7") == Approving(7, None)
    for odd in ("7|", "7|short", "7|toolong1", "7|a b c!", "x|Ab3_-z", "", "|Ab3_-z"):
        with pytest.raises(ValueError):
            approving(odd)


def test_approve_all_names_each_reminder_with_its_messages_version_and_reads_back() -> None:
    shown = [(n, version(n)) for n in (3, 4, 5, 9, 12, 13)]
    value, count = approve_all_value(DAY, "standard", shown)
    assert count == 6
    assert value == "2026-03-16|standard|3-5.9.12-13|" + "".join(v for _, v in shown)
    assert covered_by(value) == Covered(
        DAY, "standard", ids=frozenset(n for n, _ in shown), versions=dict(shown)
    )


@pytest.mark.parametrize(
    "ids",
    [
        range(123_456_789, 123_456_789 + MOST_APPROVED_TOGETHER),  # long ids, in one run
        range(100_000_000, 100_000_000 + 1000 * MOST_APPROVED_TOGETHER, 1000),  # none adjacent
    ],
)
def test_approve_all_fits_slacks_limit_covering_the_first_that_fit(ids: range) -> None:
    shown = [(n, version(n)) for n in ids]
    value, count = approve_all_value(DAY, "transactional", shown)
    assert len(value) <= BUTTON_VALUE_LIMIT
    covered = covered_by(value)
    assert covered.ids == frozenset(ids[:count]) and covered.versions == dict(shown[:count])
    # all of them, or as many as fit: one more (9 digits, a dot, 6 characters) would not
    assert count == len(ids) or len(value) > BUTTON_VALUE_LIMIT - 16


def test_a_tier_with_more_waiting_than_a_button_names_is_approved_in_turns_said_on_the_button() -> (
    None
):
    spread = tuple(range(100_000_000, 100_000_000 + 1000 * MOST_APPROVED_TOGETHER, 1000))
    tiers = (
        TierLine("standard", 5000, 0, "$1.00", 5000, spread, "$1.00", tuple(map(version, spread))),
        TierLine("transactional", 2, 0, "$1.00", 2, (1, 2), "$1.00", ("aaaaaa", "bbbbbb")),
    )
    blocks = plan_header_blocks(PlanSummary(day=DAY, tiers=tiers, held=()))
    check_limits(blocks)  # unique action_ids in the row, values within 2,000 characters
    assert validate_blocks(blocks) == []
    standard, transactional = next(b for b in blocks if b["type"] == "actions")["elements"]
    count = len(covered_by(standard["value"]).ids or ())
    assert 0 < count < MOST_APPROVED_TOGETHER
    assert standard["text"]["text"] == f"Approve {count} of 5000 standard"
    assert f"the first {count} of the 5000 reminders" in standard["confirm"]["text"]["text"]
    assert transactional["text"]["text"] == "Approve all 2 transactional"
    assert approve_all_button(DAY, tiers[1])["value"] == "2026-03-16|transactional|1-2|aaaaaabbbbbb"


def test_approve_all_values_posted_before_versions_still_read_as_showing_none() -> None:
    assert covered_by("2026-03-16|standard") == Covered(DAY, "standard")
    assert covered_by("2026-03-16|standard|1-3.7") == Covered(
        DAY, "standard", ids=frozenset({1, 2, 3, 7})
    )
    assert covered_by("2026-03-16|standard|<=40") == Covered(DAY, "standard", up_to=40)
    for odd in (
        "2026-03-16|standard|1-3|aaaaaa",  # a version for one of three
        "2026-03-16|standard|1|aaaaa!",
        "2026-03-16|standard|<=40|aaaaaa",
    ):
        with pytest.raises(ValueError):
            covered_by(odd)
