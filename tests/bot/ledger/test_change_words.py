"""The words for what the ledger changed, shared by `arbot status` and the escalation thread."""

from __future__ import annotations

from bot.ledger.change_words import PHONE_CHANGED, ledger_change


def minute(instant: str) -> str:
    return f"<{instant}>"


def test_amounts_are_written_to_their_currencys_places() -> None:
    payload = {"number": "INV-1", "currency": "JPY", "total_before": "5000.0000"}
    payload["total_after"] = "6000.0000"
    assert ledger_change("invoice.total_changed", payload, minute) == "INV-1 total 5000 → 6000 JPY"


def test_an_event_without_its_amounts_still_reads() -> None:
    payload = {"number": "INV-1", "currency": "USD"}
    assert ledger_change("invoice.balance_changed", payload, minute) == "INV-1 balance changed"


def test_instants_are_written_by_the_callers_minute_and_other_kinds_are_not_worded() -> None:
    payload = {"number": "INV-1", "paid_before": None, "paid_after": "2026-02-20T05:00:00+00:00"}
    assert (
        ledger_change("invoice.paid_at_changed", payload, minute)
        == "INV-1 paid at <2026-02-20T05:00:00+00:00>"
    )
    dropped = {"reason": PHONE_CHANGED, "source": "b.csv, new phone"}
    assert (
        ledger_change("contact.sms_consent_withdrawn", dropped, minute)
        == "consent to texts withdrawn: the phone number changed (b.csv, new phone)"
    )
    assert ledger_change("invoice.paid", {"number": "INV-1"}, minute) is None


def test_an_invoice_restored_says_it_is_back_in_its_source_and_how() -> None:
    payload = {
        "number": "1038",
        "currency": "USD",
        "balance_before": "85.0000",
        "balance_after": "85.00",
        "status_after": "open",
        "source": "quickbooks",
    }
    assert (
        ledger_change("invoice.restored", payload, minute)
        == "1038 restored, back in quickbooks after being voided as deleted: open, 85.00 USD owed"
    )
    paid = {**payload, "balance_after": "0.00", "status_after": "paid"}
    assert ledger_change("invoice.restored", paid, minute) == (
        "1038 restored, back in quickbooks after being voided as deleted: paid"
    )
