"""Nothing from outside reaches Slack as a control sequence: every Block Kit builder rendered with
hostile text in every text field it takes, and a hostile customer through the real app. Only the
mentions arbot writes itself stay live; people read English, never a step key or a snake_case word."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.models import Event
from bot.core.runtime import Runtime
from bot.escalations.thread import _describe
from integrations.base.mrkdwn import mrkdwn
from integrations.base.slack import (
    CardInvoice,
    EscalationView,
    HistoryLine,
    InvoiceLine,
    PlanSummary,
    ProposalView,
    ReminderCard,
    ReviewOption,
    ReviewView,
    TierLine,
)
from integrations.slack_blocks import (
    edit_modal,
    group_blocks,
    group_text,
    plan_header_blocks,
    skip_modal,
)
from integrations.slack_escalation import (
    dispute_modal,
    escalation_blocks,
    escalation_text,
    history_messages,
    promise_modal,
    resolve_modal,
)
from integrations.slack_proposal import proposal_blocks, proposal_text
from integrations.slack_review import review_blocks, review_text
from integrations.slack_text import status_text
from tests.support.fake_slack import validate_blocks

HOSTILE = "<!channel> <!here> <@U123> <#C1> <https://evil.example|ok> & <script> *bold*"
OURS = "U0APPROVER"  # the approver, whom arbot mentions itself
OWNER = "U07DANA01"  # the account owner the ledger names, mentioned by arbot too
LIVE = re.compile(r"<[!@#]|<https?:|<script")
EMOJI = re.compile(r":[a-z0-9_+-]+:")
STEP_KEY = re.compile(r"\b(?:plus|minus)\d+\b|\b[a-z]+_[a-z_]+\b")


def texts(payload: Any, mrkdwn_only: bool = False) -> list[str]:
    """Every text a person reads in a payload: the notification `text` and every text object
    (with `mrkdwn_only`, those Slack parses: not plain_text, which shows `<` as it is)."""
    if isinstance(payload, str):
        return [payload]
    found: list[str] = []
    if isinstance(payload, dict):
        plain = payload.get("type") == "plain_text"
        for key, value in payload.items():
            if key == "text" and isinstance(value, str):
                if not (plain and mrkdwn_only):
                    found.append(value)
            elif isinstance(value, dict | list):
                found.extend(texts(value, mrkdwn_only))
    elif isinstance(payload, list):
        for item in payload:
            found.extend(texts(item, mrkdwn_only))
    return found


def leaks(payload: Any) -> list[str]:
    """Control sequences, or raw < and >, that did not come from arbot's own mentions."""
    out = []
    for text in texts(payload, mrkdwn_only=True):
        rest = text.replace(f"<@{OURS}>", "").replace(f"<@{OWNER}>", "")
        rest = re.sub(r"(?m)^> ", "", rest)  # a block quote arbot draws
        if LIVE.search(rest) or "<" in rest or ">" in rest:
            out.append(text)
    return out


def card(**changes: Any) -> ReminderCard:
    base: dict[str, Any] = dict(
        reminder_id=1,
        customer_name=HOSTILE,
        customer_id=HOSTILE,
        tier="standard",
        action="remind",
        state="planned",
        step="plus7",
        channel="email",
        contact=HOSTILE,
        invoices=(CardInvoice(HOSTILE, HOSTILE, 7),),
        total=HOSTILE,
        subject=HOSTILE,
        preview=HOSTILE,
        send_after=HOSTILE,
    )
    base.update(changes)
    return ReminderCard(**base)


def escalation(**changes: Any) -> EscalationView:
    base: dict[str, Any] = dict(
        id=1,
        customer_id=1,
        customer_name=HOSTILE,
        customer_ref=HOSTILE,
        tier="standard",
        owner=OURS,
        state="claimed",
        reason="never_automate",
        detail=HOSTILE,
        label="promise_to_pay",
        wrote=HOSTILE + "\n" + HOSTILE,
        at_stake=HOSTILE,
        suggestion=HOSTILE,
        claimed_by=OURS,
        invoices=(InvoiceLine(HOSTILE, HOSTILE, 9, True, date(2026, 3, 20)),),
        history=(HistoryLine(datetime(2026, 3, 16, 9, 0), "note.added", mrkdwn(HOSTILE)),),
    )
    base.update(changes)
    return EscalationView(**base)


def every_payload() -> list[Any]:
    summary = PlanSummary(
        date(2026, 3, 16),
        (TierLine("standard", 2, 1, HOSTILE, 2),),
        (("frequency_cap", 3), ("never_automate", 1)),
    )
    cards = [
        card(),
        card(reminder_id=2, state="approved", acted_by=OURS, acted_at=HOSTILE, note=HOSTILE),
        card(reminder_id=3, state="cancelled", acted_by=HOSTILE, note="superseded"),
        card(reminder_id=4, action="escalate", state="cancelled", contact=OURS, note="escalated"),
        card(
            reminder_id=5, action="escalate", state="cancelled", note="step owner_call (+10 days)"
        ),
    ]
    review = ReviewView(1, HOSTILE, HOSTILE, (ReviewOption(HOSTILE),) * 3, "open")
    decided = ReviewView(1, HOSTILE, HOSTILE, (ReviewOption(HOSTILE),), "applied", None)
    proposal = ProposalView(1, 2, HOSTILE, HOSTILE, "proposed")
    retired = ProposalView(1, 2, HOSTILE, HOSTILE, "retired", HOSTILE, HOSTILE)
    status = {
        "customer": {
            "name": HOSTILE,
            "id": HOSTILE,
            "tier": "standard",
            "never_automate": True,
            "paused_until": None,
            "owner_slack_id": OURS,
        },
        "invoices": [
            {
                "number": HOSTILE,
                "balance": "12.00",
                "currency": "USD",
                "days_past_due": 7,
                "due_date": "2026-03-09",
                "disputed": True,
                "promise_date": None,
                "payment_link": "https://pay.example/x?a=1&b=<!channel>",
            }
        ],
        "aging": {"currencies": {"USD": {"total": "12.00"}}},
        "touches": [{"at": "2026-03-09T10:00", "channel": "sms", "step": "plus7", "state": "sent"}],
        "next": "plus14 by email, planned, sends after 2026-03-23T14:00",
        "escalations": [{"state": "open", "owner_slack_id": OURS, "reason": "never_automate"}],
    }
    return [
        plan_header_blocks(summary),
        group_blocks(cards),
        group_text(cards),
        edit_modal(1, "email", HOSTILE, HOSTILE, "plus7", HOSTILE, [HOSTILE]),
        skip_modal(1, HOSTILE),
        escalation_blocks(escalation()),
        escalation_blocks(escalation(state="open", label=None, owner=None)),
        escalation_text(escalation()),
        *history_messages(escalation()),
        promise_modal(1, HOSTILE, "2026-03-20"),
        dispute_modal(1, HOSTILE),
        resolve_modal(1, HOSTILE),
        review_blocks(review),
        review_blocks(decided),
        review_text(review),
        proposal_blocks(proposal),
        proposal_blocks(retired),
        proposal_text(proposal),
        status_text(status, show_amounts=True),
    ]


def test_no_builder_lets_a_control_sequence_from_outside_through_in_any_field() -> None:
    payloads = every_payload()
    assert [leak for payload in payloads for leak in leaks(payload)] == []
    everything = json.dumps(payloads)
    assert "&lt;!channel&gt;" in everything and f"<@{OURS}>" in everything
    assert "&amp;lt;" not in everything  # escaped once, never twice


def test_every_builder_stays_within_block_kits_limits_with_hostile_text() -> None:
    for payload in every_payload():
        blocks = payload.get("blocks") if isinstance(payload, dict) else payload
        if isinstance(blocks, list):
            assert validate_blocks(blocks) == []


def test_people_read_english_not_step_keys_or_snake_case_words() -> None:
    read = [t for payload in every_payload() for t in texts(payload)]
    words = [EMOJI.sub("", text.replace(HOSTILE, "")) for text in read]
    found = sorted({m for text in words for m in STEP_KEY.findall(text)})
    assert found == []
    everything = "\n".join(read)
    assert "reminder, 7 days late" in everything
    assert "always handed to a person" in everything
    assert "call by the account owner, 10 days late" in everything
    assert "needs a person: escalated" not in everything


def test_a_history_line_keeps_arbots_mention_live_and_the_approvers_words_escaped() -> None:
    event = Event(
        kind="note.added",
        actor=OURS,
        at=datetime(2026, 3, 16, 9, tzinfo=UTC),
        payload={"text": HOSTILE},
    )
    line = _describe(event, {}, {}, ZoneInfo("UTC"))
    text = json.dumps(history_messages(escalation(history=(HistoryLine(event.at, "n", line),))))
    assert f"note by <@{OURS}>: &lt;!channel&gt;" in text
    assert "&lt;@U0APPROVER&gt;" not in text


def test_a_hostile_customer_reaches_no_payload_of_the_real_app_as_a_control_sequence(
    slack_runtime: Runtime, served: Any, slack_api: Any, tmp_path: Path
) -> None:
    from bot.escalations import posting as escalation_posting
    from bot.escalations import service
    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import read_ledger_csv
    from integrations.slack_chat import SlackChat, web_client
    from tests.handlers.posted_plan import post_plan
    from tests.support.ledger_files import a_week_late, write
    from tests.support.slack_requests import wait_for

    rows = a_week_late(2)
    rows[0]["customer_name"] = "<!channel> & Co <script>"
    with slack_runtime.writing() as session:
        batch = read_ledger_csv(write(tmp_path / "l.csv", rows))
        apply_batch(session, batch, slack_runtime.clock.now())
    post_plan(slack_runtime, slack_api)
    assert served.click("approve", "1").status_code == 200
    wait_for(lambda: slack_api.calls("chat.update"))
    status = served.command("status channel & co").json()
    assert "&lt;!channel&gt; &amp; Co &lt;script&gt;" in status["text"]
    with slack_runtime.writing() as session:
        service.open_or_add(
            session, 1, "never_automate", slack_runtime.clock.now(), detail="<!here> said so"
        )
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    assert escalation_posting.post_new(slack_runtime, chat)
    redrawn = texts(slack_api.calls("chat.update"), mrkdwn_only=True)
    assert any("&lt;!channel&gt; &amp; Co &lt;script&gt;" in text for text in redrawn)
    payloads = [*slack_api.calls(), status]
    assert [leak for payload in payloads for leak in leaks(payload)] == []
