"""A refusal Twilio gives for one destination (its country or region not enabled for the account)
fails that one text with the reason a person needs, and the other texts go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Contact, Escalation, Reminder
from bot.core.runtime import Runtime
from integrations.base.outbound import Outgoing
from integrations.twilio_sms import TwilioSender
from tests.handlers.webhooks.test_sms_and_webhooks import TODAY, sms_env, twilio
from tests.support.fake_twilio import SID, TOKEN, FakeTwilio
from tests.support.ledger_files import row, write

__all__ = ["sms_env", "twilio"]  # fixtures

REGION = (
    "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"
)


def test_a_text_to_a_region_not_enabled_fails_alone_and_the_other_texts_go(
    sms_env: Any, runtime: Runtime, twilio: FakeTwilio, tmp_path: Path
) -> None:
    rows = [
        row(
            customer_id=f"C-{i}",
            customer_name=f"Customer {i}",
            invoice_number=f"INV-{i}",
            tier="transactional",
            phone=f"+1312555014{i}",
            sms_consent="true",
            issue_date="2026-01-01",
            due_date=TODAY.isoformat(),
        )
        for i in (1, 2, 3)
    ]
    assert sms_env("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    assert sms_env("plan").code == 0
    twilio.errors["+13125550141"] = (400, 21408, REGION)
    result = sms_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 2" in result.stdout and "failed 1" in result.stdout
    assert sorted(m["To"] for m in twilio.messages) == ["+13125550142", "+13125550143"]
    with runtime.sessions() as session:
        failed = session.scalars(select(Reminder).where(Reminder.state == "failed")).one()
        contacts = session.scalars(select(Contact)).all()
        escalation = session.scalars(select(Escalation)).one()
    assert failed.customer_id == escalation.customer_id
    assert "21408" in (failed.error or "") and "Geo permissions" in (failed.error or "")
    assert all(c.sms_unusable_at is None for c in contacts)  # the number itself is fine
    assert escalation.reason == "send_failed" and "Geo permissions" in (escalation.detail or "")
    again = sms_env("send")
    assert again.code == 0 and "Sent 0" in again.stdout
    assert len(twilio.messages) == 2


@pytest.mark.parametrize("url", ["api.twilio.com", "http://[::1"])
def test_a_twilio_url_that_cannot_be_used_sends_nothing_and_stops_the_run(url: str) -> None:
    """Such a URL never leaves: the text is not `unknown` (nothing went), and no try is lost."""
    text = Outgoing(1, "sms", "+13125550142", None, None, "B", None, "Hi. Reply STOP.", *[None] * 5)
    with TwilioSender(url, SID, TOKEN, "+13125550000", None) as sender:
        delivery = sender.send(text)
    assert delivery.status == "outage"
    assert "TWILIO_API_URL" in (delivery.error or "")
