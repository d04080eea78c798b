"""Bank-feed reconciliation: which open invoices a bank payment pays, decided without a database.

A Matcher is built once over the open invoices, then decides each payment of a file in turn by
the first rule that finds any candidate (rules are never mixed):

1. `reference`: invoice numbers written in the payment's reference ("INV-1001", "inv 1001",
   "#1001"); several numbers make one match over those invoices, oldest due first;
2. `exact_amount`: an open invoice of the payer whose balance is exactly the amount;
3. `combination`: two to four open invoices of the payer adding up exactly to the amount;
4. `partial`: the payer's only open invoice in that currency, when its balance exceeds the amount.

A decision with exactly one candidate and nothing doubtful about it is applied automatically;
anything else goes to a person with its candidates. Only invoices in the payment's currency match;
a match covers one customer, never allocates more than the payment nor more than an invoice's
balance (what is left of the payment is unapplied). `apply` takes an applied match off the
balances, so the next payment of the same file sees what is left.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from integrations.base.payments import BankPayment

Rule = Literal["reference", "exact_amount", "combination", "partial"]

MAX_CANDIDATES = 10  # a person picks among at most this many
COMBINATION_POOL = 12  # the payer's oldest open invoices a combination is sought among
COMBINATION_MOST = 4  # invoices in one combination (at least 2)
# A bare number shorter than this ("7", "42") is more likely a day or a count than an invoice.
SHORTEST_NUMBER = 3

# Legal forms dropped from the end of a name: "Acme Inc." and "ACME LLC" are the same payer.
# fmt: off
LEGAL_SUFFIXES = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "llp", "lp", "pllc", "pc",
    "ltd", "limited", "plc", "pty",
    "gmbh", "ag", "kg", "sa", "sarl", "sas", "srl", "spa", "bv", "nv", "ab", "oy",
})
# fmt: on

_WORD = re.compile(r"[^\W_]+")
_PART = re.compile(r"[^\W\d_]+|\d+")  # a run of letters or a run of digits
_DIGITS = re.compile(r"\d+")


class OpenInvoice(NamedTuple):
    """An invoice as the matcher sees it; a balance of 0 is known but settled (a reference to it
    goes to a person rather than to the payer's other invoices). A tuple: a book's 100,000 are
    made from their rows in a tenth of the time a dataclass takes."""

    id: int
    customer_id: int
    customer_name: str
    number: str
    currency: str
    balance: Decimal
    due_date: date


_CUSTOMER_KEY = attrgetter("id", "customer_id", "currency")
# How a closed invoice a reference names was settled, in a person's words.
_SETTLED = {"paid": "already paid in full", "void": "voided", "written_off": "written off"}


@dataclass(frozen=True, slots=True)
class Allocation:
    invoice_id: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Match:
    rule: Rule
    customer_id: int
    allocations: tuple[Allocation, ...]

    @property
    def total(self) -> Decimal:
        """What this match allocates; the rest of the payment is unapplied."""
        return sum((allocation.amount for allocation in self.allocations), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        """The candidate as stored on a payment review: amounts as decimal strings."""
        return {
            "rule": self.rule,
            "customer_id": self.customer_id,
            "allocations": [
                {"invoice_id": a.invoice_id, "amount": str(a.amount)} for a in self.allocations
            ],
        }


@dataclass(frozen=True, slots=True)
class Decision:
    payment: BankPayment
    matches: tuple[Match, ...]  # the candidates, at most MAX_CANDIDATES
    payer_customer_ids: frozenset[int] = frozenset()  # the customers the payer's name names
    hold: str | None = None  # why a person must look even at a single candidate

    @property
    def auto(self) -> Match | None:
        """The match to apply without asking: the only candidate, when nothing is in doubt."""
        if len(self.matches) == 1 and self.hold is None:
            return self.matches[0]
        return None

    @property
    def review_reason(self) -> str | None:
        """Why a person has to decide, in their words; None when the match is automatic."""
        if self.auto is not None:
            return None
        if self.hold is not None:
            return self.hold
        if not self.matches:
            return (
                "nothing matched: no open invoice number in the reference, and no open invoice "
                "of the payer fits the amount"
            )
        return f"{len(self.matches)} possible matches"


@lru_cache(maxsize=65536)
def normalise_name(name: str) -> str:
    """A company name as a bank writes it, reduced to compare: case, accents, punctuation and
    trailing legal forms go ("Müller & Co. GmbH" -> "muller")."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    if decomposed.isascii():
        plain = decomposed  # no accents to drop
    else:
        plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = _WORD.findall(plain.replace("&", " and ").replace(".", ""))
    while len(words) > 1 and (words[-1] in LEGAL_SUFFIXES or words[-1] == "and"):
        words.pop()  # "Smith & Co" leaves "smith and", then "smith"
    if len(words) > 1 and words[0] == "the":
        words.pop(0)
    return " ".join(words)


class Matcher:
    """Open invoices indexed by number, by payer name and by customer and currency.

    `customer_aliases` are the other names a customer pays under. Give every customer's own name
    there too, open invoices or not: a payer is then recognised even when it owes nothing, and a
    reference to someone else's invoice from that payer goes to a person.

    `references`, when given, are those of every payment the matcher will decide (a bank file's):
    an invoice number is then indexed only when its digits stand in one of them, which decides
    each of those payments exactly as indexing every number would, for a fraction of the work.

    `closed`: invoices given with a balance of 0 because they are closed, by id, with their
    status (`paid`, `void`, `written_off`): a reference to one goes to a person saying so, as one
    to an invoice paid earlier in the file does, instead of being applied to another invoice.
    A closed invoice of another customer than the one the payer names is not taken as named.
    """

    def __init__(
        self,
        invoices: Iterable[OpenInvoice],
        customer_aliases: Mapping[int, Iterable[str]] | None = None,
        references: Iterable[str] | None = None,
        closed: Mapping[int, str] | None = None,
    ) -> None:
        self._closed: Mapping[int, str] = closed or {}
        self._invoices: dict[int, OpenInvoice] = {}
        self._balances: dict[int, Decimal] = {}
        self._by_number: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self._of_customer: dict[tuple[int, str], list[int]] = defaultdict(list)
        self._customers_by_name: dict[str, set[int]] = defaultdict(set)
        self._names: dict[int, str] = {}
        self._payers: dict[str, frozenset[int]] = {}
        # Indexed oldest due first, so each customer's invoices are kept in that order. Each
        # index is built in a pass of its own over the 100,000 invoices of a book.
        ordered = sorted(invoices, key=attrgetter("due_date", "id"))
        self._check(ordered)
        self._invoices = {invoice.id: invoice for invoice in ordered}
        self._balances = {invoice.id: invoice.balance for invoice in ordered}
        if references is None:
            numbered = ordered
        else:
            nameable = nameable_by(references)
            numbered = [invoice for invoice in ordered if nameable(invoice.number)]
        by_number = self._by_number
        for invoice_id, keys in zip(
            map(attrgetter("id"), numbered),
            map(_number_keys, map(attrgetter("number"), numbered)),
            strict=True,
        ):
            for key in keys:
                by_number[key].append(invoice_id)
        of_customer = self._of_customer
        for invoice_id, customer_id, currency in map(_CUSTOMER_KEY, ordered):
            of_customer[(customer_id, currency)].append(invoice_id)
        for invoice in ordered:
            if invoice.customer_id not in self._names:
                self._names[invoice.customer_id] = invoice.customer_name
                self._name(invoice.customer_id, invoice.customer_name)
        for customer_id, aliases in (customer_aliases or {}).items():
            for alias in aliases:
                self._names.setdefault(customer_id, alias)
                self._name(customer_id, alias)
        self._longest_number = max(map(len, self._by_number), default=0)

    @staticmethod
    def _check(invoices: Sequence[OpenInvoice]) -> None:
        """Refuse an invoice given twice or one with a negative balance (the first, in order)."""
        ids = list(map(attrgetter("id"), invoices))
        if len(set(ids)) == len(ids) and min(map(attrgetter("balance"), invoices), default=0) >= 0:
            return
        seen: set[int] = set()
        for invoice in invoices:
            if invoice.id in seen:
                raise ValueError(f"invoice {invoice.id} ({invoice.number}) is given twice")
            if invoice.balance < 0:
                raise ValueError(
                    f"invoice {invoice.number} has a negative balance {invoice.balance}"
                )
            seen.add(invoice.id)

    def _name(self, customer_id: int, name: str) -> None:
        normalised = normalise_name(name)
        if normalised:
            self._customers_by_name[normalised].add(customer_id)

    def balance(self, invoice_id: int) -> Decimal:
        """What is left open on the invoice after the matches applied so far."""
        return self._balances[invoice_id]

    def decide(self, payment: BankPayment) -> Decision:
        if payment.amount <= 0:
            raise ValueError(f"a payment to match is more than 0, not {payment.amount}")
        payers = self._customers_named(payment.payer)
        by_reference = self._by_reference(payment, payers)
        if by_reference is not None:
            return by_reference
        for rule in (self._exact_amount, self._combination, self._partial):
            matches = tuple(islice(rule(payment, sorted(payers)), MAX_CANDIDATES))
            if matches:
                return Decision(payment, matches, payers)
        return Decision(payment, (), payers)

    def apply(self, match: Match) -> None:
        """Take the match off the balances; refuse (changing nothing) what would overdraw one."""
        taken: dict[int, Decimal] = defaultdict(Decimal)
        for allocation in match.allocations:
            invoice = self._invoices.get(allocation.invoice_id)
            if invoice is None or invoice.customer_id != match.customer_id:
                raise ValueError(
                    f"invoice {allocation.invoice_id} is not an open invoice of customer "
                    f"{match.customer_id}"
                )
            taken[invoice.id] += allocation.amount
            if allocation.amount <= 0 or taken[invoice.id] > self._balances[invoice.id]:
                raise ValueError(
                    f"cannot take {allocation.amount} off invoice {invoice.number}: "
                    f"its balance is {self._balances[invoice.id]}"
                )
        for invoice_id, amount in taken.items():
            self._balances[invoice_id] -= amount

    def _customers_named(self, payer: str) -> frozenset[int]:
        known = self._payers.get(payer)
        if known is None:
            known = frozenset(self._customers_by_name.get(normalise_name(payer), ()))
            self._payers[payer] = known
        return known

    def _due_order(self, invoice_id: int) -> tuple[date, int]:
        return self._invoices[invoice_id].due_date, invoice_id

    def _open(self, customer_id: int, currency: str) -> list[int]:
        """The customer's invoices in that currency still open, oldest due first."""
        ids = self._of_customer.get((customer_id, currency), [])
        return [invoice_id for invoice_id in ids if self._balances[invoice_id] > 0]

    def _by_reference(self, payment: BankPayment, payers: frozenset[int]) -> Decision | None:
        named = [
            invoice_id
            for invoice_id in _referenced(payment.reference, self._by_number, self._longest_number)
            if self._invoices[invoice_id].currency == payment.currency
            and self._may_name(invoice_id, payers)
        ]
        if not named:
            return None
        still_open = [invoice_id for invoice_id in named if self._balances[invoice_id] > 0]
        if not still_open:
            return Decision(payment, (), payers, hold=self._settled(named))
        by_customer: dict[int, list[int]] = defaultdict(list)
        for invoice_id in still_open:
            by_customer[self._invoices[invoice_id].customer_id].append(invoice_id)
        hold = None
        if payers:
            payers_own = {c: ids for c, ids in by_customer.items() if c in payers}
            if payers_own:
                by_customer = payers_own
            else:
                hold = (
                    f"the reference names {self._numbers(still_open)} of "
                    f"{self._customer_list(by_customer)}, but the payer {payment.payer!r} is "
                    f"{self._customer_list(payers)}"
                )
        matches = tuple(
            self._covering(payment.amount, customer_id, ids)
            for customer_id, ids in sorted(by_customer.items())
        )
        return Decision(payment, matches[:MAX_CANDIDATES], payers, hold)

    def _may_name(self, invoice_id: int, payers: frozenset[int]) -> bool:
        """Whether a reference may name the invoice: one closed before the file counts only when
        no payer is recognised or it is the payer's own, so a number that happens to stand in
        another customer's settled history (Bolt's paid 4521 in Acme's "PO 4521") holds nothing."""
        if invoice_id not in self._closed or not payers:
            return True
        return self._invoices[invoice_id].customer_id in payers

    def _covering(self, amount: Decimal, customer_id: int, invoice_ids: list[int]) -> Match:
        """One reference match: each invoice oldest due first, up to what the payment has left."""
        allocations = []
        left = amount
        for invoice_id in sorted(invoice_ids, key=self._due_order):
            share = min(self._balances[invoice_id], left)
            if share <= 0:
                break
            allocations.append(Allocation(invoice_id, share))
            left -= share
        return Match("reference", customer_id, tuple(allocations))

    def _exact_amount(self, payment: BankPayment, payers: Sequence[int]) -> Iterator[Match]:
        for customer_id in payers:
            for invoice_id in self._open(customer_id, payment.currency):
                if self._balances[invoice_id] == payment.amount:
                    allocation = Allocation(invoice_id, payment.amount)
                    yield Match("exact_amount", customer_id, (allocation,))

    def _combination(self, payment: BankPayment, payers: Sequence[int]) -> Iterator[Match]:
        for customer_id in payers:
            smaller = [
                (invoice_id, self._balances[invoice_id])
                for invoice_id in self._open(customer_id, payment.currency)
                if self._balances[invoice_id] < payment.amount
            ]
            pool = sorted(smaller[:COMBINATION_POOL], key=lambda item: item[1])
            for combination in _summing_to(pool, 0, payment.amount, COMBINATION_MOST):
                allocations = tuple(
                    Allocation(invoice_id, self._balances[invoice_id])
                    for invoice_id in sorted(combination, key=self._due_order)
                )
                yield Match("combination", customer_id, allocations)

    def _partial(self, payment: BankPayment, payers: Sequence[int]) -> Iterator[Match]:
        for customer_id in payers:
            still_open = self._open(customer_id, payment.currency)
            if len(still_open) == 1 and self._balances[still_open[0]] > payment.amount:
                allocation = Allocation(still_open[0], payment.amount)
                yield Match("partial", customer_id, (allocation,))

    def _settled(self, invoice_ids: Sequence[int]) -> str:
        """Why a payment whose reference names only settled invoices goes to a person: each
        named with how it was settled (paid in full, voided, written off)."""
        by_how: dict[str, list[int]] = defaultdict(list)
        for invoice_id in invoice_ids:
            status = self._closed.get(invoice_id, "paid")
            by_how[_SETTLED.get(status, status.replace("_", " "))].append(invoice_id)
        how = "; ".join(f"{self._numbers(ids)}, {words}" for words, ids in sorted(by_how.items()))
        return f"the reference names {how}"

    def _numbers(self, invoice_ids: Iterable[int]) -> str:
        return ", ".join(sorted({self._invoices[i].number for i in invoice_ids}))

    def _customer_list(self, customer_ids: Iterable[int]) -> str:
        return " or ".join(sorted(self._names.get(c, f"customer {c}") for c in customer_ids))


def _summing_to(
    pool: Sequence[tuple[int, Decimal]], start: int, target: Decimal, most: int
) -> Iterator[tuple[int, ...]]:
    """Sets of at most `most` invoices from `pool[start:]` (sorted by balance) whose balances add
    up to exactly `target`; with a pool of 12, at most C(12,2)+C(12,3)+C(12,4) = 781 sums. Every
    balance of the pool is below the payment, so each set found has two invoices or more."""
    for index in range(start, len(pool)):
        invoice_id, balance = pool[index]
        if balance > target:
            return  # the pool is sorted: every later balance is larger still
        if balance == target:
            yield (invoice_id,)
        elif most > 1:
            for rest in _summing_to(pool, index + 1, target - balance, most - 1):
                yield (invoice_id, *rest)


def _parts(text: str) -> tuple[list[str], list[bool]]:
    """The letter and digit runs of `text`, casefolded, and whether each is glued to the next
    ("inv-1001", "INV1001", "10.50") rather than standing apart ("inv 1001", "#1001, #1002")."""
    lowered = text.casefold()
    parts: list[str] = []
    glued: list[bool] = []
    previous_end = 0
    for found in _PART.finditer(lowered):
        part = found.group()
        if parts:
            between = lowered[previous_end : found.start()]
            glued.append(
                between in ("", "-", "_")
                or (between == "." and parts[-1].isdigit() and part.isdigit())
            )
        parts.append(part)
        previous_end = found.end()
    return parts, glued


def _number_keys(number: str) -> list[tuple[str, ...]]:
    """How a reference may write an invoice number: whole ("inv-1001", "INV 1001") and, when it
    starts with letters, without them ("#1001"), unless what is left is too short to tell."""
    parts = _PART.findall(number.casefold())
    first_digit = 0
    while first_digit < len(parts) and not parts[first_digit][0].isdigit():
        first_digit += 1
    if first_digit == len(parts):
        return []  # a word, not a number: it would match words of the reference
    core = tuple(parts[first_digit:])
    keys = [tuple(parts)] if first_digit else []
    if len("".join(core)) >= SHORTEST_NUMBER:
        keys.append(core)
    return keys


def nameable_by(references: Iterable[str]) -> Callable[[str], bool]:
    """Whether one of these references may name an invoice number: the number shares a run of
    digits with one. Every number key holds a digit run of the number (`_number_keys`), and a
    reference names the key only with the same run among its own parts, so the other numbers can
    never be named. A number that is not ASCII (digits of other scripts) may always be."""
    runs: set[str] = set()
    for reference in references:
        runs.update(_PART.findall(reference.casefold()))

    def nameable(number: str) -> bool:
        return not runs.isdisjoint(_DIGITS.findall(number)) or not number.isascii()

    return nameable


def _referenced(
    reference: str, by_number: Mapping[tuple[str, ...], list[int]], longest: int
) -> list[int]:
    """Invoices whose number stands in the reference as a whole: "1001" is not in "10012" nor in
    "PO1001" or "INV-1001-2"; each invoice once, in the order first named."""
    parts, glued = _parts(reference)
    named: dict[int, None] = {}
    for start in range(len(parts)):
        if start > 0 and glued[start - 1]:
            continue
        for end in range(start + 1, min(start + longest, len(parts)) + 1):
            if end < len(parts) and glued[end - 1]:
                continue
            for invoice_id in by_number.get(tuple(parts[start:end]), ()):
                named[invoice_id] = None
    return list(named)
