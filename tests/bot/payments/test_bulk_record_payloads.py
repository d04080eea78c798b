"""An event's payload written by a bank file's bulk path is the very text json.dumps makes of it,
as the one-at-a-time path stores it."""

from __future__ import annotations

import json

import pytest

from bot.payments.bulk_record import _payload_text


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"reference": None},
        {"number": "INV-1001", "currency": "EUR", "amount": "10.50", "payment": "bank:TX-1"},
        {"reference": 'Zahlung für "Müller & Co."\t\\ #1001\n', "payer": "株式会社 ✓ \U0001f600"},
        {"reference": "\x00\x1f\x7f\u2028"},
    ],
)
def test_a_payloads_text_is_json_dumps_text(payload: dict[str, str | None]) -> None:
    assert _payload_text(payload) == json.dumps(payload)
