"""CRM context merged into customers: matched by domain, customer id or name; tier, owner, tags
and a billing contact taken; nothing guessed, nothing a person decided overridden."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.core.models import Contact, Customer, Event
from bot.core.runtime import Runtime
from bot.ledger.crm import merge_crm, normal_name
from bot.ledger.upsert import apply_batch
from integrations.base.ledger import ContactRecord, CrmAccount, CrmBatch
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write

OWNERS = {"U07DANA01": "dana@brightwater.example", "U0SAM": "sam@brightwater.example"}


def _ledger(runtime: Runtime, tmp_path: Path) -> None:
    rows = [
        row(customer_id="C-1", customer_name="Ridgeline Roofing LLC", email="ap@ridgeline.example"),
        row(
            customer_id="C-2",
            customer_name="Harbor Dental",
            invoice_number="INV-2",
            email="billing@harbor.example",
            tags="",
        ),
        row(
            customer_id="C-3",
            customer_name="Harbor Dental East",
            invoice_number="INV-3",
            email="east@harbor.example",
            tags="",
        ),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())


def _merge(runtime: Runtime, accounts: list[CrmAccount], match_by: str = "domain") -> object:
    with runtime.writing() as session:
        return merge_crm(
            session, CrmBatch("hubspot", accounts), match_by, OWNERS, runtime.clock.now()
        )


def _customer(runtime: Runtime, ref: str) -> Customer:
    with runtime.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.external_id == ref)).one()
        session.expunge(customer)
        return customer


def test_an_account_matched_by_domain_brings_tier_owner_tags_and_billing_contact(
    runtime: Runtime, tmp_path: Path
) -> None:
    _ledger(runtime, tmp_path)
    billing = ContactRecord("Lee Park", "payables@ridgeline.example", "+13125550100", False, None)
    account = CrmAccount(
        "901",
        "Ridgeline Roofing",
        ("ridgeline.example",),
        tier="strategic",
        owner_email="SAM@brightwater.example",
        billing_contact=billing,
        tags=("key-account",),
    )

    summary = _merge(runtime, [account])

    customer = _customer(runtime, "C-1")
    assert (customer.tier, customer.owner_slack_id, customer.crm_ref) == (
        "strategic",
        "U0SAM",
        "hubspot:901",
    )
    assert "key-account" in customer.tags and "contractor" in customer.tags  # added, none lost
    with runtime.sessions() as session:
        emails = set(
            session.scalars(select(Contact.email).where(Contact.customer_id == customer.id))
        )
        event = session.scalars(select(Event).where(Event.kind == "customer.crm_updated")).one()
    assert emails == {"ap@ridgeline.example", "payables@ridgeline.example"}
    assert event.payload["changes"]["tier"] == ["standard", "strategic"]
    assert summary.matched == 1 and summary.updated == 1  # type: ignore[attr-defined]


def test_an_account_matching_two_customers_changes_nothing_and_says_so(
    runtime: Runtime, tmp_path: Path
) -> None:
    _ledger(runtime, tmp_path)
    account = CrmAccount("77", "Harbor Dental", ("harbor.example",), tier="strategic")

    summary = _merge(runtime, [account])

    assert (
        _customer(runtime, "C-2").tier == "standard"
        and _customer(runtime, "C-3").tier == "standard"
    )
    assert "matches several customers (C-2, C-3)" in summary.conflicts[0]  # type: ignore[attr-defined]


def test_match_by_customer_id_and_by_name(runtime: Runtime, tmp_path: Path) -> None:
    _ledger(runtime, tmp_path)
    _merge(
        runtime,
        [CrmAccount("1", "whatever", external_id="C-2", tier="transactional")],
        "external_id",
    )
    _merge(runtime, [CrmAccount("2", "ridgeline roofing, inc.", tier="strategic")], "name")

    assert _customer(runtime, "C-2").tier == "transactional"
    assert _customer(runtime, "C-1").tier == "strategic"
    assert normal_name("Ridgeline Roofing LLC") == normal_name("ridgeline  roofing, Inc.")


def test_an_unknown_owner_or_no_match_is_listed_not_guessed(
    runtime: Runtime, tmp_path: Path
) -> None:
    _ledger(runtime, tmp_path)
    summary = _merge(
        runtime,
        [
            CrmAccount("5", "Ridgeline", ("ridgeline.example",), owner_email="who@else.example"),
            CrmAccount("6", "Nobody Inc", ("nobody.example",), tier="strategic"),
        ],
    )

    assert _customer(runtime, "C-1").owner_slack_id == "U07DANA01"  # unchanged
    assert summary.unmatched == ["Nobody Inc"]  # type: ignore[attr-defined]
    assert any("who@else.example" in c for c in summary.conflicts)  # type: ignore[attr-defined]


def test_the_crm_never_overrides_never_automate(runtime: Runtime, tmp_path: Path) -> None:
    _ledger(runtime, tmp_path)
    with runtime.writing() as session:
        session.scalars(
            select(Customer).where(Customer.external_id == "C-1")
        ).one().never_automate = True

    summary = _merge(
        runtime, [CrmAccount("9", "Ridgeline", ("ridgeline.example",), tier="transactional")]
    )

    assert _customer(runtime, "C-1").never_automate is True
    assert any("never-automate" in c for c in summary.conflicts)  # type: ignore[attr-defined]


def test_a_crm_address_never_routes_around_an_opt_out(runtime: Runtime, tmp_path: Path) -> None:
    _ledger(runtime, tmp_path)
    with runtime.writing() as session:
        contact = session.scalars(
            select(Contact).where(Contact.email == "ap@ridgeline.example")
        ).one()
        contact.email_opted_out_at = runtime.clock.now()
    same_but_capitals = ContactRecord("AP", "AP@ridgeline.example", None, False, None)
    other = ContactRecord("Lee", "lee@ridgeline.example", None, False, None)

    first = _merge(
        runtime,
        [CrmAccount("1", "Ridgeline", ("ridgeline.example",), billing_contact=same_but_capitals)],
    )
    second = _merge(
        runtime, [CrmAccount("1", "Ridgeline", ("ridgeline.example",), billing_contact=other)]
    )

    with runtime.sessions() as session:
        emails = session.scalars(
            select(Contact.email).where(Contact.email.like("%ridgeline%"))
        ).all()
    assert emails == ["ap@ridgeline.example"]  # neither address was added
    assert first.contacts_added == 0 and second.contacts_added == 0  # type: ignore[attr-defined]
    assert any("opted out" in c for c in second.conflicts)  # type: ignore[attr-defined]


def test_a_free_mail_domain_matches_nobody(runtime: Runtime, tmp_path: Path) -> None:
    rows = [row(customer_id="C-9", customer_name="Solo Painter", email="solo.painter@gmail.com")]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "g.csv", rows)), runtime.clock.now())

    summary = _merge(runtime, [CrmAccount("5", "Big Corp", ("gmail.com",), tier="strategic")])

    assert _customer(runtime, "C-9").tier == "standard"
    assert summary.unmatched == ["Big Corp"]  # type: ignore[attr-defined]
