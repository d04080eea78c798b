"""Text from the ledger is printed as it is written: square brackets are not Rich markup and
`:x:` is not an emoji code, so a name such as `Beta [old account]` is neither cut short nor a
crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.ledger_files import row, write

HOSTILE = row(
    customer_id="C-[/]1",
    customer_name="Beta [old account] [bold]",
    invoice_number="INV-[/red]",
    contact_name="Bob [link=x] :x:",
    issue_date="2026-01-01",
    due_date="2026-03-09",  # a week late on 2026-03-16: the +7 step plans a reminder
    tags="[bold]vip",
)
SECOND = row(
    customer_id="C-2",
    customer_name="Acme [link=https://evil.example]pay here[/link]",
    invoice_number="INV-[bold]2",
    email="ap@acme.example",
    issue_date="2026-01-01",
    due_date="2026-03-09",
)
EMOJI = row(**{**SECOND, "invoice_number": "INV-:x:"})
CUSTOMER = "Beta [old account] [bold] (C-[/]1)"


def test_status_prints_a_customer_id_name_contact_and_invoice_with_brackets_as_written(
    cli: Any, load: Any
) -> None:
    load(HOSTILE, SECOND)
    result = cli("status", "C-[/]1")  # was a MarkupError traceback
    assert result.code == 0, result.stderr
    assert CUSTOMER in result.stdout
    assert "Bob [link=x] :x:: ap@ridgeline.example" in result.stdout
    assert "INV-[/red]" in result.stdout
    assert "[bold]vip" in result.stdout
    by_name = cli("status", "Acme [link")
    assert by_name.code == 0, by_name.stderr
    assert "Acme [link=https://evil.example]pay here[/link] (C-2)" in by_name.stdout
    assert "INV-[bold]2" in by_name.stdout


def test_plan_and_forecast_print_names_and_invoice_numbers_with_brackets_as_written(
    cli: Any, load: Any
) -> None:
    load(HOSTILE, SECOND)
    plan = cli("plan", "--dry-run")  # the name was shown as "Beta"
    assert plan.code == 0, plan.stderr
    assert CUSTOMER in plan.stdout
    assert "INV-[/red] (+7d)" in plan.stdout
    assert "Acme [link=https://evil.example]pay here[/link] (C-2)" in plan.stdout
    assert "INV-[bold]2 (+7d)" in plan.stdout
    forecast = cli("forecast")  # was a MarkupError traceback
    assert forecast.code == 0, forecast.stderr
    assert "INV-[/red]" in forecast.stdout
    assert CUSTOMER in forecast.stdout
    assert "INV-[bold]2" in forecast.stdout


def test_the_import_summary_names_paid_invoices_with_brackets_as_written(
    cli: Any, load: Any, tmp_path: Path
) -> None:
    load(HOSTILE, SECOND, EMOJI)
    paid = [row(**{**r, "balance": "0.00"}) for r in (HOSTILE, SECOND, EMOJI)]
    result = cli("import-csv", str(write(tmp_path / "paid.csv", paid)))
    assert result.code == 0, result.stderr
    assert "Now paid: INV-[/red], INV-[bold]2, INV-:x:" in result.stdout


def test_the_import_payments_summary_names_a_paid_invoice_as_written(
    cli: Any, load: Any, tmp_path: Path
) -> None:
    load(EMOJI)
    bank = tmp_path / "bank.csv"
    bank.write_text(
        "date,amount,currency,reference,payer\n"
        f'2026-03-14,1200.00,USD,Payment INV-:x:,"{EMOJI["customer_name"]}"\n',
        encoding="utf-8",
    )
    result = cli("import-payments", str(bank))
    assert result.code == 0, result.stderr
    assert "Paid: INV-:x: ($1,200.00)" in result.stdout  # was "INV-❌"


def test_an_error_naming_a_customer_with_brackets_prints_it_as_written(cli: Any, load: Any) -> None:
    load(HOSTILE)
    result = cli("status", "C-[bold]:x:")
    assert result.code == 1
    assert result.stderr.startswith("error: ")
    assert "C-[bold]:x:" in result.stderr
