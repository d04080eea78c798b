"""A reply from a person is always labelled before it is stored: handle_email and handle_sms take
the triage worked out outside the write transaction, and refuse a person's reply without one."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.models import InboundMessage
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.replies.email import email_needs_triage, handle_email
from bot.replies.match import ReplyRules
from bot.replies.sms import handle_sms, sms_needs_triage
from integrations.csv_ledger import read_ledger_csv
from integrations.email_in import parse
from tests.support.ledger_files import row, write


def _ledger(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.writing() as session:
        rows = read_ledger_csv(write(tmp_path / "l.csv", [row()]))
        apply_batch(session, rows, runtime.clock.now())


def _stored(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(InboundMessage)) or 0


def test_a_persons_email_without_its_triage_is_refused_and_nothing_is_stored(
    runtime: Runtime, tmp_path: Path
) -> None:
    _ledger(runtime, tmp_path)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Message-ID"] = "ap@ridgeline.example", "ar@b.example", "<1@r>"
    mail.set_content("We will pay on Friday.")
    reply = parse(mail.as_bytes())
    assert email_needs_triage(reply)

    with pytest.raises(ValueError, match="needs its triage"), runtime.writing() as session:
        handle_email(session, reply, "", runtime.clock.now(), ReplyRules("k" * 32), None)
    assert _stored(runtime) == 0


def test_a_persons_text_without_its_triage_is_refused_but_a_keyword_needs_none(
    runtime: Runtime, tmp_path: Path
) -> None:
    _ledger(runtime, tmp_path)
    rules, now = ReplyRules("k" * 32), runtime.clock.now()
    assert not sms_needs_triage("STOP") and sms_needs_triage("paying Friday")

    with pytest.raises(ValueError, match="needs its triage"), runtime.writing() as session:
        handle_sms(session, "+13125550142", "paying Friday", "SM1", now, rules, None, "Acme")
    with runtime.writing() as session:
        result = handle_sms(session, "+13125550142", "STOP", "SM2", now, rules, None, "Acme")
    assert result.outcome == "opt_out" and _stored(runtime) == 1
