"""Finding a customer the way people type them: by id or by name, forgiving case and typos."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.errors import UserError
from bot.core.models import Customer

MAX_SUGGESTIONS = 5


def find_customer(session: Session, query: str) -> Customer:
    """The customer `query` names, trying in turn: the id exactly as typed, a whole name (any
    case), an id in any case, then a unique part of a name. The first step that matches settles
    it (so `ACME` is the customer with that id though another is named "Acme", and `Acme` is that
    one); several matches in a step are a UserError listing them, none at all a UserError with
    suggestions. Case is folded in Python (SQLite's lower() only folds ASCII: "Électricité"), and
    curly quotes and apostrophes are read as straight ones."""
    typed = query.strip()
    wanted = _folded(typed)
    if not wanted:
        raise UserError("say which customer: an id such as C-1001 or a name such as Acme")
    names = session.execute(select(Customer.id, Customer.external_id, Customer.name)).all()
    steps = (
        [r for r in names if r.external_id == typed],
        [r for r in names if _folded(r.name) == wanted],
        [r for r in names if _folded(r.external_id) == wanted],
        [r for r in names if wanted in _folded(r.name)],
    )
    for matches in steps:
        if len(matches) == 1:
            customer = session.get(Customer, matches[0].id)
            assert customer is not None
            return customer
        if len(matches) > 1:
            raise UserError(_ambiguous(typed, matches))
    raise UserError(_not_found(names, typed))


# curly single and double quotes (left, right) as straight ones
_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _folded(text: str) -> str:
    """`text` in any case, curly quotes and apostrophes as straight ones (O'Brien's typed on a
    phone, with curly apostrophes, is O'Brien's)."""
    return text.translate(_TYPOGRAPHIC).casefold()


def _label(customer: Any) -> str:
    return f"{customer.name} ({customer.external_id})"


def _ambiguous(query: str, matches: Sequence[Any]) -> str:
    shown = ", ".join(_label(c) for c in list(matches)[:MAX_SUGGESTIONS])
    more = len(matches) - MAX_SUGGESTIONS
    tail = f" and {more} more" if more > 0 else ""
    return f"{query!r} matches {len(matches)} customers: {shown}{tail}. Use the customer id."


def _not_found(names: Sequence[Any], query: str) -> str:
    by_folded = {r.name.casefold(): r for r in names}
    close = difflib.get_close_matches(
        query.casefold(), list(by_folded), n=MAX_SUGGESTIONS, cutoff=0.6
    )
    if not close:
        return f"no customer matches {query!r}"
    suggestions = ", ".join(_label(by_folded[name]) for name in close)
    return f"no customer matches {query!r}. Did you mean: {suggestions}?"


def name_of(session: Session, customer_id: int) -> str:
    customer = session.get(Customer, customer_id)
    assert customer is not None, f"no customer {customer_id}"
    return customer.name
