"""The floors: the least any implementation of a benchmark's work must do, through the plain driver
(sqlite3 or psycopg, not SQLAlchemy and not arbot's column types) or the standard library."""

from __future__ import annotations

import csv
import smtplib
from pathlib import Path
from typing import Any

from benchmarks.databases import plain_connection

# The rows the planner reads: each open invoice with its customer and the customer's contacts.
PLAN_ROWS = """
SELECT i.customer_id, i.id, i.number, i.issue_date, i.due_date, i.currency, i.total, i.balance,
       i.disputed, i.promise_date, i.payment_plan, i.payment_link,
       cu.external_id, cu.name, cu.tier, cu.tags, cu.never_automate, cu.paused_until,
       cu.timezone, cu.owner_slack_id,
       co.id, co.name, co.email, co.phone, co.role, co.timezone, co.sms_consent,
       co.email_opted_out_at, co.email_unusable_at, co.sms_opted_out_at, co.sms_unusable_at
FROM invoices i
JOIN customers cu ON cu.id = i.customer_id
LEFT JOIN contacts co ON co.customer_id = cu.id
WHERE i.status = 'open'
"""


def select_plan_rows(url: str) -> int:
    """One plain SELECT of the joined rows the plan reads, every row fetched."""
    connection = plain_connection(url)
    try:
        return len(connection.execute(PLAN_ROWS).fetchall())
    finally:
        connection.close()


# What a bank file is matched against: each open invoice with its customer's name.
OPEN_INVOICES = """
SELECT i.id, i.customer_id, cu.name, i.number, i.currency, i.balance, i.due_date
FROM invoices i JOIN customers cu ON cu.id = i.customer_id
WHERE i.status = 'open' AND i.balance > 0
"""


def select_open_invoices(url: str) -> int:
    """One plain SELECT of the open invoices a bank file is matched against, every row fetched."""
    connection = plain_connection(url)
    try:
        return len(connection.execute(OPEN_INVOICES).fetchall())
    finally:
        connection.close()


def read_csv(path: Path) -> int:
    """Read every row of a CSV file with the csv module (the least a re-import must do)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def csv_bulk_insert(url: str, path: Path) -> int:
    """Read a CSV file and write its rows with one bulk statement (executemany on SQLite, COPY on
    PostgreSQL) into a scratch table of the file's columns, in one transaction."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    columns = ", ".join(f'"{name}" TEXT' for name in header)
    connection: Any = plain_connection(url)
    try:
        if url.startswith("sqlite"):
            connection.execute("DROP TABLE IF EXISTS floor_rows")
            connection.execute(f"CREATE TABLE floor_rows ({columns})")
            marks = ", ".join("?" for _ in header)
            with connection:
                connection.executemany(f"INSERT INTO floor_rows VALUES ({marks})", rows)
            connection.execute("DROP TABLE floor_rows")
        else:
            with connection.transaction():
                connection.execute(f"CREATE TEMP TABLE floor_rows ({columns})")
                with connection.cursor().copy("COPY floor_rows FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
    finally:
        connection.close()
    return len(rows)


def smtplib_loop(port: int, messages: list[tuple[str, str, bytes]]) -> int:
    """Send prepared messages (envelope sender, recipient, bytes) on one SMTP connection."""
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for sender, recipient, data in messages:
            smtp.sendmail(sender, [recipient], data)
    return len(messages)
