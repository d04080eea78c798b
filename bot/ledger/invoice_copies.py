"""Copies of invoices (PDF) for emails, kept per version of each invoice.

A copy is fetched from where the invoice comes from: its accounting source (QuickBooks Online,
Xero, FreshBooks, through the connection `arbot connect` made), or, for a CSV ledger, its
`pdf_url` or the folder ARBOT_INVOICE_PDF_DIR. It is kept in `invoice_documents` under the
invoice's version, a digest of the facts a copy shows (number, dates, currency, total, balance,
status, and where it comes from). The next email with the same invoice takes the kept copy; once
any of those facts changed (a sync, an import, a payment), the version differs and the copy is
fetched again, so a copy never shows what is no longer true. Older versions are dropped when a
new one is kept.

Nothing is fetched inside a transaction: the invoices are read, the session closed, the copies
fetched, then the new ones stored in a transaction of their own. A copy that cannot be had is a
CopyRefused naming the invoice and why; the email then does not go without it
(bot/reminders/sending.py holds it)."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import Invoice, InvoiceDocument, SourceToken
from bot.core.runtime import Runtime
from bot.ledger.source_tokens import DatabaseTokenStore
from integrations.base.documents import (
    PDF_TYPE,
    CopyFetchers,
    CopyRefused,
    checked_pdf,
    pdf_filename,
)
from integrations.base.outbound import Attachment

log = logging.getLogger(__name__)

ACCOUNTING_SOURCES = ("quickbooks", "xero", "freshbooks")


@dataclass(frozen=True, slots=True)
class _Facts:
    id: int
    source: str
    external_id: str
    number: str
    version: str
    document_url: str | None


def version_of(
    source: str,
    external_id: str,
    number: str,
    issue_date: object,
    due_date: object,
    currency: str,
    total: Decimal,
    balance: Decimal,
    status: str,
    document_url: str | None,
) -> str:
    """The digest of what an invoice's copy shows and where it comes from."""
    facts = (
        source,
        external_id,
        number,
        str(issue_date),
        str(due_date),
        currency,
        _amount(total),
        _amount(balance),
        status,
        document_url or "",
    )
    return hashlib.sha256("\x1f".join(facts).encode()).hexdigest()


def _amount(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


def invoice_copies(
    runtime: Runtime, invoice_ids: Iterable[int], fetchers: CopyFetchers, max_bytes: int
) -> list[Attachment]:
    """The copies of these invoices, in invoice-number order: kept ones for their current
    version, the others fetched and kept. CopyRefused for the first that cannot be had."""
    wanted = sorted(set(invoice_ids))
    if not wanted:
        return []
    with runtime.sessions() as session:
        facts = [
            _Facts(
                row.id,
                row.source,
                row.external_id,
                row.number,
                version_of(
                    row.source,
                    row.external_id,
                    row.number,
                    row.issue_date,
                    row.due_date,
                    row.currency,
                    row.total,
                    row.balance,
                    row.status,
                    row.document_url,
                ),
                row.document_url,
            )
            for row in session.execute(
                select(
                    Invoice.id,
                    Invoice.source,
                    Invoice.external_id,
                    Invoice.number,
                    Invoice.issue_date,
                    Invoice.due_date,
                    Invoice.currency,
                    Invoice.total,
                    Invoice.balance,
                    Invoice.status,
                    Invoice.document_url,
                ).where(Invoice.id.in_(wanted))
            )
        ]
        versions = {f.id: f.version for f in facts}
        kept = {
            invoice_id: content
            for invoice_id, version, content in session.execute(
                select(
                    InvoiceDocument.invoice_id, InvoiceDocument.version, InvoiceDocument.content
                ).where(InvoiceDocument.invoice_id.in_(wanted))
            )
            if versions.get(invoice_id) == version
        }
        tenants = {
            provider: tenant or ""
            for provider, tenant in session.execute(
                select(SourceToken.provider, SourceToken.tenant_id)
            )
        }
    if len(facts) != len(wanted):
        raise CopyRefused("an invoice to attach is no longer in the ledger")
    fetched = _fetch(runtime, [f for f in facts if f.id not in kept], fetchers, tenants, max_bytes)
    if fetched:
        _keep(runtime, fetched)
    contents = {**kept, **{f.id: data for f, (data, _origin) in fetched.items()}}
    return [
        Attachment(pdf_filename(f.number), PDF_TYPE, contents[f.id])
        for f in sorted(facts, key=lambda f: (f.number, f.id))
    ]


def _fetch(
    runtime: Runtime,
    missing: list[_Facts],
    fetchers: CopyFetchers,
    tenants: dict[str, str],
    max_bytes: int,
) -> dict[_Facts, tuple[bytes, str]]:
    """Each missing copy with where it came from; CopyRefused for the first that cannot be had."""
    fetched: dict[_Facts, tuple[bytes, str]] = {}
    by_source: dict[str, list[_Facts]] = defaultdict(list)
    for facts in missing:
        by_source[facts.source].append(facts)
    for source, invoices in sorted(by_source.items()):
        if source in ACCOUNTING_SOURCES:
            fetched.update(_from_source(runtime, source, invoices, fetchers, tenants, max_bytes))
            continue
        if fetchers.files is None:
            raise CopyRefused(
                f"no way to fetch the copy of invoice {invoices[0].number} is set up: give it "
                "a pdf_url in the ledger CSV or set ARBOT_INVOICE_PDF_DIR"
            )
        for facts in invoices:
            data = fetchers.files.copy(facts.number, facts.document_url, max_bytes)
            what = f"the copy of invoice {facts.number}"
            origin = "pdf_url" if facts.document_url else "folder"
            fetched[facts] = (checked_pdf(data, what, max_bytes), origin)
    return fetched


def _from_source(
    runtime: Runtime,
    source: str,
    invoices: list[_Facts],
    fetchers: CopyFetchers,
    tenants: dict[str, str],
    max_bytes: int,
) -> dict[_Facts, tuple[bytes, str]]:
    first = invoices[0].number
    if source not in tenants:
        raise CopyRefused(
            f"invoice {first} comes from {source}, which is no longer connected: run "
            f"`arbot connect {source}`"
        )
    if fetchers.open_source is None:
        raise CopyRefused(f"no way to fetch the copy of invoice {first} from {source} is set up")
    fetched: dict[_Facts, tuple[bytes, str]] = {}
    try:
        opened = fetchers.open_source(
            source, tenants[source], DatabaseTokenStore(runtime), runtime.clock.now
        )
        with opened as pdfs:
            for facts in invoices:
                data = pdfs.invoice_pdf(facts.external_id, facts.number, max_bytes)
                what = f"{source}'s copy of invoice {facts.number}"
                fetched[facts] = (checked_pdf(data, what, max_bytes), source)
    except UserError as exc:  # e.g. the source's client id is no longer set
        raise CopyRefused(f"the copy of invoice {first} could not be fetched: {exc}") from None
    return fetched


def _keep(runtime: Runtime, fetched: dict[_Facts, tuple[bytes, str]]) -> None:
    """Keep each new copy under its version, dropping the invoice's older ones; a copy another
    sender kept meanwhile stays as it is."""
    now = runtime.clock.now()
    for facts, (data, origin) in fetched.items():
        digest = hashlib.sha256(data).hexdigest()
        with runtime.writing() as session:
            session.execute(
                delete(InvoiceDocument).where(
                    InvoiceDocument.invoice_id == facts.id,
                    InvoiceDocument.version != facts.version,
                )
            )
            try:
                with session.begin_nested():
                    session.add(
                        InvoiceDocument(
                            invoice_id=facts.id,
                            version=facts.version,
                            origin=origin,
                            sha256=digest,
                            size=len(data),
                            content=data,
                            fetched_at=now,
                        )
                    )
            except IntegrityError:
                log.info("the copy of invoice %s was kept by another sender meanwhile", facts.id)
                continue
            payload: dict[str, Any] = {"from": origin, "sha256": digest, "bytes": len(data)}
            audit.record(session, now, "invoice.copy_fetched", invoice_id=facts.id, payload=payload)
