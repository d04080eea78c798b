"""An invoice's PDF read from its accounting source, as each documents it: QuickBooks Online
`GET /v3/company/{realm}/invoice/{id}/pdf`, Xero `GET /api.xro/2.0/Invoices/{InvoiceID}` and
FreshBooks `GET /accounting/account/{account}/invoices/invoices/{id}/pdf`, each asked with
`Accept: application/pdf` on the source's OAuth client (fresh token, rate limits waited out).

What comes back must say it is a PDF (Content-Type) and be one (`%PDF-`), within the size the
caller allows. A missing invoice (404, or QuickBooks' 400 "Object Not Found"), a refused grant
(401 after a refresh, 403), or anything that is not a PDF is a CopyRefused saying which and what
to do; a source that is down or rate limiting is a CopyRefused to try `later`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from integrations.base.documents import PDF_TYPE, CopyRefused, checked_pdf
from integrations.errors import SourceError, SourceUnavailable, json_or_empty
from integrations.oauth_client import OAuthClient

MISSING = (400, 404, 410)


def source_pdf(
    client: OAuthClient,
    number: str,
    url: str,
    max_bytes: int,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The PDF at `url`, asked for as the source documents it; CopyRefused otherwise."""
    label = client.provider.label
    what = f"{label}'s copy of invoice {number}"
    try:
        response = client.request(
            "GET",
            url,
            params=params,
            headers={**(headers or {}), "Accept": PDF_TYPE},
            allow=MISSING,
        )
    except SourceUnavailable as exc:
        raise CopyRefused(f"{what} could not be fetched: {exc}", later=True) from None
    except SourceError as exc:
        raise CopyRefused(f"{what} could not be fetched: {exc}") from None
    if response.status_code in MISSING:
        raise CopyRefused(
            f"{label} has no copy of invoice {number} (it answered {response.status_code}"
            f"{_detail(response)}): check that the invoice still exists in {label}"
        )
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != PDF_TYPE:
        raise CopyRefused(
            f"{what} came as {content_type or 'no stated type'}, not {PDF_TYPE}: "
            f"{label} may not render PDFs for this invoice"
        )
    return checked_pdf(response.content, what, max_bytes)


def _detail(response: httpx.Response) -> str:
    """The source's own words, short: QuickBooks' Fault, FreshBooks' errors, Xero's Message."""
    body = json_or_empty(response)
    fault = body.get("Fault") or {}
    errors = fault.get("Error") if isinstance(fault, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return f": {errors[0].get('Message') or ''} {errors[0].get('Detail') or ''}".rstrip()[:200]
    found = (
        (body.get("response") or {}).get("errors")
        if isinstance(body.get("response"), dict)
        else None
    )
    if isinstance(found, list) and found and isinstance(found[0], dict):
        return f": {found[0].get('message') or ''}"[:200]
    if body.get("Message"):
        return f": {body['Message']}"[:200]
    return ""
