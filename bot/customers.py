"""Finding a customer the way people type them: by id or by name, forgiving case and typos."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.errors import UserError
from bot.models import Customer

MAX_SUGGESTIONS = 5


def find_customer(session: Session, query: str) -> Customer:
    """Exact id or name (any case), else a unique partial name; otherwise a UserError with suggestions."""
    wanted = query.strip()
    if not wanted:
        raise UserError("say which customer: an id such as C-1001 or a name such as Acme")
    lowered = wanted.lower()
    exact = session.scalars(
        select(Customer).where(
            or_(func.lower(Customer.external_id) == lowered, func.lower(Customer.name) == lowered)
        )
    ).all()
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise UserError(_ambiguous(wanted, exact))
    partial = session.scalars(
        select(Customer).where(func.lower(Customer.name).contains(lowered, autoescape=True))
    ).all()
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise UserError(_ambiguous(wanted, partial))
    raise UserError(_not_found(session, wanted))


def _label(customer: Customer) -> str:
    return f"{customer.name} ({customer.external_id})"


def _ambiguous(query: str, matches: Sequence[Customer]) -> str:
    shown = ", ".join(_label(c) for c in list(matches)[:MAX_SUGGESTIONS])
    more = len(matches) - MAX_SUGGESTIONS
    tail = f" and {more} more" if more > 0 else ""
    return f"{query!r} matches {len(matches)} customers: {shown}{tail}. Use the customer id."


def _not_found(session: Session, query: str) -> str:
    names = {c.name: c for c in session.scalars(select(Customer))}
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(query.lower(), list(by_lower), n=MAX_SUGGESTIONS, cutoff=0.6)
    if not close:
        return f"no customer matches {query!r}"
    suggestions = ", ".join(_label(names[by_lower[name]]) for name in close)
    return f"no customer matches {query!r}. Did you mean: {suggestions}?"
