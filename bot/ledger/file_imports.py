"""The same ledger file again: recognised by its bytes, and not read when nothing would be written.

After each import of a ledger file, its source keeps one row: the SHA-256 of the file's bytes, the
settings that change what the file is read as (the phone region, the schema and reading versions),
and the state of the ledger right after the import. An import of a file whose digest and settings
are those of that row, into a ledger whose state is still the one recorded, would write nothing
(importing the same data twice changes nothing), so it is skipped. Anything that changed the
ledger since (a sync, a payment, a manual change, another file) changes its state, and the file
is then imported in full again.

The ledger's state is a cheap marker, read in one query: the number of customers, contacts,
invoices and payment allocations with the largest id and the latest `updated_at` of each, and the
newest event of the audit log (append-only, and written by every change arbot makes, even one
made at the same instant on a stopped clock).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.core.migrate import HEAD_REVISION
from bot.core.models import LedgerFileImport

# Raise when a change to how a ledger file is read or stored makes the same bytes write
# something else: a file recorded before it is then imported in full again.
READING_VERSION = 2  # 2: a paid_date column is read (it was ignored as an extra column)
_DIGEST_BLOCK = 1 << 20

_LEDGER_STATE = text(
    "SELECT "
    + ", ".join(
        f"(SELECT count(*) FROM {table}), (SELECT max(id) FROM {table})"
        + (f", (SELECT max(updated_at) FROM {table})" if dated else "")
        for table, dated in (
            ("customers", True),
            ("contacts", True),
            ("invoices", True),
            ("payment_allocations", False),
        )
    )
    + ", (SELECT max(id) FROM events)"
)


@dataclass(frozen=True)
class UnchangedFile:
    """A ledger file recognised as the one last imported, into a ledger unchanged since."""

    label: str
    imported_at: datetime


def file_digest(path: Path) -> str:
    """The SHA-256 of the file's bytes (hex), read in one pass."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_DIGEST_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def reading_settings(phone_region: str, timezone: str) -> str:
    """The settings a ledger file is read and stored with, as one text to compare: `timezone`
    (the business's) makes a paid_date's stored instant."""
    return json.dumps(
        {
            "phone_region": phone_region,
            "timezone": timezone,
            "schema": HEAD_REVISION,
            "reading": READING_VERSION,
        },
        sort_keys=True,
    )


def ledger_state(session: Session) -> str:
    """The marker of the ledger's state: it changes with any change to what an import compares."""
    values = session.execute(_LEDGER_STATE).one()
    return json.dumps([None if value is None else str(value) for value in values])


def unchanged_since(
    session: Session, source: str, digest: str, settings: str
) -> LedgerFileImport | None:
    """The last import of `source` when it was of the same bytes with the same settings and
    nothing has changed the ledger since; otherwise None."""
    last = session.scalars(
        select(LedgerFileImport).where(LedgerFileImport.source == source)
    ).one_or_none()
    if last is None or last.digest != digest or last.settings != settings:
        return None
    if last.ledger_state != ledger_state(session):
        return None
    return last


def record_import(
    session: Session, source: str, label: str, digest: str, settings: str, now: datetime
) -> None:
    """Record the import of a file just written in the session's transaction, with the ledger's
    state after it: the last of the import's writes."""
    session.flush()  # the import's own writes are all in before the state is read
    state = ledger_state(session)
    row = session.get(LedgerFileImport, source)
    if row is None:
        row = LedgerFileImport(source=source)
        session.add(row)
    row.label = label[:256]
    row.digest = digest
    row.settings = settings
    row.ledger_state = state
    row.imported_at = now
