"""/ar forecast and the payment habit in /ar status, through the real app with signed requests."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.forecasting.cash import Forecast, InvoiceForecast, Week
from bot.forecasting.model import Prediction
from integrations.slack_blocks import text_blocks
from integrations.slack_forecast import forecast_text
from tests.bot.forecasting.history_files import AS_OF, history_ledger
from tests.support.hostile import HOSTILE_TEXT
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def _told(slack_api: Any, user: str = "U0APPROVER") -> dict[str, Any]:
    """The forecast, posted after the ack (it learns from the whole ledger), to `user` alone."""
    return wait_for(
        lambda: next(
            (c for c in slack_api.calls("chat.postEphemeral") if c.get("user") == user), None
        )
    )


def test_ar_forecast_gives_the_weeks_per_currency_in_the_finance_channel(
    served: Any, cli: Any, tmp_path: Path, slack_api: Any
) -> None:
    history_ledger(tmp_path, cli)

    answer = served.command("forecast").json()
    told = _told(slack_api)

    assert answer["response_type"] == "ephemeral"
    assert "Working out the cash forecast" in answer["text"]
    assert told["channel"] == "C0FINANCE"
    text = told["text"]
    assert "*Expected cash in, as of 2026-03-16*" in text
    assert text.count("• week of ") == 13
    assert "• week of Mar 30: €" in text and " · $" in text  # each currency in its own column
    assert "1 of 3 open invoices are from customers with no payment history yet" in text
    blocks = json.loads(told["blocks"]) if isinstance(told["blocks"], str) else told["blocks"]
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks)


def test_ar_forecast_elsewhere_shows_no_amounts(
    served: Any, cli: Any, tmp_path: Path, slack_api: Any
) -> None:
    history_ledger(tmp_path, cli)

    served.command("forecast", user="U0MEMBER", channel="C0GENERAL")
    text = _told(slack_api, "U0MEMBER")["text"]

    assert "shown to approvers and in the finance channel only" in text
    assert "$" not in text and "€" not in text


def test_ar_status_says_how_the_customer_usually_pays(
    served: Any, cli: Any, tmp_path: Path
) -> None:
    history_ledger(tmp_path, cli)

    steady = served.command("status C-1").json()["text"]
    new = served.command("status C-3").json()["text"]

    assert "Pays: usually pays 10 days late (last 12 invoices)" in steady
    assert "Pays: no payment history yet" in new


def test_the_forecast_answer_stays_within_slacks_limits_with_long_hostile_names() -> None:
    hostile = HOSTILE_TEXT * 40
    prediction = Prediction(AS_OF, AS_OF, None, 0.5, "portfolio")
    invoices = [
        InvoiceForecast(hostile, hostile, hostile, "USD", Decimal(10**9), AS_OF, prediction)
        for _ in range(500)
    ]
    weeks = [Week(AS_OF, {c: Decimal(10**12) for c in ("USD", "EUR", "GBP", "JPY", "CAD")})] * 104
    text = forecast_text(Forecast(AS_OF, invoices, weeks), show_amounts=True)

    blocks = text_blocks(text)

    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks)
    assert "<!channel>" not in text and "<script>" not in text


def test_ar_forecast_on_a_ledger_with_no_payment_yet_says_so(
    served: Any, cli: Any, tmp_path: Path, slack_api: Any
) -> None:
    rows = [row(invoice_number="INV-9", due_date="2026-03-01")]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0

    served.command("forecast")
    text = _told(slack_api)["text"]

    assert "No invoice of this ledger has been paid yet" in text and "week of" not in text


def test_ar_forecast_share_posts_it_in_the_finance_channel(
    served: Any, cli: Any, tmp_path: Path, slack_api: Any
) -> None:
    history_ledger(tmp_path, cli)

    served.command("forecast share")
    posted = wait_for(lambda: slack_api.calls("chat.postMessage"))

    assert posted[0]["channel"] == "C0FINANCE"
    assert "• week of Mar 30: €" in posted[0]["text"]


def test_ar_forecast_reaches_the_person_in_a_channel_arbot_is_not_in(
    served: Any, cli: Any, tmp_path: Path, slack_api: Any
) -> None:
    history_ledger(tmp_path, cli)
    slack_api.fail_next("chat.postEphemeral", "not_in_channel")  # were it asked

    served.command(
        "forecast", channel="C0GENERAL", response_url=slack_api.response_url("C0GENERAL", "")
    )
    told = wait_for(lambda: slack_api.responses())[0]

    assert told["kind"] == "ephemeral" and told["status"] == 200
    assert "*Expected cash in, as of 2026-03-16*" in told["body"]["text"]  # an approver, privately
    assert told["body"]["blocks"]


def test_ar_forecast_share_in_a_direct_message_between_people_is_posted_there(
    served: Any, cli: Any, tmp_path: Path, slack_api: Any
) -> None:
    history_ledger(tmp_path, cli)
    slack_api.fail_next("chat.postMessage", "channel_not_found")  # were it asked

    served.command(
        "forecast share", channel="D0DM", response_url=slack_api.response_url("D0DM", "")
    )
    told = wait_for(lambda: slack_api.responses())[0]

    assert told["kind"] == "in_channel" and told["status"] == 200
    text = told["body"]["text"]
    assert "shown to approvers and in the finance channel only" in text and "$" not in text
