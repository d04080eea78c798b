"""The bundled sample ledger: a believable book of receivables, dated relative to a given day.

Contractors, clinics, agencies and B2B service firms across all three tiers, some with several
open invoices, one billing in EUR. Each paid invoice says when it was paid, by its customer's own
habit (a few pay early, most a few days to a few weeks late), so the forecast has history to learn
from. Seeded, so the same day always gives the same ledger; the benchmarks use the same generator
at a larger size.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from integrations.base.ledger import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
PAID_DATE = "paid_date"  # written only when a row says when it was paid
PAID = "0.00"  # a paid invoice's balance as the sample writes it


@dataclass(frozen=True)
class Industry:
    tag: str
    first: tuple[str, ...]
    second: tuple[str, ...]
    amounts: tuple[int, int]  # invoice size range, whole currency units
    terms: tuple[int, ...]  # net days


INDUSTRIES = (
    Industry(
        "contractor",
        (
            "Ridgeline",
            "Summit",
            "Ironwood",
            "Bluestone",
            "Cedar Valley",
            "Granite State",
            "Keel & Beam",
            "Northgate",
            "Prairie",
            "Copperline",
            "Redwood",
            "Lakeshore",
        ),
        (
            "Roofing",
            "Electrical",
            "Plumbing & Heating",
            "Builders",
            "Concrete",
            "HVAC",
            "Landscaping",
            "Restoration",
        ),
        (1800, 42000),
        (30, 45),
    ),
    Industry(
        "clinic",
        (
            "Harbor",
            "Northside",
            "Willow Creek",
            "Brightsmile",
            "Maple Grove",
            "Riverbend",
            "Evergreen",
            "Clearview",
            "Sunrise",
            "Hillcrest",
        ),
        (
            "Family Dental",
            "Physical Therapy",
            "Pediatrics",
            "Eye Care",
            "Chiropractic",
            "Dermatology",
            "Veterinary Clinic",
        ),
        (150, 3200),
        (15, 30),
    ),
    Industry(
        "agency",
        (
            "Brightline",
            "Fieldnote",
            "Paper Kite",
            "Northstar",
            "Lumen",
            "Tidewater",
            "Foxglove",
            "Signal & Noise",
            "Halftone",
            "Open Door",
        ),
        ("Creative", "Digital", "Media", "Studio", "Marketing", "Design Co."),
        (2500, 26000),
        (30,),
    ),
    Industry(
        "b2b",
        (
            "Keystone",
            "Atlas",
            "Meridian",
            "Pinnacle",
            "Bridgewater",
            "Orchard",
            "Vantage",
            "Cobalt",
            "Westfield",
            "Crescent",
        ),
        (
            "Logistics",
            "IT Services",
            "Staffing",
            "Facilities",
            "Security",
            "Consulting",
            "Analytics",
            "Print & Mail",
        ),
        (500, 16000),
        (30, 45, 60),
    ),
)
INDUSTRY_TAGS = {"contractor": "retainage", "clinic": "patient", "agency": "retainer", "b2b": ""}

# (timezone, area codes that belong to it)
US_ZONES = (
    ("America/New_York", ("212", "617", "404", "305", "215")),
    ("America/Chicago", ("312", "214", "612", "512", "314")),
    ("America/Denver", ("303", "801", "505")),
    ("America/Phoenix", ("602", "480")),
    ("America/Los_Angeles", ("415", "213", "206", "503", "619")),
)
FIRST_NAMES = (
    "Maria",
    "James",
    "Priya",
    "Daniel",
    "Aisha",
    "Tom",
    "Elena",
    "Marcus",
    "Grace",
    "Luis",
    "Hannah",
    "Wei",
    "Olivia",
    "Sam",
    "Fatima",
    "Noah",
    "Rosa",
    "Ben",
)
LAST_NAMES = (
    "Garcia",
    "Okafor",
    "Patel",
    "Nguyen",
    "Schmidt",
    "Brennan",
    "Kowalski",
    "Haddad",
    "Rossi",
    "Johansson",
    "Kim",
    "Alvarez",
    "Murphy",
    "Chen",
    "Dubois",
    "Walker",
)
OWNERS = ("U07DANA01", "U07RAJ02", "U07KELLY3", "U07MIGUEL4")
TIER_WEIGHTS = (("strategic", 15), ("standard", 55), ("transactional", 30))


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def sample_rows(
    today: date, customers: int = 90, invoices: int = 320, seed: int = 7
) -> list[dict[str, str]]:
    """Rows in the ledger CSV format. Invoice numbers are unique across the whole ledger."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    per_customer = _spread(rng, invoices, customers)
    used_names: set[str] = set()
    invoice_no = 10000
    for index in range(customers):
        industry = INDUSTRIES[index % len(INDUSTRIES)]
        name = _unique_name(rng, industry, used_names, index)
        euro = index == 7  # one customer bills in EUR, from Berlin
        if euro:
            name = "Nordlicht Messebau GmbH"
        tier = rng.choices([t for t, _ in TIER_WEIGHTS], [w for _, w in TIER_WEIGHTS])[0]
        zone, area_codes = US_ZONES[rng.randrange(len(US_ZONES))]
        contact_first, contact_last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = _slug(name)[:24] + ".example"
        has_phone = rng.random() < 0.7
        phone = f"+1{rng.choice(area_codes)}555{rng.randrange(100, 200):04d}" if has_phone else ""
        tags = [t for t in (industry.tag, INDUSTRY_TAGS[industry.tag]) if t]
        # A few ledgers are incomplete, as real ones are: a phone but no email, or no timezone.
        no_email = has_phone and rng.random() < 0.06
        no_zone = not euro and rng.random() < 0.04
        customer = {
            "customer_id": f"C-{index + 1:05d}",
            "customer_name": name,
            "contact_name": f"{contact_first} {contact_last}",
            "email": ""
            if no_email
            else f"{'ap' if rng.random() < 0.5 else contact_first.lower()}@{domain}",
            "phone": "+493090182044" if euro else phone,
            "tier": tier,
            "owner_slack_id": rng.choice(OWNERS)
            if tier == "strategic" or rng.random() < 0.3
            else "",
            "timezone": "Europe/Berlin" if euro else ("" if no_zone else zone),
            "sms_consent": "true" if (has_phone or euro) and rng.random() < 0.6 else "false",
            "never_automate": "true" if tier == "strategic" and rng.random() < 0.15 else "false",
            "tags": ";".join(tags),
            "language": "de" if euro else "",  # the Berlin customer reads German
        }
        # Its own generator: the paid dates draw nothing from the ledger's, whose rows stay
        # what they were before the ledger said when invoices were paid.
        habit = _Habit(random.Random(f"{seed}:{index}"))
        for _ in range(per_customer[index]):
            invoice_no += 1
            invoice = _invoice(rng, today, industry, invoice_no, "EUR" if euro else "USD")
            if invoice["balance"] == PAID:
                invoice[PAID_DATE] = habit.paid_on(invoice, today).isoformat()
            rows.append({**customer, **invoice})
    return rows


class _Habit:
    """How one customer pays: its usual days after the due date (some before it), and how much
    each invoice strays from that."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.usual = -rng.randint(1, 6) if rng.random() < 0.15 else rng.randint(2, 25)
        self.spread = rng.uniform(1.0, 5.0)

    def paid_on(self, invoice: dict[str, str], today: date) -> date:
        """A day between the invoice's issue and today, near its due date plus the habit."""
        due = date.fromisoformat(invoice["due_date"])
        late = round(self.rng.gauss(self.usual, self.spread))
        day = due + timedelta(days=late)
        return min(max(day, date.fromisoformat(invoice["issue_date"])), today)


def _spread(rng: random.Random, invoices: int, customers: int) -> list[int]:
    """Every customer gets one invoice; the rest go mostly to a few (some accounts are busy)."""
    counts = [1] * customers
    for _ in range(max(invoices - customers, 0)):
        counts[
            min(int(rng.paretovariate(1.2)) * rng.randrange(customers) % customers, customers - 1)
        ] += 1
    return counts


def _unique_name(rng: random.Random, industry: Industry, used: set[str], index: int) -> str:
    for _ in range(20):
        name = f"{rng.choice(industry.first)} {rng.choice(industry.second)}"
        if name not in used:
            used.add(name)
            return name
    name = f"{rng.choice(industry.first)} {rng.choice(industry.second)} {index + 1}"
    used.add(name)
    return name


def _invoice(
    rng: random.Random, today: date, industry: Industry, number: int, currency: str
) -> dict[str, str]:
    # Most invoices are recent, a tail is months old: a typical book of receivables.
    issue = today - timedelta(days=int(rng.triangular(0, 150, 0)))
    due = issue + timedelta(days=rng.choice(industry.terms))
    low, high = industry.amounts
    amount = Decimal(rng.randrange(low * 100, high * 100)) / 100
    balance = amount
    days_past_due = (today - due).days
    if days_past_due > 0:
        roll = rng.random()
        if roll < 0.3:
            balance = Decimal("0.00")  # paid
        elif roll < 0.4:
            balance = (amount * Decimal(rng.randrange(20, 80)) / 100).quantize(Decimal("0.01"))
    return {
        "invoice_number": f"INV-{number}",
        "issue_date": issue.isoformat(),
        "due_date": due.isoformat(),
        "currency": currency,
        "amount": f"{amount:.2f}",
        "balance": f"{balance:.2f}",
    }


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        # a book whose rows say no paid day (all open) is written without the column
        paid = any(row.get(PAID_DATE) for row in rows)
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, PAID_DATE] if paid else list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path
