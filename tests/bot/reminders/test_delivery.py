"""Twilio's delivery reports against the send loop: a lane stores its results a few at a time, so a
report that a text failed can come while the text is still `sending`; it is kept, a person is told
as for a later report, and the lane's own result does not turn it back into `sent`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.core.models import Contact, Escalation, Event, Reminder
from bot.core.runtime import Runtime
from bot.reminders.delivery import sms_status
from bot.reminders.outbox import FlushReport
from integrations.base.outbound import Delivery, Outgoing
from tests.bot.reminders.test_outbox import _sender_env, approved, mail_env, smtp, states
from tests.bot.reminders.test_stops_while_sending import Sender

__all__ = ["mail_env", "smtp"]  # fixtures


def texts_approved(cli: Any, runtime: Runtime, tmp_path: Path, customers: int) -> None:
    approved(cli, runtime, tmp_path, customers, phone="+13125550142", sms_consent="true")
    with runtime.writing() as session:
        session.execute(update(Reminder).values(channel="sms"))


def send_texts(runtime: Runtime, database_url: str, sender: Sender) -> FlushReport:
    from bot.reminders.sending import flush

    worker = _sender_env(runtime, database_url)
    try:
        return flush(worker, {"sms": sender})
    finally:
        worker.close()


def test_a_failure_report_before_the_lane_stores_its_result_fails_the_text_and_tells_a_person(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Twilio says text 1 went undelivered (30006: a landline) while text 2 is handed over, before
    the lane has committed text 1's `sent`."""
    texts_approved(mail_env, runtime, tmp_path, customers=2)

    def answer(message: Outgoing, count: int) -> Delivery:
        if count == 2:
            assert states(runtime)[1] == "sending"  # its `sent` waits for the next commit
            with runtime.writing() as session:
                found = sms_status(
                    session, "SM-1", "undelivered", "30006", runtime.clock.now(), reminder_id=1
                )
            assert found == 1
        return Delivery("sent", provider_id=f"SM-{message.reminder_id}")

    sender = Sender(answer)
    report = send_texts(runtime, database_url, sender)

    assert sender.handed == [1, 2]
    assert report.sent == [2]
    assert states(runtime) == {1: "failed", 2: "sent"}
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        kinds = session.scalars(select(Event.kind).where(Event.reminder_id == 1)).all()
        escalations = session.execute(select(Escalation.customer_id, Escalation.reason)).all()
        unusable = session.scalars(select(Contact.sms_unusable_at).where(Contact.customer_id == 1))
        assert unusable.one() is not None
    assert reminder is not None and reminder.error == "Twilio undelivered 30006"
    assert "reminder.sent" not in kinds
    assert kinds.count("reminder.failed") == 1 and "escalation.opened" in kinds
    assert escalations == [(1, "send_failed")]
