"""`arbot status` history: each event in words, not its raw kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.ledger_files import row, write

NEW_PHONE = "+13125550177"


def test_status_says_a_consent_to_texts_was_withdrawn_and_why_when_the_phone_number_changed(
    cli: Any, tmp_path: Path
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()]))).code == 0
    # consent was given for the old number, and nothing is said for the new one
    moved = [row(phone=NEW_PHONE, sms_consent="")]
    assert cli("import-csv", str(write(tmp_path / "b.csv", moved))).code == 0
    given = [row(phone=NEW_PHONE, sms_consent="true")]
    assert cli("import-csv", str(write(tmp_path / "c.csv", given))).code == 0
    withdrawn = [row(phone=NEW_PHONE, sms_consent="no")]
    assert cli("import-csv", str(write(tmp_path / "d.csv", withdrawn))).code == 0

    history = cli("status", "C-1").stdout
    assert "contact.sms_consent_withdrawn" not in history
    assert "consent to texts withdrawn: the phone number changed (b.csv, new phone)" in history
    assert "consent to texts withdrawn (d.csv row 2)" in history
