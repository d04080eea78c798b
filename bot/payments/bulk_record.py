"""A file of payments recorded at once (the bank feed): each payment is applied in turn to the open
invoices' balances held in memory, exactly as `record.record_payment` applies one, and then all of
it is stored in a few statements (bot/ledger/bulk.py): the payments, their allocations, the
invoices' new balances and the audit events.

The caller holds the ledger lock (bot/core/locks.py) from before it reads the open invoices until
it commits, so no other writer changes a balance in between; each invoice's UPDATE is still
conditional on the balance that was read, and a file whose invoices changed anyway is refused
whole, with nothing stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import Memo, among, new_ids
from bot.core.errors import UserError
from bot.core.models import Event, Invoice, Payment, PaymentAllocation
from bot.ledger.bulk import converter_of, copy_into, core_table, insert_rows, write_converted
from bot.payments.reconcile import Allocation, OpenInvoice
from bot.payments.record import PaymentOutcome
from integrations.base.payments import BankPayment


def stored_external_ids(session: Session, source: str, external_ids: Sequence[str]) -> set[str]:
    """Which of these payments of `source` are stored already."""
    found: set[str] = set()
    for among_them in among(session, Payment.external_id, list(dict.fromkeys(external_ids))):
        found.update(
            session.scalars(select(Payment.external_id).where(Payment.source == source, among_them))
        )
    return found


# An audit event recorded: its kind, customer id, invoice id and payload.
_Event = tuple[str, int | None, int | None, dict[str, Any]]
EVENT_COLUMNS = ("at", "actor", "kind", "customer_id", "invoice_id", "reminder_id", "payload")


class PaymentsInBulk:
    """The payments of one file, applied in memory as they come and stored together."""

    def __init__(self, source: str, invoices: Iterable[OpenInvoice], now: datetime) -> None:
        self.source = source
        self.now = now
        self._invoices = {invoice.id: invoice for invoice in invoices}
        self._read = {invoice_id: i.balance for invoice_id, i in self._invoices.items()}
        self._balances = dict(self._read)
        self._closed: set[int] = set()
        self._payments: list[dict[str, Any]] = []
        self._allocations: list[tuple[str, int, Decimal]] = []  # payment, invoice, amount
        self._events: list[_Event] = []  # those not sent to the database as recorded
        self._send: Callable[[_Event], None] | None = None

    def pay(
        self, payment: BankPayment, customer_id: int | None, allocations: Sequence[Allocation]
    ) -> PaymentOutcome:
        """Record the payment, allocated as `allocations` say (each capped, as record.allocate
        caps it, by the invoice's balance and what is left of the payment); no allocations
        leaves it unapplied. Nothing is written until `store`."""
        outcome = PaymentOutcome()
        left = payment.amount
        for allocation in allocations:
            invoice = self._invoices.get(allocation.invoice_id)
            if (
                invoice is None
                or invoice.currency != payment.currency
                or invoice.id in self._closed
            ):
                continue
            share = min(allocation.amount, self._balances[invoice.id], left)
            if share <= 0:
                continue
            left -= share
            self._allocate(payment, invoice, share, outcome)
        outcome.unapplied = payment.amount - outcome.allocated
        if customer_id is None and outcome.customers:
            customer_id = min(outcome.customers)
        reference = payment.reference or None
        self._payments.append(
            {
                "source": self.source,
                "external_id": payment.external_id,
                "customer_id": customer_id,
                "received_on": payment.received_on,
                "amount": payment.amount,
                "currency": payment.currency,
                "reference": reference,
                "payer": payment.payer or None,
                "created_at": self.now,
            }
        )
        received = {
            "source": self.source,
            "external_id": payment.external_id,
            "amount": str(payment.amount),
            "currency": payment.currency,
            "allocated": str(outcome.allocated),
            "unapplied": str(outcome.unapplied),
            "reference": reference,
        }
        self._event("payment.received", customer_id, None, received)
        return outcome

    def _allocate(
        self, payment: BankPayment, invoice: OpenInvoice, share: Decimal, outcome: PaymentOutcome
    ) -> None:
        balance = self._balances[invoice.id] = self._balances[invoice.id] - share
        self._allocations.append((payment.external_id, invoice.id, share))
        outcome.allocated += share
        outcome.customers.add(invoice.customer_id)
        payload = {
            "number": invoice.number,
            "currency": invoice.currency,
            "amount": str(share),
            "balance_after": str(balance),
            "payment": f"{self.source}:{payment.external_id}",
        }
        self._event("payment.allocated", invoice.customer_id, invoice.id, payload)
        if balance == 0:
            self._closed.add(invoice.id)
            outcome.closed.append(invoice.id)
            paid = {**payload, "source": self.source}
            self._event("invoice.paid", invoice.customer_id, invoice.id, paid)
        else:
            outcome.reduced.append(invoice.id)

    def _event(
        self, kind: str, customer_id: int | None, invoice_id: int | None, payload: dict[str, Any]
    ) -> None:
        if self._send is None:
            self._events.append((kind, customer_id, invoice_id, payload))
        else:
            self._send((kind, customer_id, invoice_id, payload))

    def store(self, session: Session) -> dict[str, int]:
        """Write everything recorded, in the session's transaction; each payment's id by its
        external id. The payments' ids are taken before they are written (bot/core/bulk_rows.py
        `new_ids`), so the allocations point at them without reading them back."""
        payment_ids = new_ids(session, core_table(Payment), len(self._payments))
        rows = [{"id": i, **p} for p, i in zip(self._payments, payment_ids, strict=True)]
        insert_rows(session, Payment, rows)
        ids = {row["external_id"]: row["id"] for row in rows}
        insert_rows(
            session,
            PaymentAllocation,
            [
                {"payment_id": ids[external_id], "invoice_id": invoice_id, "amount": amount}
                for external_id, invoice_id, amount in self._allocations
            ],
        )
        self._store_balances(session)
        self._store_events(session)
        return ids

    @contextmanager
    def events_sent_as_recorded(self, session: Session) -> Iterator[None]:
        """On PostgreSQL, the events recorded while the block runs go to the server as they are
        recorded, through one COPY open meanwhile (nothing else may use the session then), so
        that the server writes them while the rest of the file is matched. On SQLite they wait
        for `store`, as outside the block."""
        if session.get_bind().dialect.name != "postgresql":
            yield
            return
        row_of = self._event_rows(session)
        with copy_into(session, core_table(Event), EVENT_COLUMNS) as write:
            self._send = lambda event: write(row_of(event))
            try:
                yield
            finally:
                self._send = None

    def _store_events(self, session: Session) -> None:
        """The audit events not sent already, in the order recorded."""
        row_of = self._event_rows(session)
        rows = list(map(row_of, self._events))
        write_converted(session, core_table(Event), EVENT_COLUMNS, rows)
        self._events.clear()

    def _event_rows(self, session: Session) -> Callable[[_Event], tuple[Any, ...]]:
        """An event's row, made straight from what was recorded: every event has the same
        instant and actor, converted once; each payload is converted by its column."""
        at = converter_of(session, Event, "at")(self.now)
        actor = converter_of(session, Event, "actor")(audit.SYSTEM)
        kinds = Memo(converter_of(session, Event, "kind"))
        customer = converter_of(session, Event, "customer_id")
        invoice = converter_of(session, Event, "invoice_id")
        payload = converter_of(session, Event, "payload")
        if payload(_PROBE) == _payload_text(_PROBE):  # the column writes JSON as json.dumps
            payload = _payload_text

        def row_of(event: _Event) -> tuple[Any, ...]:
            kind, customer_id, invoice_id, values = event
            return (
                at,
                actor,
                kinds[kind],
                None if customer_id is None else customer(customer_id),
                None if invoice_id is None else invoice(invoice_id),
                None,
                payload(values),
            )

        return row_of

    def _store_balances(self, session: Session) -> None:
        """Each invoice paid from: its new balance (and paid when it reached nothing), on the
        condition that it is still open at the balance read."""
        changed = [i for i, balance in self._balances.items() if balance != self._read[i]]
        if session.get_bind().dialect.name == "postgresql":
            updated = self._store_balances_at_once(session, changed)
        else:
            updated = self._store_balances_each(session, changed)
        if updated != len(changed):
            raise UserError(
                "the open invoices changed while the payments were matched (another process "
                "wrote to the ledger without its lock); nothing was recorded: import the file again"
            )

    def _store_balances_at_once(self, session: Session, changed: list[int]) -> int:
        """PostgreSQL: the invoices paid from and those closed, each set in one UPDATE of arrays
        (one round trip each, however many invoices); how many rows were updated."""
        table = session.get_bind().dialect.identifier_preparer.format_table(core_table(Invoice))
        updated = 0
        for closed in (False, True):
            ids = [i for i in changed if (i in self._closed) is closed]
            if not ids:
                continue
            closing = ", status = 'paid', paid_at = :now" if closed else ""
            statement = text(
                f"UPDATE {table} AS i SET balance = v.balance, updated_at = :now{closing} "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:reads AS numeric[]), "
                "CAST(:balances AS numeric[])) AS v(id, read, balance) "
                "WHERE i.id = v.id AND i.status = 'open' AND i.balance = v.read"
            )
            result = session.connection().execute(
                statement,
                {
                    "now": self.now,
                    "ids": ids,
                    "reads": [self._read[i] for i in ids],
                    "balances": [self._balances[i] for i in ids],
                },
            )
            updated += result.rowcount
        return updated

    def _store_balances_each(self, session: Session, changed: list[int]) -> int:
        """SQLite: one executemany of each UPDATE through the driver, every value converted by
        its column's type first (what SQLAlchemy would do row by row); how many rows were
        updated."""
        table = core_table(Invoice)
        dialect = session.get_bind().dialect
        money = table.c.balance.type._cached_bind_processor(dialect) or _same
        instant = table.c.updated_at.type._cached_bind_processor(dialect) or _same
        now = instant(self.now)
        target = dialect.identifier_preparer.format_table(table)
        updated = 0
        for closed in (False, True):
            closing = ", status = 'paid', paid_at = ?" if closed else ""
            statement = (
                f"UPDATE {target} SET balance = ?, updated_at = ?{closing} "
                "WHERE id = ? AND status = 'open' AND balance = ?"
            )
            rows = [
                (
                    money(self._balances[i]),
                    now,
                    *((now,) if closed else ()),
                    i,
                    money(self._read[i]),
                )
                for i in changed
                if (i in self._closed) is closed
            ]
            if rows:
                updated += session.connection().exec_driver_sql(statement, rows).rowcount
        return updated


def _same(value: Any) -> Any:
    return value


def _payload_text(values: dict[str, str | None]) -> str:
    """The text json.dumps makes of an event's payload, a flat object of strings and None, in
    about a third of its time (it sets up an encoder at each call): a bank file's 33,000."""
    quoted = encode_basestring_ascii
    return (
        "{"
        + ", ".join(
            [f"{quoted(k)}: {'null' if v is None else quoted(v)}" for k, v in values.items()]
        )
        + "}"
    )


# A payload whose text shows how the column writes JSON: escapes, non-ASCII, null.
_PROBE: dict[str, str | None] = {"number": 'Nº "7"\t\\', "reference": None}
