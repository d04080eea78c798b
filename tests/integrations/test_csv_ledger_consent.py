"""The ledger CSV's optional `sms_consent` column: yes gives consent to texts, no withdraws it, and
an empty cell says nothing (what is stored stays)."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write


def _consent(path: Path) -> dict[str, tuple[bool | None, str | None]]:
    """Each contact's consent and its source, by email address."""
    batch = read_ledger_csv(path)
    return {
        str(contact.email): (contact.sms_consent, contact.consent_source)
        for customer in batch.customers.values()
        for contact in customer.contacts
    }


@pytest.mark.parametrize("no", ["false", "No", "n", "0"])
def test_a_no_withdraws_consent_from_its_row_and_an_empty_cell_gives_none(
    tmp_path: Path, no: str
) -> None:
    rows = [
        row(sms_consent=no),
        row(customer_id="C-2", invoice_number="INV-2", email="ap@c2.example", sms_consent=""),
    ]
    assert _consent(write(tmp_path / "ledger.csv", rows)) == {
        "ap@ridgeline.example": (False, "ledger.csv row 2"),
        "ap@c2.example": (None, None),
    }


def test_one_contacts_rows_give_consent_on_any_yes_else_withdraw_it_on_the_first_no(
    tmp_path: Path,
) -> None:
    def contact(invoice: str, email: str, consent: str) -> dict[str, str]:
        return row(invoice_number=invoice, email=email, sms_consent=consent)

    rows = [
        contact("INV-1", "no-then-yes@x.example", "no"),
        contact("INV-2", "no-then-yes@x.example", "yes"),
        contact("INV-3", "yes-then-no@x.example", "yes"),
        contact("INV-4", "yes-then-no@x.example", "no"),
        contact("INV-5", "blank-then-no@x.example", ""),
        contact("INV-6", "blank-then-no@x.example", "no"),
        contact("INV-7", "blank-then-no@x.example", "false"),
        contact("INV-8", "blank@x.example", ""),
        contact("INV-9", "blank@x.example", ""),
    ]
    assert _consent(write(tmp_path / "ledger.csv", rows)) == {
        "no-then-yes@x.example": (True, "ledger.csv row 3"),
        "yes-then-no@x.example": (True, "ledger.csv row 4"),
        "blank-then-no@x.example": (False, "ledger.csv row 7"),
        "blank@x.example": (None, None),
    }
