"""The books the benchmarks work on: the sample ledger's generator at any size (one customer for
every five invoices, every invoice open), written as a ledger CSV and imported by arbot itself."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from bot.core.runtime import Runtime
from bot.ledger.sample import sample_rows, write_csv
from handlers.cli.ledger import import_file

TODAY = date(2026, 3, 16)
INVOICES_PER_CUSTOMER = 5


def customers_for(invoices: int) -> int:
    return max(1, invoices // INVOICES_PER_CUSTOMER)


def size_text(invoices: int) -> str:
    return f"{invoices:,} open invoices, {customers_for(invoices):,} customers"


def book_rows(invoices: int, seed: int = 13) -> list[dict[str, str]]:
    rows = sample_rows(TODAY, customers=customers_for(invoices), invoices=invoices, seed=seed)
    for row in rows:
        row["balance"] = row["amount"]  # every invoice open
        row.pop("paid_date", None)
    return rows


def book_csv(folder: Path, invoices: int) -> Path:
    """The book of `invoices` invoices as a ledger CSV in `folder` (written once)."""
    path = folder / f"book-{invoices}.csv"
    if not path.exists():
        write_csv(path, book_rows(invoices))
    return path


def import_book(runtime: Runtime, path: Path) -> None:
    """What `arbot import-csv` does: unless the file is the one last imported into a ledger
    unchanged since, read it, then upsert it in one transaction."""
    import_file(runtime, path)


def one_invoice_each(
    count: int, days_past_due: int, tiers: tuple[str, ...] = ("standard",)
) -> list[dict[str, str]]:
    """`count` customers with one open $1,200 invoice each, `days_past_due` late, by email."""
    due = (TODAY - timedelta(days=days_past_due)).isoformat()
    return [
        {
            "customer_id": f"C-{n}",
            "customer_name": f"Customer {n}",
            "invoice_number": f"I-{n}",
            "issue_date": "2026-01-01",
            "due_date": due,
            "currency": "USD",
            "amount": "1200.00",
            "balance": "1200.00",
            "contact_name": "Maria Garcia",
            "email": f"ap@c{n}.example",
            "phone": "",
            "tier": tiers[n % len(tiers)],
            "owner_slack_id": "",
            "timezone": "America/New_York",
            "sms_consent": "false",
            "never_automate": "false",
            "tags": "",
        }
        for n in range(count)
    ]
