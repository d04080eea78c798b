"""Every validation of the ledger CSV, and that a file with any bad row writes nothing."""

from __future__ import annotations

import shutil
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.errors import ValidationFailed
from bot.core.models import Contact, Customer, Event, Invoice
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import HEADER, row, write


def _counts(session: Session) -> tuple[int, int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Customer, Contact, Invoice, Event)
    )


BAD_FIELDS = [
    ("issue_date", "15/01/2026", "row 3, issue_date: '15/01/2026' is not an ISO date"),
    ("issue_date", "2026-02-30", "row 3, issue_date: '2026-02-30' is not a real date"),
    ("due_date", "", "row 3, due_date: is required but empty"),
    ("due_date", "2026-01-01", "row 3, due_date: 2026-01-01 is before the issue date 2026-01-15"),
    ("currency", "DOLLARS", "row 3, currency: 'DOLLARS' is not an ISO 4217 currency code"),
    ("currency", "XYZ", "row 3, currency: 'XYZ' is not an ISO 4217 currency code"),
    ("currency", "DEM", "row 3, currency: 'DEM' is not an ISO 4217 currency code"),
    ("amount", "1_000", "row 3, amount: '1_000' is not a decimal amount"),
    ("amount", "1000000000000000", "row 3, amount: 1000000000000000 is larger than the largest"),
    ("amount", "1200.001", "row 3, amount: 1200.001 has more decimal places than USD uses (2)"),
    ("invoice_number", "N" * 65, "row 3, invoice_number: is 65 characters long; at most 64 fit"),
    ("customer_id", "C" * 129, "row 3, customer_id: is 129 characters long; at most 128 fit"),
    ("amount", "1,200.00", "row 3, amount: '1,200.00' is not a decimal amount"),
    ("amount", "1e3", "row 3, amount: '1e3' is not a decimal amount"),
    ("amount", "NaN", "row 3, amount: 'NaN' is not a decimal amount"),
    ("amount", "-5.00", "row 3, amount: -5.00 is negative"),
    ("balance", "1300.00", "row 3, balance: 1300.00 is more than the amount 1200.00"),
    ("balance", "-1", "row 3, balance: -1 is negative"),
    ("balance", "10.123456", "row 3, balance: '10.123456' has more than 4 decimal places"),
    ("balance", "10.123", "row 3, balance: 10.123 has more decimal places than USD uses (2)"),
    ("email", "maria at ridgeline", "row 3, email: 'maria at ridgeline' is not a valid email"),
    ("email", "josé@example.com", "row 3, email: 'josé@example.com' cannot be sent to: 'é'"),
    ("phone", "call the office", "row 3, phone: 'call the office' is not a phone number"),
    ("phone", "+1 555 0100", "row 3, phone: '+1 555 0100' is not a valid phone number"),
    ("tier", "gold", "row 3, tier: 'gold' is not a tier; use one of strategic, standard"),
    ("timezone", "Central Time", "row 3, timezone: 'Central Time' is not an IANA timezone"),
    # names the system's zone files carry that are not places: the server's zone, a placeholder
    ("timezone", "localtime", "row 3, timezone: 'localtime' is not an IANA timezone"),
    ("timezone", "Factory", "row 3, timezone: 'Factory' is not an IANA timezone"),
    # a leap-second zone (its clock 27 s off), and the POSIX tree's copy of the placeholder
    (
        "timezone",
        "right/Europe/Paris",
        "row 3, timezone: 'right/Europe/Paris' is not an IANA timezone",
    ),
    ("timezone", "posix/Factory", "row 3, timezone: 'posix/Factory' is not an IANA timezone"),
    ("owner_slack_id", "@dana", "row 3, owner_slack_id: '@dana' is not a Slack user id"),
    ("sms_consent", "maybe", "row 3, sms_consent: 'maybe' is not yes/no"),
    ("never_automate", "sometimes", "row 3, never_automate: 'sometimes' is not yes/no"),
    ("customer_id", "  ", "row 3, customer_id: is required but empty"),
    ("invoice_number", "", "row 3, invoice_number: is required but empty"),
    # a typo that would break every report's date arithmetic later
    ("due_date", "9999-12-31", "row 3, due_date: 9999-12-31 is outside the dates arbot accepts"),
    ("issue_date", "0001-01-01", "row 3, issue_date: 0001-01-01 is outside the dates arbot"),
    ("due_date", "2101-01-01", "row 3, due_date: 2101-01-01 is outside the dates arbot accepts"),
    # control characters and bidirectional overrides: stored on SQLite, a raw error on PostgreSQL
    ("customer_id", "C\x00-1", "row 3, customer_id: contains a control character (U+0000 at"),
    (
        "customer_name",
        "Acme \u202eDTL",
        "row 3, customer_name: contains a control character (U+202E",
    ),
    ("customer_name", "Acme \u2067Ltd\u2069", "row 3, customer_name: contains a control character"),
    ("invoice_number", "INV\x1b[31m-2", "row 3, invoice_number: contains a control character"),
    ("contact_name", "Maria\x07", "row 3, contact_name: contains a control character (U+0007"),
    ("contact_name", "Maria\nGarcia", "row 3, contact_name: contains a control character (U+000A"),
    ("tags", "vip;\x08late", "row 3, tags: contains a control character (U+0008"),
    ("phone", "+1312555\x000142", "row 3, phone: contains a control character (U+0000"),
    ("amount", "12\x00", "row 3, amount: contains a control character (U+0000"),
]


@pytest.mark.parametrize(
    ("column", "value", "expected"), BAD_FIELDS, ids=[f"{c}={v!r}" for c, v, _ in BAD_FIELDS]
)
def test_a_bad_value_is_named_by_row_and_column_and_nothing_is_written(
    cli: Any, session: Session, tmp_path: Path, column: str, value: str, expected: str
) -> None:
    path = write(tmp_path / "ledger.csv", [row(invoice_number="INV-0"), row(**{column: value})])
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert expected in result.stderr
    assert "nothing was imported" in result.stderr
    assert _counts(session) == (0, 0, 0, 0)


def test_every_problem_in_the_file_is_listed_not_only_the_first(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [
            row(invoice_number="INV-1", currency="usd dollars"),
            row(invoice_number="INV-2"),
            row(invoice_number="INV-3", due_date="yesterday", email="nope"),
        ],
    )
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "3 problems" in result.stderr
    assert "row 2, currency:" in result.stderr
    assert "row 4, due_date:" in result.stderr
    assert "row 4, email:" in result.stderr
    assert _counts(session) == (0, 0, 0, 0)


def test_a_missing_required_column_is_named(cli: Any, session: Session, tmp_path: Path) -> None:
    header = [h for h in HEADER if h not in ("balance", "due_date")]
    path = write(tmp_path / "ledger.csv", [row()], header=header)
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "row 1 (header): missing required columns due_date, balance" in result.stderr
    assert _counts(session) == (0, 0, 0, 0)


def test_only_the_required_columns_are_enough_and_extra_columns_are_ignored(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    header = [*HEADER[:8], "memo"]
    path = write(tmp_path / "ledger.csv", [{**row(), "memo": "anything"}], header=header)
    assert cli("import-csv", str(path)).code == 0
    customer = session.scalars(select(Customer)).one()
    assert customer.tier == "standard"
    assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_the_same_invoice_twice_for_one_customer_is_refused(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(), row(amount="50.00", balance="50.00")])
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert (
        "row 3, invoice_number: invoice INV-1 of customer C-1 is already on row 2" in result.stderr
    )
    assert _counts(session) == (0, 0, 0, 0)


def test_the_same_invoice_number_at_two_customers_is_two_invoices(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [
            row(),
            row(customer_id="C-2", customer_name="Harbor Family Dental", email="ap@harbor.example"),
        ],
    )
    assert cli("import-csv", str(path)).code == 0
    assert session.scalar(select(func.count()).select_from(Invoice)) == 2


def test_customer_fields_that_disagree_between_rows_are_refused(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(), row(invoice_number="INV-2", tier="strategic")])
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert (
        "row 3, tier: 'strategic' differs from 'standard' given for customer C-1 on row 2"
        in result.stderr
    )
    assert _counts(session) == (0, 0, 0, 0)


def test_sms_consent_without_a_phone_number_is_refused(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(phone="", sms_consent="yes")])
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "row 2, sms_consent: is yes but the row has no phone number" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (",".join(HEADER).encode() + b"\n", "no invoices found"),
        (",".join(HEADER).encode() + b"\nC-1,Caf\xe9 Lumen\n", "is not UTF-8 text"),
        (b"customer_id;customer_name\n1;x\n", "seems to use ';' between values"),
    ],
    ids=["empty", "header only", "latin-1", "semicolons"],
)
def test_files_that_are_not_a_ledger_say_why(
    cli: Any, session: Session, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "ledger.csv"
    path.write_bytes(content)
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert expected in result.stderr
    assert _counts(session) == (0, 0, 0, 0)


def test_a_value_longer_than_the_csv_module_reads_is_named_by_its_row(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(), row(invoice_number="INV-2")])
    with path.open("a", encoding="utf-8") as handle:  # row 4 opens a quote it never closes
        handle.write('C-1,"Ridgeline Roofing,INV-3,2026-01-15\n' + "x" * 140_000 + "\n")
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "row 4: a value is longer than 131,072 characters" in result.stderr
    assert "nothing was imported" in result.stderr
    assert _counts(session) == (0, 0, 0, 0)


def test_a_file_that_does_not_exist_is_a_user_error(cli: Any, tmp_path: Path) -> None:
    result = cli("import-csv", str(tmp_path / "missing.csv"))
    assert result.code == 1
    assert "no such file" in result.stderr


def test_values_are_normalised_on_the_way_in(cli: Any, session: Session, tmp_path: Path) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [
            row(
                phone="(312) 555-0142",
                currency="usd",
                tier="Strategic",
                email="AP@Ridgeline.Example",
                tags="Retainage; contractor ;",
            )
        ],
    )
    assert cli("import-csv", str(path)).code == 0
    customer = session.scalars(select(Customer)).one()
    contact = session.scalars(select(Contact)).one()
    invoice = session.scalars(select(Invoice)).one()
    assert contact.phone == "+13125550142"
    assert contact.email == "AP@ridgeline.example"
    assert contact.sms_consent and contact.sms_consent_source == "ledger.csv row 2"
    assert invoice.currency == "USD"
    assert customer.tier == "strategic"
    assert customer.tags == ["contractor", "retainage"]


def test_an_internationalised_domain_is_stored_in_the_ascii_form_mail_is_sent_to(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(email="Ana@Bücher.de")])
    assert cli("import-csv", str(path)).code == 0
    assert session.scalars(select(Contact.email)).one() == "Ana@xn--bcher-kva.de"


def test_an_address_that_cannot_be_mailed_is_named_by_file_row_and_column(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(invoice_number="INV-0"), row(email="josé@b.de")])
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "ledger.csv" in result.stderr
    assert "row 3, email: 'josé@b.de' cannot be sent to" in result.stderr
    assert _counts(session) == (0, 0, 0, 0)


def test_consent_names_a_file_whose_name_holds_a_control_character_in_visible_text(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger\x1b[31m.csv", [row()])
    assert cli("import-csv", str(path)).code == 0
    contact = session.scalars(select(Contact)).one()
    assert contact.sms_consent_source == "ledger\\u001b[31m.csv row 2"


def test_one_email_with_two_phone_numbers_is_refused(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "ledger.csv", [row(), row(invoice_number="INV-2", phone="+13125550143")]
    )
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert (
        "row 3, phone: +13125550143 differs from +13125550142 given for ap@ridgeline.example on row 2"
        in result.stderr
    )
    assert _counts(session) == (0, 0, 0, 0)


def test_rows_of_one_contact_fill_each_other_in_and_reimport_changes_nothing(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    rows = [row(phone="", sms_consent="false"), row(invoice_number="INV-2", contact_name="")]
    path = write(tmp_path / "ledger.csv", rows)
    assert cli("import-csv", str(path)).code == 0
    contact = session.scalars(select(Contact)).one()
    assert (contact.name, contact.phone, contact.sms_consent) == (
        "Maria Garcia",
        "+13125550142",
        True,
    )
    path.write_bytes(path.read_bytes() + b"\r\n")  # not the same bytes: compared in full
    assert "nothing changed" in cli("import-csv", str(path)).stdout


def test_numbers_without_a_plus_are_read_in_the_configured_region(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_PHONE_REGION", "GB")
    path = write(tmp_path / "ledger.csv", [row(phone="020 7946 0958")])
    assert cli("import-csv", str(path)).code == 0
    assert session.scalars(select(Contact.phone)).one() == "+442079460958"


def test_a_rows_problems_are_listed_in_the_order_of_its_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [row(tags="a;\x07", invoice_number="", email="nope", customer_name="\u202eAcme", tier="x")],
    )
    with pytest.raises(ValidationFailed) as failed:
        read_ledger_csv(path)
    assert [p.split(":")[0] for p in failed.value.problems] == [
        "row 2, customer_name",
        "row 2, invoice_number",
        "row 2, email",
        "row 2, tier",
        "row 2, tags",
    ]


def test_a_short_row_lacks_its_last_columns_which_are_required_or_empty(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        ",".join(HEADER) + "\nC-1,Acme,INV-1,2026-01-15,2026-02-14,USD\n"
        "C-1,Acme,INV-2,2026-01-15,2026-02-14,USD,10.00,10.00,Maria\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as failed:
        read_ledger_csv(path)
    assert failed.value.problems == [
        "row 2, amount: is required but the column is empty",
        "row 2, balance: is required but the column is empty",
    ]
    path.write_text(
        ",".join(HEADER) + "\nC-1,Acme,INV-2,2026-01-15,2026-02-14,USD,10.00,10.00,Maria\n",
        encoding="utf-8",
    )
    customer = read_ledger_csv(path).customers["C-1"]
    assert (customer.tier, customer.tags, customer.contacts) == (None, None, [])


def test_each_row_of_a_customer_is_checked_though_its_customer_cells_repeat(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [
            row(invoice_number="INV-1"),
            row(invoice_number="INV-2", balance="9999.00"),
            row(invoice_number="INV-1"),
            row(invoice_number="INV-3", amount="1.001", balance="1.00"),
            row(invoice_number="INV-4"),
        ],
    )
    with pytest.raises(ValidationFailed) as failed:
        read_ledger_csv(path)
    assert failed.value.problems == [
        "row 3, balance: 9999.00 is more than the amount 1200.00",
        "row 4, invoice_number: invoice INV-1 of customer C-1 is already on row 2",
        "row 5, amount: 1.001 has more decimal places than USD uses (2)",
    ]


def test_rows_repeating_a_customers_cells_give_one_customer_and_contact_and_each_invoice(
    tmp_path: Path,
) -> None:
    rows = [row(invoice_number=f"INV-{n}", tags="b;a") for n in range(4)]
    rows.append(row(customer_id="C-2", invoice_number="INV-9", tags="b;a", email="x@c2.example"))
    batch = read_ledger_csv(write(tmp_path / "ledger.csv", rows))
    assert [i.number for i in batch.invoices] == ["INV-0", "INV-1", "INV-2", "INV-3", "INV-9"]
    first, second = batch.customers["C-1"], batch.customers["C-2"]
    assert len(first.contacts) == 1 and first.contacts[0].consent_source == "ledger.csv row 2"
    assert first.tags == second.tags == ["a", "b"] and first.tags is not second.tags


def test_a_balance_written_as_its_amount_is_read_and_checked_as_it(tmp_path: Path) -> None:
    rows = [
        row(),
        row(invoice_number="INV-2", amount="1200.001", balance="1200.001"),
        row(invoice_number="INV-3", amount="1,0", balance="1,0"),
    ]
    with pytest.raises(ValidationFailed) as failed:
        read_ledger_csv(write(tmp_path / "ledger.csv", rows))
    assert [p.split(" is")[0].split(" has")[0] for p in failed.value.problems] == [
        "row 3, amount: 1200.001",
        "row 3, balance: 1200.001",
        "row 4, amount: '1,0'",
        "row 4, balance: '1,0'",
    ]
    batch = read_ledger_csv(write(tmp_path / "ledger.csv", [row(amount="5.5", balance="5.5")]))
    (invoice,) = batch.invoices
    assert (invoice.total, invoice.balance) == (Decimal("5.5"), Decimal("5.5"))


def _held(model: Any, column: str) -> int:
    length: int = model.__table__.c[column].type.length
    return length


# (the CSV's column, the longest text it can hold, a well-formed value of n characters)
TEXT_CELLS: list[tuple[str, int, Callable[[int], str]]] = [
    ("customer_id", _held(Customer, "external_id"), lambda n: "C" * n),
    ("customer_name", _held(Customer, "name"), lambda n: "N" * n),
    ("owner_slack_id", _held(Customer, "owner_slack_id"), lambda n: "U" + "0" * (n - 1)),
    ("invoice_number", _held(Invoice, "number"), lambda n: "I" * n),
    ("contact_name", _held(Contact, "name"), lambda n: "M" * n),
]


@pytest.mark.parametrize(
    ("column", "held", "text"), TEXT_CELLS, ids=[column for column, _, _ in TEXT_CELLS]
)
def test_a_text_cell_longer_than_its_column_holds_is_named_and_nothing_is_written(
    cli: Any, session: Session, tmp_path: Path, column: str, held: int, text: Callable[[int], str]
) -> None:
    fits = write(tmp_path / "fits.csv", [row(**{column: text(held)})])
    assert cli("import-csv", str(fits)).code == 0
    session.rollback()
    counts = _counts(session)

    path = write(
        tmp_path / "ledger.csv", [row(invoice_number="INV-0"), row(**{column: text(held + 1)})]
    )
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert f"row 3, {column}: is {held + 1} characters long; at most {held} fit" in result.stderr
    assert "nothing was imported" in result.stderr
    session.rollback()
    assert _counts(session) == counts


def test_a_timezone_the_system_knows_but_its_column_cannot_hold_is_refused(
    tmp_path: Path,
) -> None:
    held = _held(Customer, "timezone")
    zone = "Region/" + "Z" * (held + 1 - len("Region/"))
    zones = tmp_path / "zoneinfo"
    (zones / "Region").mkdir(parents=True)
    shutil.copyfile(Path(zoneinfo.TZPATH[0]) / "UTC", zones / zone)
    zoneinfo.reset_tzpath([str(zones), *zoneinfo.TZPATH])
    try:
        ZoneInfo(zone)  # a zone this system has
        path = write(tmp_path / "ledger.csv", [row(), row(customer_id="C-2", timezone=zone)])
        with pytest.raises(ValidationFailed) as failed:
            read_ledger_csv(path)
    finally:
        zoneinfo.reset_tzpath()
        ZoneInfo.clear_cache(only_keys=[zone])
    assert failed.value.problems == [
        f"row 3, timezone: is {held + 1} characters long; at most {held} fit"
    ]


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+5", "America/New_York", "Asia/Tokyo"])
def test_every_iana_timezone_is_imported_as_given(
    cli: Any, session: Session, tmp_path: Path, zone: str
) -> None:
    path = write(tmp_path / "ledger.csv", [row(timezone=zone)])
    assert cli("import-csv", str(path)).code == 0
    assert session.scalars(select(Customer.timezone)).one() == zone
