"""Every message the planner renders stays byte for byte what it was: a varied ledger (six
currencies, partial balances, several invoices per customer, names that need escaping, long names
that push a text past its limit, payment links, SMS and email, every tier and segment) is planned
on several days, and the whole plan (each reminder, escalation and hold, with every part of every
message) is compared with tests/bot/planning/golden/plan.json.

`python -m tests.bot.planning.test_messages_golden` writes that file again; do it only when a
change to a message is meant, and read the diff."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.clock import FixedClock
from bot.core.models import Event, Invoice, Reminder, ReminderInvoice
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.ledger.upsert import apply_batch
from bot.planning.forecast import forecast
from bot.planning.planner import Plan, PlanItem, PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import write

GOLDEN = Path(__file__).parent / "golden" / "plan.json"
FIRST_DAY = date(2026, 3, 16)
NOW = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
# Days planned: each as a dry run over the same ledger, then one stored and a later one on top.
OFFSETS = (0, 5, 12, 24)
CUSTOMERS = 260
# Messages kept in full in the golden file (the rest by digest, to keep it small).
IN_FULL = 24

CURRENCIES = ("USD", "USD", "USD", "USD", "EUR", "GBP", "JPY", "KWD", "CAD")
NAMES = (
    "Ridgeline Roofing",
    "Müller & Söhne GmbH",
    "O'Brien <HVAC> Services",
    'The "Best" Clinic',
    "Zoë's Bakery",
    "Keel & Beam Builders, Inc.",
    "Northgate Dental Partners Ltd.",
    "A",
    "Cedar Valley Physical Therapy, Sports Medicine and Occupational Rehabilitation Associates"
    " of the Greater Lakeshore Metropolitan Area, Northern Division",
    "東京トレーディング株式会社",
)
CONTACTS = ("Maria Garcia", "", "Dr. Smith", "J. Doe", "accounts payable", "Zoë Ødegaard", "Li")
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/Berlin", "")
TAGS = ("", "patient", "contractor;retainage", "agency", "patient;vip")
TIERS = ("standard", "standard", "transactional", "strategic")
DAYS_PAST_DUE = (-10, -7, -5, -3, -3, -1, 0, 0, 1, 3, 3, 5, 7, 7, 8, 10, 12, 14, 14, 16, 21, 25, 33)


def _amount(rng: random.Random, currency: str) -> Decimal:
    whole = rng.choice((0, 3, 48, 950, 1200, 14_999, 250_000, 1_234_567))
    if currency == "JPY":
        return Decimal(whole * 100 + rng.randrange(100))
    if currency == "KWD":
        return Decimal(whole) + Decimal(rng.randrange(1000)) / 1000
    return Decimal(whole) + Decimal(rng.randrange(100)) / 100


def ledger_rows(seed: int = 20) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for n in range(CUSTOMERS):
        has_phone = rng.random() < 0.6
        customer = {
            "customer_id": f"G-{n:04d}",
            "customer_name": f"{rng.choice(NAMES)} {n}" if n % 7 else rng.choice(NAMES),
            "contact_name": rng.choice(CONTACTS),
            "email": "" if rng.random() < 0.08 else f"ap{n}@g{n % 17}.example",
            "phone": f"+1312555{n:04d}" if has_phone else "",
            "tier": rng.choice(TIERS),
            "owner_slack_id": rng.choice(("", "", "U07DANA01")),
            "timezone": rng.choice(ZONES),
            "sms_consent": "true" if has_phone and rng.random() < 0.7 else "false",
            "never_automate": "true" if rng.random() < 0.04 else "false",
            "tags": rng.choice(TAGS),
        }
        currencies = (
            [rng.choice(CURRENCIES)]
            if rng.random() < 0.85
            else rng.sample(sorted(set(CURRENCIES)), 2)
        )
        for k in range(rng.choice((1, 1, 1, 1, 2, 2, 3, 4))):
            currency = currencies[k % len(currencies)]
            amount = _amount(rng, currency)
            balance = rng.choice((amount, amount, amount, amount / 2, Decimal(0)))
            places = {"JPY": 0, "KWD": 3}.get(currency, 2)
            due_date = FIRST_DAY - timedelta(days=rng.choice(DAYS_PAST_DUE))
            rows.append(
                {
                    **customer,
                    "invoice_number": f"INV-{n:04d}-{k}",
                    "issue_date": (due_date - timedelta(days=30)).isoformat(),
                    "due_date": due_date.isoformat(),
                    "currency": currency,
                    "amount": f"{amount:.{places}f}",
                    "balance": f"{balance.quantize(Decimal(1).scaleb(-places)):.{places}f}",
                }
            )
    return rows


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _item(item: PlanItem, full: bool) -> dict[str, Any]:
    message = item.message
    parts = (
        {
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "sms": message.sms,
        }
        if message
        else {}
    )
    return {
        "customer": item.customer.external_id,
        "action": item.action,
        "step": item.step.key,
        "ladder": item.ladder,
        "invoices": [d.invoice.number for d in item.due],
        "contact": item.contact.id if item.contact else None,
        "channel": item.channel,
        "send_after": item.send_after.isoformat() if item.send_after else None,
        "auto_approve": item.auto_approve,
        "escalate_to": item.escalate_to,
        "reason": item.reason,
        "observe_only": item.observe_only,
        "message": parts if full else {key: _digest(value) for key, value in parts.items()},
    }


def _plan(plan: Plan, full: int) -> dict[str, Any]:
    """The plan, with the first `full` reminders' messages in full."""
    reminders = [item for item in plan.items if item.action == "remind"][:full]
    return {
        "items": [_item(item, item in reminders) for item in plan.items],
        "observed": [_item(item, False) for item in plan.observed],
        "held": [
            {"customer": h.customer.external_id, "invoices": h.invoices, "reason": h.reason}
            | ({"detail": h.detail} if h.detail else {})
            for h in plan.held
        ],
    }


@contextmanager
def _runtime(database_url: str, folder: Path) -> Iterator[Runtime]:
    settings = load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        business_name="Acme & Sons <Billing>",
        from_email="ar@acme.example",
        write_off={"USD": Decimal("5")},
    )
    runtime = start(settings, clock=FixedClock(NOW))
    try:
        with runtime.writing() as session:
            csv_path = write(folder / "golden-ledger.csv", ledger_rows())
            apply_batch(session, read_ledger_csv(csv_path), NOW)
            # A few invoices carry their source's own payment link; some links are so long that
            # a text carrying one is past its limit.
            session.execute(
                update(Invoice)
                .where(Invoice.number.like("INV-%3-0"))
                .values(payment_link="https://pay.example/i/" + Invoice.number)
            )
            session.execute(
                update(Invoice)
                .where(Invoice.number.like("INV-%7-0"))
                .values(payment_link="https://pay.example/" + "p" * 260 + "/" + Invoice.number)
            )
        yield runtime
    finally:
        runtime.close()


def plan_document(database_url: str, folder: Path) -> dict[str, Any]:
    """The plans of OFFSETS days and a 21-day forecast, as the golden file holds them."""
    document: dict[str, Any] = {}
    with _runtime(database_url, folder) as runtime:
        rules = PlanRules.from_settings(runtime.settings)
        for offset in OFFSETS:
            day = FIRST_DAY + timedelta(days=offset)
            now = NOW + timedelta(days=offset)
            with runtime.writing() as session:
                run = run_plan(session, rules, day, now, dry_run=True)
                session.rollback()
            document[f"dry run, day +{offset}"] = _plan(run.plan, IN_FULL if offset == 0 else 3)
        with runtime.writing() as session:
            stored = run_plan(session, rules, FIRST_DAY, NOW, dry_run=False)
        document["stored, day +0"] = _plan(stored.plan, 0)
        later = FIRST_DAY + timedelta(days=9)
        with runtime.writing() as session:
            run = run_plan(session, rules, later, NOW + timedelta(days=9), dry_run=True)
            session.rollback()
        document["dry run after the stored plan, day +9"] = _plan(run.plan, 3)
        with runtime.writing() as session:
            days = forecast(session, rules, FIRST_DAY + timedelta(days=1), 21)
            session.rollback()
        document["forecast"] = [
            [d.day.isoformat(), d.emails, d.sms, d.escalations, d.held] for d in days
        ]
    return document


def test_the_planner_renders_every_message_exactly_as_the_golden_file_holds(
    database_url: str, tmp_path: Path
) -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    actual = json.loads(json.dumps(plan_document(database_url, tmp_path)))
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key] == expected[key], key


def test_the_golden_ledger_covers_what_the_messages_vary_on() -> None:
    """The golden file is only worth its name if the plans in it vary: every channel, several
    currencies in one message, holds of several kinds, and messages kept in full."""
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    items = [item for key, plan in document.items() if key != "forecast" for item in plan["items"]]
    channels = {item["channel"] for item in items}
    assert {"email", "sms", None} <= channels
    assert {item["action"] for item in items} == {"remind", "escalate"}
    assert len({item["step"] for item in items}) >= 10
    full = [item["message"] for item in items if item["message"].get("text", "x" * 21)[20:]]
    assert any(" and " in m["sms"] + m["text"] and "€" in m["sms"] + m["text"] for m in full)
    reasons = {
        h["reason"] for plan in document.values() if isinstance(plan, dict) for h in plan["held"]
    }
    assert {"template_error", "no_contact", "below_write_off", "pending_approval"} <= reasons


def _one_entry_a_line(document: dict[str, Any]) -> str:
    """JSON with each reminder, hold and forecast day on a line of its own (a readable diff)."""

    def entries(values: list[Any]) -> str:
        return "[\n" + ",\n".join(json.dumps(v, ensure_ascii=False) for v in values) + "\n]"

    parts = []
    for key, value in document.items():
        if isinstance(value, list):
            parts.append(f"{json.dumps(key)}: {entries(value)}")
        else:
            inner = ",\n".join(f"{json.dumps(k)}: {entries(v)}" for k, v in value.items())
            parts.append(f"{json.dumps(key)}: {{\n{inner}\n}}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    assert json.loads(text) == document
    return text


if __name__ == "__main__":
    import tempfile

    url = sys.argv[1] if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as folder:
        if url is None:
            from bot.core import migrate
            from bot.core.db import make_engine

            url = f"sqlite:///{folder}/golden.db"
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(_one_entry_a_line(plan_document(url, Path(folder))), encoding="utf-8")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)")


def test_a_plan_written_in_parts_stores_every_reminder_as_planned(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored plan is written a part at a time: written in parts of 7, every reminder is
    stored once with its message, its invoices and steps, and its events, as planned."""
    from bot.planning import store

    monkeypatch.setattr(store, "WRITE_EVERY", 7)
    with _runtime(database_url, tmp_path) as runtime:
        rules = PlanRules.from_settings(runtime.settings)
        with runtime.writing() as session:
            run = run_plan(session, rules, FIRST_DAY, NOW, dry_run=False)
        with runtime.sessions() as session:
            reminders = {r.id: r for r in session.scalars(select(Reminder))}
            links = session.execute(
                select(ReminderInvoice.reminder_id, Invoice.number, ReminderInvoice.step_key)
                .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
                .order_by(ReminderInvoice.reminder_id, Invoice.number)
            ).all()
            events = session.execute(
                select(Event.reminder_id, Event.kind).where(Event.reminder_id.is_not(None))
            ).all()
    items = run.plan.items
    assert len(items) > 7 * 3 and len(reminders) == len(items) == len(run.reminder_ids)
    expected_links = []
    for item in items:
        stored = reminders[run.reminder_ids[item.customer.id]]
        assert (stored.customer_id, stored.step_key, stored.action, stored.channel) == (
            item.customer.id,
            item.step.key,
            item.action,
            item.channel,
        )
        message = item.message
        if message is not None:
            body = message.text if item.channel == "email" else message.sms
            assert stored.body_text == body
            assert stored.body_html == (message.html if item.channel == "email" else None)
        expected_links += [(stored.id, d.invoice.number, d.step.key) for d in item.due]
    assert sorted(links) == sorted(expected_links)
    escalations = sum(1 for item in items if item.action == "escalate")
    assert sorted(kind for _id, kind in events) == sorted(
        ["reminder.planned"] * len(items) + ["escalation.opened"] * escalations
    )
