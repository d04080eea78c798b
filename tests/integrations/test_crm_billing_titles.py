"""Which CRM contact arbot takes as a customer's billing contact: only one a person labelled as
billing, or one whose title names billing or accounts payable; never an executive by title."""

from __future__ import annotations

import pytest

from integrations.crm_http import Person, billing_contact, names_billing, sounds_like_billing


@pytest.mark.parametrize(
    "title",
    [
        "Billing",
        "Billing Specialist",
        "Accounts Payable",
        "Account Payable Clerk",
        "Accounts-Payable Lead",
        "AP Specialist",
        "A/P Coordinator",
        "Payables Manager",
        "Invoicing",
    ],
)
def test_a_title_that_names_billing_or_accounts_payable_makes_a_billing_contact(
    title: str,
) -> None:
    assert sounds_like_billing(title)


@pytest.mark.parametrize(
    "title",
    [
        "Chief Financial Officer",
        "CFO",
        "Finance",
        "Head of Finance",
        "Financial Controller",
        "Controller",
        "Accounting Manager",
        "Accountant",
        "Bookkeeper",
        "VP Billing",
        "Vice President, Accounts Payable",
        "Chief Billing Officer",
        "President",
        "Owner & Billing",
        "CEO",
        "",
    ],
)
def test_finance_and_executive_titles_never_make_a_billing_contact(title: str) -> None:
    assert not sounds_like_billing(title)


def test_an_association_label_naming_billing_marks_anyone_even_an_executive() -> None:
    assert names_billing("Billing contact")
    assert names_billing("Accounts payable")
    assert not names_billing("Decision maker")
    cfo = Person("contact Ana (id 1)", "Ana", "ana@acme.example", None, flagged=True)
    chosen = billing_contact([cfo], "US", [])
    assert chosen is not None and chosen.email == "ana@acme.example"


def test_a_chief_financial_officer_not_marked_billing_is_not_chosen() -> None:
    people = [
        Person(
            "contact Cy (id 2)",
            "Cy",
            "cy@acme.example",
            None,
            titled=sounds_like_billing("Chief Financial Officer"),
        ),
        Person(
            "contact Di (id 3)",
            "Di",
            "di@acme.example",
            None,
            titled=sounds_like_billing("Financial Controller"),
        ),
    ]
    assert billing_contact(people, "US", []) is None
