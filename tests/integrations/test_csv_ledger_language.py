"""The ledger CSV's optional `language` column: the row's contact's language, and its customer's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer
from tests.support.ledger_files import HEADER, row, write

WITH_LANGUAGE = [*HEADER, "language"]


def test_a_language_column_gives_the_contact_and_the_customer_their_language(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    rows = [
        row(language="ES"),
        row(invoice_number="INV-2", email="pagos@ridgeline.example", phone="", sms_consent="false"),
        row(customer_id="C-2", invoice_number="INV-3", email="ap@nord.example", language="fr-ca"),
        row(customer_id="C-3", invoice_number="INV-4", email="ap@plain.example", language=""),
    ]
    path = write(tmp_path / "ledger.csv", rows, header=WITH_LANGUAGE)
    assert cli("import-csv", str(path)).code == 0
    customers = dict(session.execute(select(Customer.external_id, Customer.language)).all())
    contacts = dict(session.execute(select(Contact.email, Contact.language)).all())
    assert customers == {"C-1": "es", "C-2": "fr-CA", "C-3": None}
    assert contacts == {
        "ap@ridgeline.example": "es",
        "pagos@ridgeline.example": None,  # reads the customer's
        "ap@nord.example": "fr-CA",
        "ap@plain.example": None,
    }
    path.write_bytes(path.read_bytes() + b"\r\n")  # not the same bytes: compared in full
    assert "nothing changed" in cli("import-csv", str(path)).stdout


def test_an_unknown_language_is_named_by_file_row_and_column_and_nothing_is_written(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [row(language="es"), row(invoice_number="INV-2", language="Spanish")],
        header=WITH_LANGUAGE,
    )
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "ledger.csv" in result.stderr
    assert "row 3, language: 'Spanish' is not a language tag" in result.stderr
    assert "such as es, fr, de or fr-CA" in result.stderr
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_one_contact_in_two_languages_is_refused(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [row(language="es"), row(invoice_number="INV-2", language="de")],
        header=WITH_LANGUAGE,
    )
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "row 3, language: de differs from es given for ap@ridgeline.example on row 2" in (
        result.stderr
    )


def test_a_language_given_later_is_stored_and_an_empty_cell_keeps_it(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()]))).code == 0
    path = write(tmp_path / "b.csv", [row(language="de")], header=WITH_LANGUAGE)
    assert cli("import-csv", str(path)).code == 0
    assert session.scalars(select(Contact.language)).one() == "de"
    assert session.scalars(select(Customer.language)).one() == "de"
    session.rollback()
    assert cli("import-csv", str(write(tmp_path / "c.csv", [row()]))).code == 0
    assert session.scalars(select(Contact.language)).one() == "de"


def test_status_json_names_the_customers_and_each_contacts_language(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(language="es")], header=WITH_LANGUAGE)
    assert cli("import-csv", str(path)).code == 0
    result = cli("status", "C-1", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["customer"]["language"] == "es"
    assert [c["language"] for c in document["customer"]["contacts"]] == ["es"]
