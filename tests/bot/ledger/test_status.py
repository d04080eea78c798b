"""`arbot status`: finding a customer as people type them, and what the account shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.ledger_files import row, write


@pytest.fixture
def ledger(cli: Any, tmp_path: Path) -> None:
    rows = [
        row(),
        row(invoice_number="INV-2", balance="0"),
        row(
            customer_id="C-2",
            customer_name="Harbor Family Dental",
            email="ap@harbor.example",
            invoice_number="H-1",
            due_date="2026-04-30",
            tier="transactional",
        ),
        row(
            customer_id="C-3",
            customer_name="Harbor Eye Care",
            email="ap@harboreye.example",
            invoice_number="E-1",
        ),
        row(
            customer_id="C-4",
            customer_name="Électricité Énergie SA",
            email="ap@ee.example",
            invoice_number="F-1",
            currency="EUR",
        ),
    ]
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0


@pytest.mark.parametrize(
    ("query", "customer_id"),
    [
        ("C-1", "C-1"),
        ("c-1", "C-1"),
        ("Ridgeline Roofing", "C-1"),
        ("ridgeline roofing", "C-1"),
        ("ridgeline", "C-1"),
        ("ÉLECTRICITÉ ÉNERGIE SA", "C-4"),
        ("énergie", "C-4"),
    ],
)
def test_a_customer_is_found_by_id_or_name_in_any_case(
    cli: Any, ledger: None, query: str, customer_id: str
) -> None:
    result = cli("status", query, "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["customer"]["id"] == customer_id


def test_status_json_has_designs_keys_and_only_open_invoices(cli: Any, ledger: None) -> None:
    doc = json.loads(cli("status", "C-1", "--json").stdout)
    assert {"customer", "invoices", "events", "escalations"} <= doc.keys()
    assert [i["number"] for i in doc["invoices"]] == ["INV-1"]
    invoice = doc["invoices"][0]
    assert invoice == {
        "number": "INV-1",
        "issue_date": "2026-01-15",
        "due_date": "2026-02-14",
        "days_past_due": 30,
        "currency": "USD",
        "amount": "1200.00",
        "balance": "1200.00",
        "status": "open",
        "disputed": False,
        "promise_date": None,
        "payment_link": None,
    }
    assert doc["customer"]["contacts"][0]["phone"] == "+13125550142"
    assert doc["aging"]["currencies"]["USD"]["1-30"] == "1200.00"
    assert doc["events"][0]["kind"] == "customer.added"


def test_a_name_that_matches_several_customers_lists_them(cli: Any, ledger: None) -> None:
    result = cli("status", "harbor")
    assert result.code == 1
    assert "'harbor' matches 2 customers" in result.stderr
    assert "Harbor Family Dental (C-2)" in result.stderr
    assert "Harbor Eye Care (C-3)" in result.stderr


def test_a_misspelt_name_gets_suggestions(cli: Any, ledger: None) -> None:
    result = cli("status", "Ridgline Rofing")
    assert result.code == 1
    assert (
        "no customer matches 'Ridgline Rofing'. Did you mean: Ridgeline Roofing (C-1)?"
        in result.stderr
    )


def test_an_unknown_customer_is_a_user_error_without_suggestions(cli: Any, ledger: None) -> None:
    result = cli("status", "Zebra Holdings")
    assert result.code == 1
    assert "no customer matches 'Zebra Holdings'" in result.stderr
    assert result.stdout == ""


def test_the_readable_status_shows_the_account(cli: Any, ledger: None) -> None:
    result = cli("status", "C-1")
    assert result.code == 0
    for text in (
        "Ridgeline Roofing (C-1)",
        "INV-1",
        "$1,200.00",
        "Maria Garcia",
        "added from ledger.csv",
    ):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("query", "customer_id"),
    [
        ("ACME", "ACME"),  # the id as typed, though another customer is named "Acme"
        ("Acme Roofing", "ACME"),
        ("Acme", "B-1"),  # a name as typed, though another customer's id is "ACME"
        ("acme", "B-1"),
        ("b-1", "B-1"),
        ("roofing", "ACME"),
    ],
)
def test_an_exact_id_beats_a_name_and_an_exact_name_beats_part_of_one(
    cli: Any, tmp_path: Path, query: str, customer_id: str
) -> None:
    rows = [
        row(customer_id="ACME", customer_name="Acme Roofing", invoice_number="A-1"),
        row(customer_id="B-1", customer_name="Acme", email="ap@acme.example", invoice_number="B-1"),
    ]
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0
    result = cli("status", query, "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["customer"]["id"] == customer_id
