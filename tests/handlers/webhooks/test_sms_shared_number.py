"""A number shared by several contacts (a front desk, a family phone) is opted out whole, however the
text says it (RULES A7, B2): "STOP" and "Please stop texting me" reach every contact at the number,
with the same events, and no text waits for any of them. Through the signed Twilio webhook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from bot.core.clock import FixedClock
from bot.core.models import Contact, Event, InboundMessage, Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from tests.support.inbound_requests import TODAY, text_in
from tests.support.ledger_files import row, write

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

SHARED = "+13125550142"
ELSEWHERE = "+13125550199"
OPT_OUTS = ["STOP", "Please stop texting me"]


@pytest.fixture
def rt(inbound_settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Runtime]:
    """Two customers, each with a reminder waiting; the second one's contact shares the number."""
    runtime = start(inbound_settings, clock=clock)
    rows = [
        row(invoice_number="INV-1001", due_date="2026-03-09", phone=SHARED),
        row(
            customer_id="C-2",
            customer_name="Harbor Dental",
            invoice_number="INV-2001",
            due_date="2026-03-09",
            contact_name="Sam Lee",
            email="billing@harbor.example",
            phone=SHARED,
        ),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
        run_plan(session, PlanRules.from_settings(inbound_settings), TODAY, clock.now(), False)
    yield runtime
    runtime.close()


def _colleague_at_the_number(rt: Runtime) -> int:
    """A second contact of the first customer, on file after the first, at the same number; the
    first customer's waiting reminder becomes a text to her."""
    with rt.writing() as session:
        billing = session.scalars(select(Contact).order_by(Contact.id)).first()
        assert billing is not None
        colleague = Contact(
            customer_id=billing.customer_id,
            name="Jane Park",
            email="jane.park@ridgeline.example",
            phone=SHARED,
            sms_consent=True,
            role="primary",
            created_at=billing.created_at,
            updated_at=billing.updated_at,
        )
        session.add(colleague)
        session.flush()
        session.execute(
            update(Reminder)
            .where(Reminder.customer_id == billing.customer_id)
            .values(channel="sms", contact_id=colleague.id)
        )
        return colleague.id


def _texts_waiting_to_each_contact(rt: Runtime) -> None:
    with rt.writing() as session:
        for reminder in session.scalars(select(Reminder)):
            reminder.channel = "sms"
            assert reminder.contact_id is not None and reminder.state in ("planned", "approved")


def _opted_out(rt: Runtime) -> dict[int, bool]:
    with rt.sessions() as session:
        return {c.id: c.sms_opted_out_at is not None for c in session.scalars(select(Contact))}


def _opt_out_events(rt: Runtime) -> set[tuple[int | None, int, str]]:
    with rt.sessions() as session:
        events = session.scalars(select(Event).where(Event.kind == "contact.opted_out"))
        return {(e.customer_id, e.payload["contact"], e.payload["channel"]) for e in events}


def _states(rt: Runtime) -> set[str]:
    with rt.sessions() as session:
        return set(session.scalars(select(Reminder.state)))


def _contacts(rt: Runtime) -> dict[int, tuple[int, str | None]]:
    with rt.sessions() as session:
        return {c.id: (c.customer_id, c.phone) for c in session.scalars(select(Contact))}


@pytest.mark.parametrize("body", OPT_OUTS)
def test_an_opt_out_texted_by_a_number_two_contacts_of_one_customer_share_reaches_both(
    rt: Runtime, app: httpx.Client, body: str
) -> None:
    with rt.writing() as session:  # the other customer is at another number here
        session.execute(
            update(Contact).where(Contact.email == "billing@harbor.example").values(phone=ELSEWHERE)
        )
    colleague = _colleague_at_the_number(rt)
    contacts = _contacts(rt)
    at_number = {cid for cid, (_, phone) in contacts.items() if phone == SHARED}
    assert colleague in at_number and len(at_number) == 2

    assert text_in(app, body).status_code == 200

    assert _opted_out(rt) == {cid: cid in at_number for cid in contacts}
    assert _opt_out_events(rt) == {(contacts[cid][0], cid, "sms") for cid in at_number}
    with rt.sessions() as session:
        text_to_colleague = session.scalars(
            select(Reminder).where(Reminder.contact_id == colleague)
        ).one()
        assert text_to_colleague.state == "cancelled"


@pytest.mark.parametrize("body", OPT_OUTS)
def test_an_opt_out_texted_by_a_number_two_customers_share_reaches_both_and_their_texts(
    rt: Runtime, app: httpx.Client, body: str
) -> None:
    _texts_waiting_to_each_contact(rt)
    contacts = _contacts(rt)
    assert len({customer for customer, _ in contacts.values()}) == 2
    assert {phone for _, phone in contacts.values()} == {SHARED}

    assert text_in(app, body).status_code == 200

    assert _opted_out(rt) == dict.fromkeys(contacts, True)
    assert _opt_out_events(rt) == {
        (customer, cid, "sms") for cid, (customer, _) in contacts.items()
    }
    assert _states(rt) == {"cancelled"}


def test_a_free_worded_opt_out_from_a_shared_number_still_goes_to_a_person(
    rt: Runtime, app: httpx.Client
) -> None:
    """Whose account it is cannot be told from the number: the text is kept for a person, as any
    text from it is, besides the number being opted out."""
    assert text_in(app, "Please stop texting me").status_code == 200
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        unmatched = session.scalars(select(Event).where(Event.kind == "reply.unmatched")).one()
        assert stored.customer_id is None and unmatched.payload["inbound"] == stored.id
