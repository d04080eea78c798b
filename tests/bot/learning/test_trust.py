"""Trust is earned and lost: a step whose last 30 decided reminders were approved as written is
proposed for automatic approval; once a person approves that, its next reminders are approved by
arbot behind every other check; an edit of one of its drafts, or disputes past the bound, take
the trust back at once, and its reminders not yet claimed wait for a click again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.clock import FixedClock
from bot.core.models import (
    Contact,
    Event,
    InboundMessage,
    Invoice,
    Reminder,
    SlackRetry,
)
from bot.core.runtime import Runtime
from bot.core.vocabulary import TRUSTED_APPROVER
from bot.learning import proposals, rules
from bot.learning.edit import set_auto_approve
from bot.learning.trust import trusted_steps
from bot.learning.trust_rules import TRUST_AFTER, trust_proposals
from bot.learning.versions import active_version, bundle_of
from bot.planning.posting import cards_for
from bot.planning.summary import summary_for
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from integrations.slack_blocks import plan_header_blocks, reminder_blocks
from integrations.slack_ids import Action
from playbooks.loader import BUNDLED
from tests.support.smtp_server import SmtpServer
from tests.support.trusted_step import (
    EARNERS,
    LATER,
    LATER_NOW,
    NEWCOMERS,
    TODAY,
    approve,
    earn_trust,
    plan,
    plan_today,
)


@pytest.fixture
def planned(runtime: Runtime, tmp_path: Path) -> dict[str, int]:
    """Today's plan: 30 `gentle` reminders waiting, and the newcomers' heads-up (skipped)."""
    return plan_today(runtime, tmp_path)


def proposed_changes(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return [
            p.change
            for p in rules.evaluate(session, TODAY, runtime.settings.timezone)
            if p.rule == "trust"
        ]


def test_29_clean_approvals_propose_nothing_and_30_propose_trusting_the_step(
    runtime: Runtime, planned: dict[str, int]
) -> None:
    ids = sorted(planned.values())
    assert len(ids) == TRUST_AFTER
    approve(runtime, ids[:-1])
    assert proposed_changes(runtime) == []
    approve(runtime, ids[-1:])
    assert proposed_changes(runtime) == ["trust:strategic:gentle"]
    with runtime.sessions() as session:
        (proposal,) = [
            p
            for p in rules.evaluate(session, TODAY, runtime.settings.timezone)
            if p.rule == "trust"
        ]
    gentle = next(s for s in proposal.bundle().playbook.tiers["strategic"] if s.key == "gentle")
    assert gentle.auto_approve
    assert proposal.rationale.startswith(
        "The last 30 reminders of step gentle (gentle reminder, 3 days late) for strategic "
        "accounts, decided from 2026-03-16 to 2026-03-16, were approved as written"
    )
    assert "none edited or skipped, and none drew a dispute or an opt-out reply" in (
        proposal.rationale
    )


@pytest.mark.parametrize("blemish", ["edit", "dispute", "opt_out"])
def test_an_edit_a_dispute_or_an_opt_out_among_the_last_30_proposes_nothing(
    runtime: Runtime, planned: dict[str, int], blemish: str
) -> None:
    ids = sorted(planned.values())
    now = runtime.clock.now()
    if blemish == "edit":
        approve(runtime, ids[1:])
        with runtime.writing() as session:
            reminder = session.get(Reminder, ids[0])
            assert reminder is not None and reminder.body_text is not None
            decision, problems = approvals.edit(
                session,
                ids[0],
                "U0APPROVER",
                reminder.subject,
                reminder.body_text + "\nThank you for your business.",
                now,
                rules=StaleRules(),
            )
            assert decision.changed, problems
    else:
        approve(runtime, ids)
        with runtime.writing() as session:
            reminder = session.get(Reminder, ids[0])
            assert reminder is not None
            session.add(
                InboundMessage(
                    channel="email",
                    received_at=now,
                    sender="ap@c0.example",
                    raw="-",
                    text="We never ordered this.",
                    reminder_id=ids[0],
                    customer_id=reminder.customer_id,
                    label=blemish,
                )
            )
    assert proposed_changes(runtime) == []


@pytest.fixture
def trusted(runtime: Runtime, clock: FixedClock, planned: dict[str, int]) -> Iterator[list[int]]:
    """The trust proposal approved today; on LATER the newcomers' `gentle` reminders, stored."""
    yield earn_trust(runtime, clock, planned)


def test_after_a_person_approves_trust_the_steps_next_reminders_are_approved_by_arbot(
    runtime: Runtime, trusted: list[int]
) -> None:
    undo = timedelta(seconds=runtime.settings.undo_seconds)
    assert undo > timedelta(0)
    with runtime.sessions() as session:
        reminders = [session.get(Reminder, rid) for rid in trusted]
        assert len(reminders) == NEWCOMERS
        for reminder in reminders:
            assert reminder is not None and reminder.step_key == "gentle"
            assert (reminder.state, reminder.approved_by) == ("approved", TRUSTED_APPROVER)
            assert reminder.send_after is not None
            assert reminder.send_after.replace(tzinfo=UTC) >= LATER_NOW + undo
        since = trusted_steps(session)
        assert list(since) == [("strategic", "gentle")]
        summary = summary_for(session, LATER)
        cards = cards_for(session, [r for r in reminders if r is not None], "America/New_York")
    assert summary.trusted == ("step gentle for strategic accounts, since 16 Mar 2026",)
    header = str(plan_header_blocks(summary))
    assert "Approved automatically" in header and "since 16 Mar 2026" in header
    blocks = reminder_blocks(cards[0])
    assert "Approved automatically: this step has earned trust since 16 Mar 2026" in str(blocks[0])
    buttons = [e["action_id"] for e in blocks[-2]["elements"]]
    assert buttons == [Action.UNDO, Action.SKIP]  # Undo and Skip until it is claimed


def test_an_undo_then_edit_of_a_trusted_draft_takes_the_trust_back_at_once(
    runtime: Runtime, trusted: list[int]
) -> None:
    edited, other = trusted
    now = runtime.clock.now()
    with runtime.writing() as session:  # the other card is in Slack
        session.execute(
            update(Reminder)
            .where(Reminder.id == other)
            .values(slack_channel="C0FIN", slack_ts="9.1")
        )
    with runtime.writing() as session:
        assert approvals.withdraw(session, edited, "U0APPROVER", now).changed  # Undo
        reminder = session.get(Reminder, edited)
        assert reminder is not None and reminder.body_text is not None
        decision, problems = approvals.edit(
            session,
            edited,
            "U0APPROVER",
            reminder.subject,
            reminder.body_text + "\nThanks!",
            now,
            rules=StaleRules(),
        )
        assert decision.changed, problems
    with runtime.sessions() as session:
        version = active_version(session)
        assert version is not None and version.approved_by == "arbot (trust withdrawn)"
        gentle = next(
            s for s in bundle_of(version).playbook.tiers["strategic"] if s.key == "gentle"
        )
        assert not gentle.auto_approve
        assert trusted_steps(session) == {}
        back = session.get(Reminder, other)
        assert back is not None and (back.state, back.approved_by) == ("planned", None)
        event = session.scalars(select(Event).where(Event.kind == "playbook.trust_withdrawn")).one()
        assert event.payload["back_to_planned"] == [other]
        owed = session.execute(select(SlackRetry.kind, SlackRetry.channel, SlackRetry.ts)).all()
        assert owed == [("redraw", "C0FIN", "9.1")]  # the sweep redraws its card as waiting
        summary = summary_for(session, LATER)
        assert trust_proposals(session, bundle_of(version)) == []  # earned anew from here
    assert summary.trusted == ()
    assert len(summary.untrusted) == 1
    assert "edited one of its drafts" in summary.untrusted[0]
    assert "Trust taken back" in str(plan_header_blocks(summary))


def test_two_disputes_among_a_trusted_steps_sent_reminders_take_trust_back_before_the_plan(
    runtime: Runtime, clock: FixedClock, trusted: list[int]
) -> None:
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.id.in_(trusted))
            .values(state="sent", sent_at=LATER_NOW + timedelta(hours=1))
        )
        for reminder_id in trusted[:1]:
            session.add(dispute(session, reminder_id))
    clock.set(LATER_NOW + timedelta(days=1))
    plan(runtime, LATER + timedelta(days=1))
    with runtime.sessions() as session:
        assert list(trusted_steps(session)) == [("strategic", "gentle")]  # one is not enough
    with runtime.writing() as session:
        session.add(dispute(session, trusted[1]))
    clock.set(LATER_NOW + timedelta(days=2))
    plan(runtime, LATER + timedelta(days=2))
    with runtime.sessions() as session:
        assert trusted_steps(session) == {}
        event = session.scalars(select(Event).where(Event.kind == "playbook.trust_withdrawn")).one()
    assert event.payload["why"] == "2 of its last 2 reminders drew a dispute or an opt-out reply"


def dispute(session: Any, reminder_id: int) -> InboundMessage:
    reminder = session.get(Reminder, reminder_id)
    return InboundMessage(
        channel="email",
        received_at=LATER_NOW,
        sender="ap@example.com",
        raw="-",
        text="This invoice is wrong.",
        reminder_id=reminder_id,
        customer_id=reminder.customer_id,
        label="dispute",
    )


def test_a_rejected_trust_proposal_is_not_proposed_again_within_eight_weeks(
    runtime: Runtime, planned: dict[str, int]
) -> None:
    approve(runtime, sorted(planned.values()))
    now = runtime.clock.now()
    with runtime.writing() as session:
        (stored,) = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        proposals.reject(session, stored.id, "U0APPROVER", now)
    with runtime.writing() as session:
        assert (
            proposals.propose_all(
                session, TODAY, now + timedelta(weeks=7), runtime.settings.timezone
            )
            == []
        )
        again = proposals.propose_all(
            session, TODAY, now + timedelta(weeks=8, days=1), runtime.settings.timezone
        )
    assert len(again) == 1


# --- every other guard still holds ----------------------------------------------------------

SECRET = "test-secret-key"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def test_a_paid_invoices_trusted_reminder_is_still_not_sent(
    cli: Any,
    runtime: Runtime,
    trusted: list[int],
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paid, due = trusted
    with runtime.writing() as session:
        reminder = session.get(Reminder, paid)
        assert reminder is not None
        paid_address = session.scalar(
            select(Contact.email).where(Contact.customer_id == reminder.customer_id)
        )
        assert paid_address
        session.execute(
            update(Invoice)
            .where(Invoice.customer_id == reminder.customer_id)
            .values(balance=Decimal(0), status="paid")
        )
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        "ARBOT_FROM_EMAIL": "ar@brightwater.example",
        "ARBOT_SECRET_KEY": SECRET,
        "ARBOT_NOW": (LATER_NOW + timedelta(hours=1)).isoformat(),
    }.items():
        monkeypatch.setenv(name, value)
    result = cli("send")
    assert result.code == 0, result.stderr
    assert f"reminder {paid} cancelled: paid" in result.stdout
    # the 30 approved by a person and the other trusted one went out; not the paid one
    sent_to = [m["To"] for m in smtp.mailbox.messages]
    assert len(sent_to) == EARNERS + 1 and not any(paid_address in to for to in sent_to)
    with runtime.sessions() as session:
        states = dict(session.execute(select(Reminder.id, Reminder.state)).all())
    assert (states[paid], states[due]) == ("cancelled", "sent")


def test_auto_approve_is_set_in_place_in_a_flow_or_a_block_mapping_and_nothing_else_changes() -> (
    None
):
    source = BUNDLED.read_text(encoding="utf-8")
    flipped = set_auto_approve(source, "patients/standard", "plus10", True)
    changed = [
        (a, b) for a, b in zip(source.splitlines(), flipped.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1 and changed[0][1].endswith(
        "template: quick_nudge, auto_approve: true}"
    )
    off = set_auto_approve(source, "transactional", "due_today", False)
    assert "auto_approve: false}" in off and len(off) == len(source) + 1
    block = source.replace(
        "    - {key: courtesy, offset_days: -3, channels: [email], tone: courtesy, template: courtesy}",
        "    - key: courtesy\n      offset_days: -3\n      channels: [email]\n      tone: courtesy\n"
        "      template: courtesy",
    )
    assert set_auto_approve(block, "standard", "courtesy", True) == block.replace(
        "      template: courtesy\n", "      template: courtesy\n      auto_approve: true\n", 1
    )
