"""Small ledger CSVs written by tests: a good baseline row and a way to break one field."""

from __future__ import annotations

import csv
from pathlib import Path

HEADER = [
    "customer_id",
    "customer_name",
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "amount",
    "balance",
    "contact_name",
    "email",
    "phone",
    "tier",
    "owner_slack_id",
    "timezone",
    "sms_consent",
    "never_automate",
    "tags",
]


def row(**fields: str) -> dict[str, str]:
    base = {
        "customer_id": "C-1",
        "customer_name": "Ridgeline Roofing",
        "invoice_number": "INV-1",
        "issue_date": "2026-01-15",
        "due_date": "2026-02-14",
        "currency": "USD",
        "amount": "1200.00",
        "balance": "1200.00",
        "contact_name": "Maria Garcia",
        "email": "ap@ridgeline.example",
        "phone": "+13125550142",
        "tier": "standard",
        "owner_slack_id": "U07DANA01",
        "timezone": "America/Chicago",
        "sms_consent": "true",
        "never_automate": "false",
        "tags": "contractor;retainage",
    }
    base.update(fields)
    return base


def write(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header or HEADER, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def a_week_late(customers: int, **fields: str) -> list[dict[str, str]]:
    """Customers C-1..C-n, each with one invoice I-n a week past due on 2026-03-16 (+7 step)."""
    return [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Customer {n}",
            email=f"ap@c{n}.example",
            invoice_number=f"I-{n}",
            issue_date="2026-01-01",
            due_date="2026-03-09",
            **fields,
        )
        for n in range(1, customers + 1)
    ]
