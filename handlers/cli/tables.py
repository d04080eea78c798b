"""How reports look in a terminal (rich). Pure presentation: data in, renderables out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.table import Table

from bot.core.money import format_money
from bot.ledger.aging import BUCKETS, AgingReport, OverdueInvoice
from bot.ledger.change_words import ledger_change  # no ORM: `arbot aging` prints through here

if TYPE_CHECKING:
    from bot.ledger.file_imports import UnchangedFile
    from bot.ledger.upsert import ImportSummary


def aging_table(report: AgingReport) -> Table:
    table = Table(title=f"Receivables aging as of {report.as_of.isoformat()}", title_justify="left")
    table.add_column("Currency")
    for bucket in BUCKETS:
        table.add_column("Current" if bucket == "current" else f"{bucket} days", justify="right")
    table.add_column("Total", justify="right", style="bold")
    table.add_column("Invoices", justify="right")
    table.add_column("DSO", justify="right")
    for code, aging in report.currencies.items():
        table.add_row(
            code,
            *(format_money(aging.buckets[b], code) for b in BUCKETS),
            format_money(aging.total, code),
            str(aging.invoice_count),
            "—" if aging.dso is None else f"{aging.dso} days",
        )
    if not report.currencies:
        table.add_row("—", *("" for _ in BUCKETS), "nothing open", "0", "—")
    return table


def overdue_table(rows: list[OverdueInvoice], limit: int | None = None) -> Table:
    shown = rows if limit is None else rows[:limit]
    title = f"Overdue invoices ({len(rows)})"
    if limit is not None and len(rows) > limit:
        title += f", the {limit} oldest"
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("Customer", "left"),
        ("Tier", "left"),
        ("Invoice", "left"),
        ("Due", "left"),
        ("Days late", "right"),
        ("Balance", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in shown:
        table.add_row(
            f"{row.customer_name} ({row.customer_id})",
            row.tier,
            row.number,
            row.due_date.isoformat(),
            str(row.days_past_due),
            format_money(row.balance, row.currency),
        )
    return table


def import_summary_lines(summary: ImportSummary | UnchangedFile) -> list[str]:
    from bot.ledger.file_imports import UnchangedFile  # it loads the model; aging needs none

    if isinstance(summary, UnchangedFile):
        return [
            f"{summary.label}: unchanged since the import at "
            f"{summary.imported_at:%Y-%m-%d %H:%M:%S} UTC; nothing to write."
        ]
    if not summary.changed:
        return [f"{summary.label}: already up to date, nothing changed."]
    lines = [
        f"{summary.label}: {summary.invoices_created} invoices added, "
        f"{summary.invoices_updated} updated, {summary.invoices_unchanged} unchanged; "
        f"{summary.customers_created} customers added, {summary.customers_updated} updated; "
        f"{summary.contacts_created} contacts added, {summary.contacts_updated} updated."
    ]
    if summary.invoices_paid:
        lines.append(
            f"Now paid: {', '.join(summary.invoices_paid[:20])}"
            + (" …" if len(summary.invoices_paid) > 20 else "")
        )
    if summary.invoices_reopened:
        lines.append(
            f"Reopened (balance went up again): {', '.join(summary.invoices_reopened[:20])}"
        )
    return lines


def status_tables(doc: dict[str, Any]) -> list[Any]:
    customer = doc["customer"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Customer", f"{customer['name']} ({customer['id']})")
    head.add_row(
        "Tier", customer["tier"] + ("  · never automate" if customer["never_automate"] else "")
    )
    head.add_row("Owner", customer["owner_slack_id"] or "—")
    head.add_row("Timezone", customer["timezone"] or "—")
    if customer["tags"]:
        head.add_row("Tags", ", ".join(customer["tags"]))
    if doc.get("payment_plan"):
        head.add_row("Payment plan", doc["payment_plan"]["summary"])
    if doc.get("control"):
        head.add_row("Holdout", doc["control"]["summary"])
    for contact in customer["contacts"]:
        reach = ", ".join(x for x in (contact["email"], contact["phone"]) if x)
        flags = []
        if contact["email_opted_out"]:
            flags.append("email opted out")
        if contact["sms_opted_out"]:
            flags.append("SMS opted out")
        if contact["phone"] and not contact["sms_consent"]:
            flags.append("no SMS consent")
        extra = f"  ({'; '.join(flags)})" if flags else ""
        head.add_row(f"Contact ({contact['role']})", f"{contact['name'] or '—'}: {reach}{extra}")

    invoices = Table(title=f"Open invoices ({len(doc['invoices'])})", title_justify="left")
    for column in ("Invoice", "Issued", "Due", "Days late", "Amount", "Balance", "Notes"):
        invoices.add_column(
            column, justify="right" if column in ("Days late", "Amount", "Balance") else "left"
        )
    for inv in doc["invoices"]:
        notes = []
        if inv["disputed"]:
            notes.append("disputed")
        if inv["promise_date"]:
            notes.append(f"promised {inv['promise_date']}")
        late = inv["days_past_due"]
        invoices.add_row(
            inv["number"],
            inv["issue_date"],
            inv["due_date"],
            str(late) if late > 0 else "not due",
            format_money(_dec(inv["amount"]), inv["currency"]),
            format_money(_dec(inv["balance"]), inv["currency"]),
            ", ".join(notes),
        )

    history = Table(title="History (newest first)", title_justify="left")
    for column in ("When (UTC)", "Who", "What"):
        history.add_column(column)
    for event in doc["events"][:20]:
        history.add_row(event["at"][:16].replace("T", " "), event["actor"], _describe_event(event))
    if not doc["events"]:
        history.add_row("—", "", "no history yet")
    return [head, invoices, history]


def _dec(text: str) -> Decimal:
    return Decimal(text)


def _describe_event(event: dict[str, Any]) -> str:
    payload = event["payload"]
    kind = event["kind"]
    if kind == "customer.added":
        return f"added from {payload['from']}"
    if kind == "invoice.paid":
        return f"{payload['number']} paid ({payload['source']})"
    if kind == "invoice.reopened":
        return f"{payload['number']} reopened: balance {payload['balance_after']} {payload['currency']}"
    changed = ledger_change(kind, payload, _utc_minute)
    if changed is not None:
        return changed
    return str(kind)


def _utc_minute(instant: str) -> str:
    """An event's ISO instant as `2026-10-03 04:00 UTC`."""
    return datetime.fromisoformat(instant).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
