"""Who the day's plan held back, and why, as the plan's row keeps it (`plan_posts.held`): the
counts by reason (what the header showed before names were kept) and one entry per customer
with its name, its ledger id, its reasons and the invoices held. Read back for the plan header,
its *Show all* list, `/ar held` and `/ar status`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from bot.planning import plan_posts
from bot.planning.planner import Held
from integrations.base.slack import HeldLine

Stored = list[Any]  # [[reason, count], ..., {"customer": …, "name": …, "reasons": […], …}, ...]


def to_store(held: Iterable[Held]) -> Stored:
    """The plan's held-back decisions as the plan's row keeps them."""
    held = list(held)
    counts: Stored = [[reason, count] for reason, count in Counter(h.reason for h in held).items()]
    by_customer: dict[int, dict[str, Any]] = {}
    for h in held:
        entry = by_customer.setdefault(
            h.customer.id,
            {
                "customer": h.customer.external_id,
                "name": h.customer.name,
                "reasons": [],
                "invoices": [],
            },
        )
        if h.reason not in entry["reasons"]:
            entry["reasons"].append(h.reason)
        entry["invoices"] += [n for n in h.invoices if n not in entry["invoices"]]
    counts.sort(key=lambda pair: (-pair[1], pair[0]))
    customers = sorted(by_customer.values(), key=lambda e: (e["name"].lower(), e["customer"]))
    return counts + customers


def counts_of(stored: Stored) -> list[tuple[str, int]]:
    return [(str(e[0]), int(e[1])) for e in stored if isinstance(e, list) and len(e) == 2]


def customers_of(stored: Stored) -> list[HeldLine]:
    return [
        HeldLine(
            customer_name=str(e.get("name", "")),
            customer_id=str(e.get("customer", "")),
            reasons=tuple(str(r) for r in e.get("reasons", [])),
            invoices=tuple(str(n) for n in e.get("invoices", [])),
        )
        for e in stored
        if isinstance(e, dict)
    ]


def held_on(session: Session, day: date) -> list[HeldLine] | None:
    """Everyone held back in `day`'s plan; None when no plan of that day was stored for Slack."""
    row = plan_posts.row_of(session, day)
    return None if row is None else customers_of(row.held)


def held_today(session: Session, day: date, customer_id: str) -> HeldLine | None:
    """Why this customer (its ledger id) is held back in `day`'s plan; None when it is not."""
    for line in held_on(session, day) or []:
        if line.customer_id == customer_id:
            return line
    return None
