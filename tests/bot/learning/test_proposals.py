"""The weekly look back: each rule fires on its evidence and not without it; proposals are stored
as `proposed` once, pass the loader and the linter, and a person approves, rejects or rolls back.
Plus the proposal's Slack card, within Block Kit's limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.errors import UserError
from bot.core.models import Customer, Event, Invoice, PlaybookVersion, Reminder, ReminderInvoice
from bot.core.runtime import Runtime
from bot.learning import proposals, rules
from bot.learning.check import check_bundle
from bot.learning.diff import DIFF_LIMIT, readable_diff
from bot.learning.edit import edit_step
from bot.learning.versions import active_version, bundle_of, rollback
from bot.ledger.upsert import apply_batch
from bot.payments.record import cancel_for_invoices, record_payment
from bot.planning.messages import MessageInvoice, Sender, message_context
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from integrations.base.slack import ProposalView
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_proposal import code_block, proposal_blocks
from playbooks.loader import BUNDLED, parse_playbook
from playbooks.render import Renderer
from tests.integrations.test_slack_blocks import check_limits
from tests.support.ledger_files import row, write

pytestmark = (
    pytest.mark.slow
)  # thresholds: each case records dozens of reminders, edits or payments

TODAY = date(2026, 3, 16)
FIRST_NAMES = (
    "Maria",
    "James",
    "Priya",
    "Daniel",
    "Aisha",
    "Tom",
    "Elena",
    "Marcus",
    "Grace",
    "Luis",
)
LINK = "https://pay.example.com/l/abc123"


# --- the softened rule ---------------------------------------------------------------------------


def test_an_edit_softens_when_15_percent_shorter_or_when_it_drops_a_firm_phrase() -> None:
    before = "x" * 100
    assert rules.softening_signals(before, "x" * 85) == ["15% shorter"]
    assert rules.softening_signals(before, "x" * 86) == []
    firm = "Please arrange payment as soon as you can. Thanks."
    assert rules.softening_signals(firm, "Please pay whenever convenient. Thanks, Dana.") == [
        "dropped “as soon as you can”, “please arrange payment”"
    ]
    assert rules.softening_signals(firm, firm + " We appreciate it.") == []


def plan_strategic(runtime: Runtime, tmp_path: Path, customers: int) -> list[int]:
    """Strategic customers with one invoice each, three days late: today's plan is the +3
    `gentle` email for each."""
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Harbor Dental {n}",
            invoice_number=f"INV-{100 + n}",
            issue_date="2026-02-01",
            due_date="2026-03-13",
            amount=f"{1000 + n}.50",
            balance=f"{1000 + n}.50",
            contact_name=f"{FIRST_NAMES[n]} Smith",
            email=f"ap@c{n}.example",
            tier="strategic",
            tags="",
        )
        for n in range(customers)
    ]
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "ledger.csv", rows)), now)
        run = run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
    assert {item.step.key for item in run.plan.items} == {"gentle"}
    with runtime.sessions() as session:  # in invoice order: the plan orders by expected effect
        covers = dict(
            session.execute(
                select(Invoice.number, ReminderInvoice.reminder_id).join(
                    ReminderInvoice, ReminderInvoice.invoice_id == Invoice.id
                )
            ).all()
        )
    assert sorted(covers.values()) == sorted(run.reminder_ids.values())
    return [covers[f"INV-{100 + n}"] for n in range(customers)]


def softer(n: int) -> tuple[str, str]:
    return (
        f"Invoice INV-{100 + n}: a quick note",
        f"Hi {FIRST_NAMES[n]},\n\nJust a note that invoice INV-{100 + n} for ${1000 + n:,}.50 was "
        "due on March 13, 2026, 3 days ago. No rush at all.\n\nReply and we will send the "
        "payment details.\n\nThanks,\nThe accounts team\n\n"
        "To stop receiving these reminders, just reply and tell us.",
    )


def edit_all(runtime: Runtime, reminder_ids: list[int], softened: int) -> None:
    """The first `softened` reminders get a short friendly rewrite; the rest get a sentence more."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        for n, reminder_id in enumerate(reminder_ids):
            reminder = session.get(Reminder, reminder_id)
            assert reminder is not None and reminder.body_text is not None
            subject, body = (
                softer(n)
                if n < softened
                else (reminder.subject, reminder.body_text + "\nWe appreciate your business.")
            )
            decision, problems = approvals.edit(
                session, reminder_id, "U0APPROVER", subject, body, now, rules=StaleRules()
            )
            assert decision.changed, problems


def test_eight_of_ten_softened_edits_propose_a_generic_template_for_that_step(
    runtime: Runtime, tmp_path: Path
) -> None:
    edit_all(runtime, plan_strategic(runtime, tmp_path, 10), softened=8)
    with runtime.sessions() as session:
        found = rules.evaluate(session, TODAY, runtime.settings.timezone)
    assert [p.change for p in found] == ["softened:strategic:gentle"]
    proposal = found[0]
    assert proposal.rationale.startswith(
        "8 of the last 10 +3 messages to strategic accounts were softened by approvers."
    )
    playbook = parse_playbook(proposal.playbook_yaml, "proposal")
    gentle = next(
        s for ladder, s in playbook.all_steps() if (ladder, s.key) == ("strategic", "gentle")
    )
    assert gentle.template == "strategic_gentle"
    body = proposal.templates["strategic_gentle/body.txt.j2"]
    assert "{{ contact.first_name or customer.name }}" in body and "{{ total }}" in body
    for specific in ("Harbor", "Maria", "Marcus", "INV-10", "1,00", "March 13"):
        assert specific not in body
    assert all(check.ok for check in check_bundle(proposal.bundle()))
    other = message_context(
        customer_name="Summit Builders",
        customer_id="C-77",
        contact_name="Grace Lee",
        invoices=[
            MessageInvoice(
                "INV-9",
                date(2026, 2, 1),
                date(2026, 3, 11),
                "USD",
                Decimal("2000"),
                Decimal("2000"),
            )
        ],
        day=TODAY,
        sender=Sender("Brightwater Supply Co."),
    )
    text = Renderer(proposal.templates).render("strategic_gentle", other, "email").text
    assert text.startswith(
        "Hi Grace,\n\nJust a note that invoice INV-9 for $2,000.00 was due on March 11, 2026, "
        "5 days ago. No rush at all."
    )


def test_seven_softened_edits_of_ten_propose_nothing(runtime: Runtime, tmp_path: Path) -> None:
    edit_all(runtime, plan_strategic(runtime, tmp_path, 10), softened=7)
    with runtime.sessions() as session:
        assert rules.evaluate(session, TODAY, runtime.settings.timezone) == []


def test_nine_edits_are_not_yet_evidence_even_when_all_softened(
    runtime: Runtime, tmp_path: Path
) -> None:
    edit_all(runtime, plan_strategic(runtime, tmp_path, 9), softened=9)
    with runtime.sessions() as session:
        assert rules.evaluate(session, TODAY, runtime.settings.timezone) == []


def test_edits_older_than_the_window_do_not_count(runtime: Runtime, tmp_path: Path) -> None:
    edit_all(runtime, plan_strategic(runtime, tmp_path, 10), softened=10)
    with runtime.sessions() as session:
        assert (
            rules.evaluate(
                session, TODAY + timedelta(weeks=rules.WEEKS + 1), runtime.settings.timezone
            )
            == []
        )


def test_edits_that_still_name_something_of_that_customer_make_no_template(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Every edit softened, but each also says an amount that is no placeholder (what was paid):
    written into a template it would go to every customer, so nothing is proposed."""
    reminder_ids = plan_strategic(runtime, tmp_path, 10)
    now = runtime.clock.now()
    with runtime.writing() as session:
        for n, reminder_id in enumerate(reminder_ids):
            subject, body = softer(n)
            body = body.replace("No rush at all.", "We got $500.00 of it, thank you.")
            decision, problems = approvals.edit(
                session, reminder_id, "U0A", subject, body, now, rules=StaleRules()
            )
            assert decision.changed, problems
    with runtime.sessions() as session:
        assert rules.evaluate(session, TODAY, runtime.settings.timezone) == []


def test_a_text_message_edit_with_a_pay_link_keeps_the_link_only_when_there_is_one(
    runtime: Runtime, tmp_path: Path
) -> None:
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Atlas Logistics {n}",
            invoice_number=f"I-{n}",
            due_date="2026-03-09",
            contact_name=f"{FIRST_NAMES[n]} Kim",
            email="",
            tags="",
        )
        for n in range(10)
    ]
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "ledger.csv", rows)), now)
        for invoice in session.scalars(select(Invoice)):
            invoice.payment_link = f"{LINK}{invoice.number}"
        run = run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
        assert {(i.step.key, i.channel) for i in run.plan.items} == {("plus7", "sms")}
        for n, reminder_id in enumerate(sorted(run.reminder_ids.values())):
            text = (
                f"Hi {FIRST_NAMES[n]}, invoice I-{n} for $1,200.00 is still open. "
                f"Pay at {LINK}I-{n}. Thanks! Reply STOP to opt out."
            )
            decision, problems = approvals.edit(
                session, reminder_id, "U0A", None, text, now, rules=StaleRules()
            )
            assert decision.changed, problems
    with runtime.sessions() as session:
        (proposal,) = rules.evaluate(session, TODAY, runtime.settings.timezone)
    sms = proposal.templates["standard_plus7/sms.txt.j2"]
    assert "{% if payment_link %}Pay at {{ payment_link }}.{% else %}" in sms
    assert "https://" not in sms
    renderer = Renderer(proposal.templates)
    context = message_context(
        customer_name="Orchard Staffing",
        customer_id="C-5",
        contact_name="Wei Chen",
        invoices=[
            MessageInvoice(
                "R-88", date(2026, 2, 1), date(2026, 3, 9), "USD", Decimal("80"), Decimal("80")
            )
        ],
        day=TODAY,
        sender=Sender("Brightwater"),
    )
    assert renderer.render("standard_plus7", context, "sms").sms == (
        "Hi Wei, invoice R-88 for $80.00 is still open. Reply for payment details. Thanks! "
        "Reply STOP to opt out."
    )


# --- the channel order rule ----------------------------------------------------------------------

SENT = datetime(2026, 2, 20, 15, 0, tzinfo=UTC)  # within the window, more than 7 days ago


def touches(
    session: Session,
    channel: str,
    count: int,
    paid: int,
    step: str = "plus7",
    paid_after_days: int = 3,
    ledger_day: bool = False,
    sent: datetime = SENT,
    timezone: str = "America/New_York",
) -> None:
    """`count` reminders of one step sent at `sent`, each about one invoice; the first `paid` of
    them were followed by a bank payment `paid_after_days` later (with `ledger_day`, by the ledger
    marking the invoice paid on that day of the business in `timezone`: paid_at the start of the
    day there, as a ledger file's paid_date is stored)."""
    now = sent
    sent_on = sent.astimezone(ZoneInfo(timezone)).date()
    start = session.scalar(select(func.count()).select_from(Customer)) or 0
    numbers = range(start, start + count)
    customers = [
        Customer(
            source="csv",
            external_id=f"C-{n}",
            name=f"Customer {n}",
            tier="standard",
            tags=[],
            created_at=now,
            updated_at=now,
        )
        for n in numbers
    ]
    session.add_all(customers)
    session.flush()
    invoices = [
        Invoice(
            customer_id=customer.id,
            source="csv",
            external_id=f"I-{n}",
            number=f"I-{n}",
            issue_date=date(2026, 1, 1),
            due_date=date(2026, 2, 13),
            currency="USD",
            total=Decimal("500.00"),
            balance=Decimal("500.00"),
            created_at=now,
            updated_at=now,
        )
        for n, customer in zip(numbers, customers, strict=True)
    ]
    reminders = [
        Reminder(
            customer_id=customer.id,
            channel=channel,
            plan_date=sent_on,
            step_key=step,
            state="sent",
            idempotency_key=f"test:{n}",
            sent_at=sent,
            created_at=now,
            updated_at=now,
        )
        for n, customer in zip(numbers, customers, strict=True)
    ]
    session.add_all(invoices)
    session.add_all(reminders)
    session.flush()
    session.add_all(
        ReminderInvoice(
            reminder_id=reminder.id,
            invoice_id=invoice.id,
            step_key=step,
            due_date=invoice.due_date,
        )
        for invoice, reminder in zip(invoices, reminders, strict=True)
    )
    if ledger_day:
        day = sent_on + timedelta(days=paid_after_days)
        for invoice in invoices[:paid]:
            invoice.status, invoice.balance = "paid", Decimal("0.00")
            invoice.paid_at = datetime.combine(day, time(0), ZoneInfo(timezone))
        return
    # Recorded as a bank file is: each payment new, its rows written together at the end, and
    # the reminders still waiting for those invoices cancelled once for all of them.
    paid_at = sent + timedelta(days=paid_after_days, hours=2)
    with session.no_autoflush:
        for n, invoice in zip(numbers, invoices[:paid], strict=False):
            record_payment(
                session,
                source="bank",
                external_id=f"P-{n}",
                customer_id=invoice.customer_id,
                received_on=sent_on + timedelta(days=paid_after_days),
                amount=Decimal("500.00"),
                currency="USD",
                invoice_ids=[invoice.id],
                now=paid_at,
                known_new=True,
                cancel=False,
            )
    cancel_for_invoices(session, [invoice.id for invoice in invoices[:paid]], paid_at)


def test_texts_paid_twice_as_often_as_emails_propose_texting_first_at_that_step(
    runtime: Runtime,
) -> None:
    with runtime.writing() as session:
        touches(session, "sms", 20, paid=10)
        touches(session, "email", 20, paid=5)
        found = rules.evaluate(session, TODAY, runtime.settings.timezone)
    assert [p.change for p in found] == ["channel_order:standard:plus7:sms,email"]
    assert (
        "10 of 20 text messages (50%) were followed by a payment within 7 days, "
        "against 5 of 20 emails (25%)" in found[0].rationale
    )
    playbook = parse_playbook(found[0].playbook_yaml, "proposal")
    steps = {(ladder, s.key): s.channels for ladder, s in playbook.all_steps()}
    assert steps[("standard", "plus7")] == ("sms", "email")
    assert steps[("transactional", "plus7")] == ("email", "sms")  # not this ladder
    assert readable_diff(BUNDLED.read_text(), found[0].playbook_yaml).count("\n+ ") == 1


def test_a_ledger_paid_day_on_the_day_of_the_touch_counts_as_following_it(
    runtime: Runtime,
) -> None:
    """A ledger file's paid day is stored from the start of the day, before a touch sent later
    that day: it counts by days, as a bank payment received that day does."""
    with runtime.writing() as session:
        touches(session, "sms", 20, paid=10, paid_after_days=0, ledger_day=True)
        touches(session, "email", 20, paid=5, paid_after_days=0, ledger_day=True)
        found = rules.evaluate(session, TODAY, runtime.settings.timezone)
    assert [p.change for p in found] == ["channel_order:standard:plus7:sms,email"]


@pytest.mark.parametrize(
    ("timezone", "sent"),
    [
        # Tokyo, UTC+9: sent at 10:00 on February 20 there (01:00 UTC that day); the ledger's
        # paid day February 20 is stored as 00:00 there, 15:00 UTC on February 19
        ("Asia/Tokyo", datetime(2026, 2, 20, 1, 0, tzinfo=UTC)),
        # New York, UTC-5: sent at 20:00 on February 20 there (01:00 UTC on February 21); the
        # ledger's paid day February 20 is stored as 05:00 UTC on February 20
        ("America/New_York", datetime(2026, 2, 21, 1, 0, tzinfo=UTC)),
    ],
)
def test_a_ledger_paid_day_counts_by_the_business_day_of_the_touch_not_the_utc_day(
    runtime: Runtime, timezone: str, sent: datetime
) -> None:
    """The touch and the ledger's paid day fall on one day of the business, but on two UTC days:
    the paid day still counts as following the touch."""
    with runtime.writing() as session:
        for channel, paid in (("sms", 10), ("email", 5)):
            touches(
                session,
                channel,
                20,
                paid,
                paid_after_days=0,
                ledger_day=True,
                sent=sent,
                timezone=timezone,
            )
        found = rules.evaluate(session, TODAY, timezone)
    assert [p.change for p in found] == ["channel_order:standard:plus7:sms,email"]
    assert "10 of 20 text messages (50%)" in found[0].rationale
    assert "5 of 20 emails (25%)" in found[0].rationale


@pytest.mark.parametrize(
    ("sms", "sms_paid", "email", "email_paid", "paid_after_days"),
    [
        (20, 9, 20, 5, 3),  # 45% against 25%: 1.8 times, not twice
        (19, 19, 20, 5, 3),  # 19 texts: too few
        (20, 10, 19, 1, 3),  # 19 emails: too few
        (20, 10, 20, 5, 8),  # paid eight days later: not within seven
        (20, 0, 20, 0, 3),  # nobody paid
    ],
)
def test_channel_order_needs_twice_the_rate_twenty_of_each_and_payment_within_seven_days(
    runtime: Runtime, sms: int, sms_paid: int, email: int, email_paid: int, paid_after_days: int
) -> None:
    with runtime.writing() as session:
        touches(session, "sms", sms, sms_paid, paid_after_days=paid_after_days)
        touches(session, "email", email, email_paid, paid_after_days=paid_after_days)
        assert rules.evaluate(session, TODAY, runtime.settings.timezone) == []


# --- storing, approving, rejecting, rolling back -------------------------------------------------


def versions(session: Session) -> dict[int, str]:
    return dict(session.execute(select(PlaybookVersion.version, PlaybookVersion.status)).all())


def evidence_for_two_steps(runtime: Runtime) -> None:
    with runtime.writing() as session:
        for step in ("plus7", "plus14"):
            touches(session, "sms", 20, paid=12, step=step)
            touches(session, "email", 20, paid=4, step=step)


def test_proposals_are_stored_as_proposed_once_pass_the_check_and_activate_nothing(
    runtime: Runtime,
) -> None:
    evidence_for_two_steps(runtime)
    now = runtime.clock.now()
    with runtime.writing() as session:
        stored = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        again = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
    assert len(stored) == 2 and again == []
    with runtime.sessions() as session:
        assert versions(session) == {1: "active", 2: "proposed", 3: "proposed"}
        for number in (2, 3):
            version = session.scalars(
                select(PlaybookVersion).where(PlaybookVersion.version == number)
            ).one()
            assert version.proposed_by == "learning" and version.rationale
            assert all(check.ok for check in check_bundle(bundle_of(version)))
        kinds = session.scalars(select(Event.kind).where(Event.kind.like("playbook.%"))).all()
    assert kinds.count("playbook.proposed") == 2 and kinds.count("playbook.evidence") == 2


def test_the_command_line_shows_stores_and_rejects_proposals(runtime: Runtime, cli: Any) -> None:
    evidence_for_two_steps(runtime)
    shown = cli("playbook", "suggest", "--dry-run")
    assert shown.code == 0 and "12 of 20 text messages" in shown.stdout
    assert "version" not in shown.stdout
    with runtime.sessions() as session:
        assert "proposed" not in versions(session).values()  # a dry run stores nothing
    stored = cli("playbook", "suggest")
    assert stored.code == 0 and "version 2 proposed: " in stored.stdout
    assert "version 3 proposed: " in stored.stdout
    assert cli("playbook", "suggest").stdout == "Nothing to propose.\n"
    assert cli("playbook", "reject", "2").code == 0
    with runtime.sessions() as session:
        assert versions(session)[2] != "proposed" and versions(session)[3] == "proposed"
    missing = cli("playbook", "reject", "9")
    assert missing.code == 1 and "there is no playbook version 9" in missing.stderr


def test_approve_activates_the_proposal_and_rollback_returns_to_the_version_before(
    runtime: Runtime,
) -> None:
    with runtime.writing() as session:
        touches(session, "sms", 20, paid=12)
        touches(session, "email", 20, paid=4)
    now = runtime.clock.now()
    with runtime.writing() as session:
        (version,) = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        version_id = version.id
    with runtime.writing() as session:
        first = proposals.approve(session, version_id, "U0APPROVER", now)
    with runtime.writing() as session:
        second = proposals.approve(session, version_id, "U0SECOND", now)
    assert (first.changed, first.status) == (True, "active")
    assert "`arbot playbook rollback` goes back to version 1" in first.message
    assert not second.changed and "already active (approved by U0APPROVER)" in second.message
    with runtime.writing() as session:
        active = active_version(session)
        assert active is not None and active.version == 2
        assert bundle_of(active).playbook.tiers["standard"][2].channels == ("sms", "email")
        assert rollback(session, "U0APPROVER", now).version == 1
        assert versions(session) == {1: "active", 2: "retired"}


def test_reject_retires_it_and_the_same_change_waits_a_window_before_it_is_proposed_again(
    runtime: Runtime,
) -> None:
    with runtime.writing() as session:
        touches(session, "sms", 20, paid=12)
        touches(session, "email", 20, paid=4)
    now = runtime.clock.now()
    with runtime.writing() as session:
        (version,) = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        version_id = version.id
    with runtime.writing() as session:
        assert proposals.id_of_version(session, 2) == version_id
        with pytest.raises(UserError, match="no playbook version 9"):
            proposals.id_of_version(session, 9)
        rejected = proposals.reject(session, version_id, "U0APPROVER", now)
        twice = proposals.reject(session, version_id, "U0SECOND", now)
        approved_after = proposals.approve(session, version_id, "U0SECOND", now)
        assert versions(session) == {1: "active", 2: "retired"}
        assert proposals.propose_all(session, TODAY, now, runtime.settings.timezone) == []
    assert (rejected.changed, rejected.status) == (True, "retired")
    assert not twice.changed and "already rejected by U0APPROVER" in twice.message
    assert not approved_after.changed
    later = now + timedelta(weeks=rules.WEEKS, days=1)
    with runtime.writing() as session:
        assert [
            v.version
            for v in proposals.propose_all(session, TODAY, later, runtime.settings.timezone)
        ] == [3]


def test_approving_a_proposal_made_against_an_older_playbook_sets_it_aside(
    runtime: Runtime,
) -> None:
    evidence_for_two_steps(runtime)
    now = runtime.clock.now()
    with runtime.writing() as session:
        first, second = (
            v.id for v in proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        )
    with runtime.writing() as session:
        assert proposals.approve(session, first, "U0A", now).status == "active"
        outdated = proposals.approve(session, second, "U0A", now)
    assert outdated.status == "retired"
    assert "proposed as a change to version 1, but version 2 is active now" in outdated.message
    with runtime.writing() as session:
        (again,) = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        ladder = bundle_of(again).playbook.tiers["standard"]
        assert [s.channels for s in ladder[2:4]] == [("sms", "email"), ("sms", "email")]
        assert versions(session) == {1: "retired", 2: "active", 3: "retired", 4: "proposed"}


# --- the playbook file and the diff ---------------------------------------------------------------


def test_editing_a_step_changes_that_step_only_and_keeps_the_comments() -> None:
    source = BUNDLED.read_text()
    edited = edit_step(source, "patients/standard", "plus10", channels=["email", "sms"])
    changed = [
        (a, b) for a, b in zip(source.splitlines(), edited.splitlines(), strict=True) if a != b
    ]
    line = (
        "        - {key: plus10, offset_days: 10, channels: [%s], tone: friendly, "
        "template: quick_nudge}"
    )
    assert changed == [(line % "sms, email", line % "email, sms")]
    assert (
        edited.count(line % "sms, email") == 1
    )  # the transactional ladder of the segment keeps it
    assert "# Clinics billing patients" in edited
    renamed = edit_step(source, "strategic", "check_in", template="strategic_check_in")
    assert "template: strategic_check_in}" in renamed
    with pytest.raises(ValueError, match="no step plus99"):
        edit_step(source, "standard", "plus99", template="x")


def test_the_readable_diff_is_cut_at_a_line_to_fit_a_slack_section() -> None:
    old = "\n".join(f"line {n}: " + "a" * 60 for n in range(200))
    new = "\n".join(f"line {n}: " + "b" * 60 for n in range(200))
    diff = readable_diff(old, new)
    assert len(diff) <= DIFF_LIMIT
    assert diff.startswith("--- active\n+++ proposed")
    assert diff.splitlines()[-1].endswith("more lines")
    assert all(line.startswith(("-", "+", "@", " ", "…")) for line in diff.splitlines())


# --- the Slack card ------------------------------------------------------------------------------


def view(**fields: object) -> ProposalView:
    base: dict[str, object] = {
        "version_id": 42,
        "version": 7,
        "rationale": "8 of the last 10 +14 messages to strategic accounts were softened <by> "
        "approvers",
        "diff": "--- active\n+++ proposed\n-a\n+b",
        "status": "proposed",
    }
    base.update(fields)
    return ProposalView(**base)  # type: ignore[arg-type]


def test_a_waiting_proposal_has_approve_and_reject_carrying_the_version_id() -> None:
    blocks = proposal_blocks(view())
    check_limits(blocks)
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("proposal_approve", "42"),
        ("proposal_reject", "42"),
    ]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert "softened &lt;by&gt; approvers" in texts[0]
    assert texts[1] == "```\n--- active\n+++ proposed\n-a\n+b\n```"


def test_a_huge_diff_and_rationale_are_escaped_and_cut_to_fit_their_sections() -> None:
    diff = "\n".join(f"+ <{n}> & " + "x" * 80 for n in range(400))
    blocks = proposal_blocks(view(diff=diff, rationale="why " * 2000))
    check_limits(blocks)
    code = blocks[2]["text"]["text"]
    assert code.startswith("```\n+ &lt;0&gt; &amp; ") and code.endswith("```")
    assert "… (cut to fit" in code and len(code) <= 3000
    assert code_block("```inner```").count("```") == 2  # a fence inside cannot close the block


def test_a_decided_proposal_shows_who_decided_and_no_buttons() -> None:
    blocks = proposal_blocks(view(status="active", decided="approved", decided_by="U0APPROVER"))
    check_limits(blocks)
    assert not [b for b in blocks if b["type"] == "actions"]
    assert "Approved" in blocks[-1]["elements"][0]["text"]
    assert "<@U0APPROVER>" in blocks[-1]["elements"][0]["text"]
    by_cli = proposal_blocks(view(status="retired", decided="rejected", decided_by="cli"))
    assert by_cli[-1]["elements"][0]["text"] == ":no_entry_sign: Rejected by cli"


def test_the_card_of_a_stored_proposal_shows_its_diff_and_then_its_decision(
    runtime: Runtime,
) -> None:
    with runtime.writing() as session:
        touches(session, "sms", 20, paid=12)
        touches(session, "email", 20, paid=4)
    now = runtime.clock.now()
    with runtime.writing() as session:
        (version,) = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        waiting = proposals.view_of(session, version.id)
        proposals.reject(session, version.id, "U0APPROVER", now)
        decided = proposals.view_of(session, version.id)
    assert waiting.status == "proposed" and waiting.decided is None
    assert "-    - {key: plus7, offset_days: 7, channels: [email, sms]" in waiting.diff
    assert "+    - {key: plus7, offset_days: 7, channels: [sms, email]" in waiting.diff
    assert (decided.status, decided.decided, decided.decided_by) == (
        "retired",
        "rejected",
        "U0APPROVER",
    )


def test_the_weekly_job_stores_the_proposals_and_returns_their_cards(runtime: Runtime) -> None:
    with runtime.writing() as session:
        touches(session, "sms", 20, paid=12)
        touches(session, "email", 20, paid=4)
    cards = proposals.weekly_proposals(runtime, TODAY)
    assert [(c.version, c.status) for c in cards] == [(2, "proposed")]
    assert cards[0].rationale.startswith("At step plus7 (+7) for standard accounts")
    assert proposals.weekly_proposals(runtime, TODAY) == []


@pytest.mark.parametrize("written", ["March 9, 2026", "3/9/2026"])
def test_a_text_message_edits_date_becomes_a_placeholder_or_no_template_is_proposed(
    runtime: Runtime, tmp_path: Path, written: str
) -> None:
    """A text names the month of its dates (March 9, 2026): the template made from an approver's
    text says the date of each customer's invoice, never the one of the customer it was written
    for. A date an approver typed in digits (3/9/2026) is one customer's date left in the text:
    no template is proposed from it."""
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Atlas Logistics {n}",
            invoice_number=f"I-{n}",
            due_date="2026-03-09",
            contact_name=f"{FIRST_NAMES[n]} Kim",
            email="",
            tags="",
        )
        for n in range(10)
    ]
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "ledger.csv", rows)), now)
        run = run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
        for n, reminder_id in enumerate(sorted(run.reminder_ids.values())):
            text = (
                f"Hi {FIRST_NAMES[n]}, invoice I-{n} for $1,200.00 was due {written}. "
                "Reply for payment details. Thanks! Reply STOP to opt out."
            )
            decision, problems = approvals.edit(
                session, reminder_id, "U0A", None, text, now, rules=StaleRules()
            )
            assert decision.changed, problems
    with runtime.sessions() as session:
        proposed = rules.evaluate(session, TODAY, runtime.settings.timezone)
    if "/" in written:
        assert proposed == []
        return
    (proposal,) = proposed
    sms = proposal.templates["standard_plus7/sms.txt.j2"]
    assert written not in sms
    context = message_context(
        customer_name="Orchard Staffing",
        customer_id="C-5",
        contact_name="Wei Chen",
        invoices=[
            MessageInvoice(
                "R-88", date(2026, 7, 1), date(2026, 8, 3), "USD", Decimal("80"), Decimal("80")
            )
        ],
        day=TODAY,
        sender=Sender("Brightwater"),
    )
    assert Renderer(proposal.templates).render("standard_plus7", context, "sms").sms == (
        "Hi Wei, invoice R-88 for $80.00 was due August 3, 2026. Reply for payment details. "
        "Thanks! Reply STOP to opt out."
    )
