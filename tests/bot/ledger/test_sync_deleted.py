"""An invoice deleted in QuickBooks (entered by mistake) ends its follow-up: the next sync finds the
deletion through QuickBooks' change data capture and voids the invoice, cancelling what waits."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Event, Invoice, Reminder, SyncState
from bot.core.runtime import Runtime
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.base.ledger import Tokens
from integrations.oauth import MemoryTokenStore
from integrations.oauth import quickbooks_provider as provider
from integrations.oauth_client import OAuthClient
from integrations.quickbooks import QuickBooksSource
from integrations.wiring import slack_for
from scheduler.jobs import sync_connected
from tests.bot.ledger import test_sync_failures
from tests.bot.ledger.test_sync import _connect, _rt, qb  # noqa: F401 (qb is a fixture)
from tests.conftest import NOW
from tests.support.fake_quickbooks import (
    CLIENT_ID,
    CLIENT_SECRET,
    REALM,
    FakeQuickBooks,
    deleted,
    invoice,
)

connected = test_sync_failures.connected  # a runtime with QuickBooks connected and Slack


def test_an_invoice_deleted_in_quickbooks_is_voided_and_its_waiting_reminder_cancelled(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    qb: FakeQuickBooks,  # noqa: F811
    database_url: str,
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    rt = _rt(database_url)
    try:  # today's plan writes to Bill about 1038
        with rt.writing() as session:
            rules = PlanRules.from_settings(rt.settings)
            run_plan(session, rules, date(2026, 3, 16), rt.clock.now(), False)
    finally:
        rt.close()
    # 1038 was entered by mistake and is deleted in QuickBooks
    gone = qb.invoices.pop(1)
    qb.deleted_invoices.append(deleted(gone, updated="2026-03-16T07:10:00-07:00"))
    monkeypatch.setattr("tests.support.fake_quickbooks.SERVER_TIME", "2026-03-16T07:20:00-07:00")
    synced = cli("sync")
    assert synced.code == 0, synced.stderr
    assert "1 changed (0 paid, 1 voided, 0 reopened)" in synced.stdout
    assert "1 waiting reminder(s) cancelled" in synced.stdout
    # the deletion is told once: a sync after it changes nothing
    monkeypatch.setattr("tests.support.fake_quickbooks.SERVER_TIME", "2026-03-16T07:40:00-07:00")
    again = cli("sync")
    assert again.code == 0, again.stderr
    assert "0 new invoice(s), 0 changed" in again.stdout
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            statuses = {
                number: status
                for number, status in session.execute(select(Invoice.number, Invoice.status))
            }
            reminders = session.execute(
                select(Reminder.state, Reminder.cancel_reason)
                .join(Invoice, Invoice.customer_id == Reminder.customer_id)
                .where(Invoice.number == "1038")
            ).all()
            voided = session.scalars(
                select(Event.payload).where(Event.kind == "invoice.voided")
            ).all()
    finally:
        rt.close()
    assert statuses == {"1037": "open", "1038": "void"}
    assert reminders == [("cancelled", "voided")]
    assert [(p["number"], p.get("deleted")) for p in voided] == [("1038", True)]


@pytest.mark.parametrize(
    ("cursor", "asked"),
    [("2026-03-16T13:00:00+00:00", True), ("2026-02-01T00:00:00+00:00", False)],
)
def test_deletions_are_asked_of_change_data_capture_within_its_reach_else_all_is_fetched(
    clock: FixedClock, cursor: str, asked: bool
) -> None:
    fake = FakeQuickBooks().start()
    try:
        fake.deleted_invoices.append(deleted({"Id": "131"}, updated="2026-03-16T07:10:00-07:00"))
        tokens = Tokens("qb-access-0", "qb-refresh-0", NOW + timedelta(hours=1), REALM)
        client = OAuthClient(
            provider(CLIENT_ID, CLIENT_SECRET, token_endpoint=fake.token_url),
            MemoryTokenStore({"quickbooks": tokens}),
            clock.now,
        )
        source = QuickBooksSource(client, REALM, api_url=fake.url)
        full = source.fetch_since(None)
        assert (full.complete, full.deleted_invoices) == (True, [])
        batch = source.fetch_since(cursor)
        assert (batch.complete, batch.deleted_invoices) == (not asked, ["131"] if asked else [])
        assert len(fake.api_calls("/cdc")) == (1 if asked else 0)
        if not asked:  # a month without a sync: every invoice is asked for again
            assert all("WHERE" not in query for query in fake.queries())
    finally:
        fake.stop()


def test_a_full_sync_voids_what_quickbooks_no_longer_has_but_not_what_it_skipped(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    qb: FakeQuickBooks,  # noqa: F811
    database_url: str,
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    # arbot does not sync for over a month; meanwhile 1038 is deleted, and 1037 loses its due date
    del qb.invoices[1]
    qb.invoices[0] = {**qb.invoices[0], "DueDate": None}
    rt = _rt(database_url)
    try:
        with rt.writing() as session:
            state = session.get(SyncState, "quickbooks")
            assert state is not None
            state.cursor = "2026-02-01T00:00:00+00:00"
    finally:
        rt.close()
    synced = cli("sync")
    assert synced.code == 0, synced.stderr
    assert "skipped invoice 130" in synced.stderr
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            statuses = {
                number: status
                for number, status in session.execute(select(Invoice.number, Invoice.status))
            }
    finally:
        rt.close()
    assert statuses == {"1037": "open", "1038": "void"}


def _statuses(runtime: Runtime) -> dict[str, str]:
    with runtime.sessions() as session:
        return {
            number: status
            for number, status in session.execute(select(Invoice.number, Invoice.status))
        }


def _last_synced_a_month_ago(runtime: Runtime) -> None:
    """No sync for over a month: the next one fetches every invoice (a full sync)."""
    with runtime.writing() as session:
        state = session.get(SyncState, "quickbooks")
        assert state is not None
        state.cursor = "2026-02-01T00:00:00+00:00"


def _told(slack_api: Any) -> list[str]:
    return [str(c["text"]) for c in slack_api.calls("chat.postMessage") if "lacked" in c["text"]]


def test_a_full_sync_lacking_most_invoices_voids_none_tells_the_channel_once_and_checks_again(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
    slack_api: Any,
    clock: FixedClock,
) -> None:
    qb.invoices = [
        invoice(str(130 + n), str(1 + n % 2), str(1037 + n), 100.0, 100.0, due="2026-03-09")
        for n in range(12)
    ]
    slack = slack_for(connected.settings)
    assert sync_connected(connected, slack) == "quickbooks: 12 new, 0 changed"
    _last_synced_a_month_ago(connected)
    every = qb.invoices
    qb.invoices = every[:1]  # QuickBooks' answer stops after its first invoice
    for _ in range(2):
        asked = len(qb.queries())
        sync_connected(connected, slack)
        # each sync fetches everything again, to check again
        assert all("WHERE" not in query for query in qb.queries()[asked:])
        clock.advance(timedelta(hours=1))
    assert set(_statuses(connected).values()) == {"open"}
    told = _told(slack_api)
    assert len(told) == 1, told
    assert "11 of the 12" in told[0] and f"QuickBooks company {REALM}" in told[0]
    assert "arbot connect quickbooks" in told[0]
    with connected.sessions() as session:
        state = session.get(SyncState, "quickbooks")
        assert state is not None and state.summary["voids_held"] == 11
        kinds = session.scalars(select(Event.kind).where(Event.kind.like("sync.voids_%"))).all()
    assert kinds == ["sync.voids_held"]
    # QuickBooks answers in full again: only the invoice deleted there meanwhile is voided
    qb.invoices = every[:-1]
    sync_connected(connected, slack)
    statuses = _statuses(connected)
    assert statuses.pop("1048") == "void" and set(statuses.values()) == {"open"}
    told = _told(slack_api)
    assert len(told) == 2 and "answers in full again" in told[1], told


def test_an_empty_full_answer_voids_nothing_however_few_invoices_are_stored(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
    slack_api: Any,
) -> None:
    slack = slack_for(connected.settings)
    sync_connected(connected, slack)
    _last_synced_a_month_ago(connected)
    qb.invoices = []
    sync_connected(connected, slack)
    assert _statuses(connected) == {"1037": "open", "1038": "open"}
    assert len(_told(slack_api)) == 1


def test_a_paid_invoice_quickbooks_no_longer_has_stays_paid(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
) -> None:
    qb.invoices.append(invoice("132", "2", "1039", 40.0, 0.0, due="2026-03-09"))
    sync_connected(connected, None)
    _last_synced_a_month_ago(connected)
    qb.invoices = qb.invoices[:1]  # 1038 (open) and 1039 (paid) were deleted there
    sync_connected(connected, None)
    assert _statuses(connected) == {"1037": "open", "1038": "void", "1039": "paid"}


def test_arbot_sync_says_it_voided_none_of_the_invoices_quickbooks_lacked(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    qb: FakeQuickBooks,  # noqa: F811
    database_url: str,
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    rt = _rt(database_url)
    try:
        _last_synced_a_month_ago(rt)
    finally:
        rt.close()
    qb.invoices = []
    synced = cli("sync")
    assert synced.code == 0, synced.stderr
    assert "lacked 2 open invoice(s) (1037, 1038): none was voided" in synced.stderr
    assert "arbot connect quickbooks" in synced.stderr


def test_an_invoice_voided_as_lacking_that_quickbooks_returns_again_is_restored_at_the_next_sync(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    qb: FakeQuickBooks,  # noqa: F811
    database_url: str,
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    rt = _rt(database_url)
    try:
        _last_synced_a_month_ago(rt)
    finally:
        rt.close()
    every = qb.invoices
    qb.invoices = every[:1]  # a full answer that lacks 1038, unchanged in QuickBooks
    assert "1 voided" in cli("sync").stdout
    qb.invoices = every  # QuickBooks has it again (it never changed there)
    synced = cli("sync")
    assert synced.code == 0, synced.stderr
    assert "restored 1 invoice(s) voided as no longer in QuickBooks: 1038" in synced.stdout
    rt = _rt(database_url)
    try:
        assert _statuses(rt) == {"1037": "open", "1038": "open"}
        with rt.sessions() as session:
            restored = session.scalars(
                select(Event.payload).where(Event.kind == "invoice.restored")
            ).all()
    finally:
        rt.close()
    assert [(p["number"], p["status_after"], p["balance_after"]) for p in restored] == [
        ("1038", "open", "85.00")
    ]
    again = cli("sync")  # told once
    assert "restored" not in again.stdout and "0 changed" in again.stdout


def test_another_company_answering_voids_none_of_a_small_book(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
    slack_api: Any,
) -> None:
    qb.invoices = [
        invoice(str(130 + n), str(1 + n % 2), str(1037 + n), 100.0, 100.0, due="2026-03-09")
        for n in range(8)
    ]
    slack = slack_for(connected.settings)
    assert sync_connected(connected, slack) == "quickbooks: 8 new, 0 changed"
    _last_synced_a_month_ago(connected)
    # another company: three invoices of its own, none of the eight
    qb.invoices = [
        invoice(str(900 + n), str(1 + n % 2), str(5001 + n), 50.0, 50.0, due="2026-03-09")
        for n in range(3)
    ]
    sync_connected(connected, slack)
    statuses = _statuses(connected)
    assert [statuses[str(1037 + n)] for n in range(8)] == ["open"] * 8
    told = _told(slack_api)
    assert len(told) == 1 and "lacked 8 of the" in told[0], told


def test_a_full_answer_lacking_more_than_half_of_a_small_book_voids_none_of_them(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
) -> None:
    qb.invoices = [
        invoice(str(130 + n), str(1 + n % 2), str(1037 + n), 100.0, 100.0, due="2026-03-09")
        for n in range(8)
    ]
    sync_connected(connected, None)
    _last_synced_a_month_ago(connected)
    every = qb.invoices
    qb.invoices = every[:3]  # lacks five of the eight
    sync_connected(connected, None)
    assert set(_statuses(connected).values()) == {"open"}
    qb.invoices = every[:4]  # lacks four of the eight: half is taken as deleted
    sync_connected(connected, None)
    statuses = _statuses(connected)
    assert [statuses[str(1037 + n)] for n in range(8)] == ["open"] * 4 + ["void"] * 4


def test_the_one_open_invoice_of_a_small_book_deleted_in_quickbooks_is_voided_at_a_full_sync(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
) -> None:
    qb.invoices = [
        invoice("130", "1", "1037", 100.0, 100.0, due="2026-03-09"),
        invoice("131", "2", "1038", 100.0, 0.0, due="2026-03-09"),
        invoice("132", "1", "1039", 100.0, 0.0, due="2026-03-09"),
    ]
    sync_connected(connected, None)
    _last_synced_a_month_ago(connected)
    qb.invoices = qb.invoices[1:]  # 1037, the only open one, deleted during the month
    sync_connected(connected, None)
    assert _statuses(connected) == {"1037": "void", "1038": "paid", "1039": "paid"}


def test_two_open_invoices_lacking_are_voided_but_three_are_held(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
) -> None:
    qb.invoices = [
        invoice(str(130 + n), "1", str(1037 + n), 100.0, 100.0, due="2026-03-09") for n in range(3)
    ] + [invoice("140", "2", "1047", 100.0, 0.0, due="2026-03-09")]
    sync_connected(connected, None)
    _last_synced_a_month_ago(connected)
    every = qb.invoices
    qb.invoices = every[3:]  # lacks all three open ones: held
    sync_connected(connected, None)
    assert set(_statuses(connected).values()) == {"open", "paid"}
    qb.invoices = every[2:]  # lacks two of the three: never too many to be deletions
    sync_connected(connected, None)
    assert _statuses(connected) == {"1037": "void", "1038": "void", "1039": "open", "1047": "paid"}


def test_the_channel_told_of_held_voids_is_told_what_to_do_if_they_really_are_gone(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
    slack_api: Any,
) -> None:
    qb.invoices = [
        invoice(str(130 + n), "1", str(1037 + n), 100.0, 100.0, due="2026-03-09") for n in range(4)
    ]
    slack = slack_for(connected.settings)
    sync_connected(connected, slack)
    _last_synced_a_month_ago(connected)
    qb.invoices = qb.invoices[:1]
    sync_connected(connected, slack)
    told = _told(slack_api)
    assert len(told) == 1 and "lacked 3 of the 4" in told[0], told
    assert "really were deleted" in told[0] and "/ar pause" in told[0], told


def _numbered(runtime: Runtime, *external_ids: str) -> dict[str, tuple[str, str]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(Invoice.external_id, Invoice.number, Invoice.status).where(
                Invoice.external_id.in_(external_ids)
            )
        )
        return {external_id: (number, status) for external_id, number, status in rows}


def test_an_invoice_renumbered_to_the_number_of_one_deleted_takes_it_in_the_same_full_sync(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
) -> None:
    qb.invoices = [
        invoice(str(130 + n), "1", str(1037 + n), 100.0, 100.0, due="2026-03-09") for n in range(20)
    ]
    sync_connected(connected, None)
    _last_synced_a_month_ago(connected)
    # during the month, 1037 (Id 130) was deleted and 1039 (Id 132) renumbered 1037
    qb.invoices = [each for each in qb.invoices if each["Id"] != "130"]
    next(each for each in qb.invoices if each["Id"] == "132")["DocNumber"] = "1037"
    sync_connected(connected, None)
    assert _numbered(connected, "130", "132") == {
        "130": ("1037 (deleted, id 130)", "void"),
        "132": ("1037", "open"),
    }
    with connected.sessions() as session:
        state = session.get(SyncState, "quickbooks")
        assert state is not None and not (state.summary or {}).get("problems")


def test_an_invoice_lacking_whose_void_is_held_keeps_its_number(
    connected: Runtime,
    qb: FakeQuickBooks,  # noqa: F811
) -> None:
    qb.invoices = [
        invoice(str(130 + n), "1", str(1037 + n), 100.0, 100.0, due="2026-03-09") for n in range(4)
    ]
    sync_connected(connected, None)
    _last_synced_a_month_ago(connected)
    # an answer lacking three of the four, its one invoice numbered as one it lacks
    qb.invoices = [invoice("133", "1", "1037", 100.0, 100.0, due="2026-03-09")]
    sync_connected(connected, None)
    assert _numbered(connected, "130", "133") == {
        "130": ("1037", "open"),
        "133": ("1040", "open"),
    }
