"""The outcomes report: charts are real PNGs of a fixed size, the folder holds them and a page
that escapes what it shows and loads nothing from outside, and the Slack post uploads the charts
through Slack's external upload flow with the summary beside them."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.core.errors import UserError
from bot.core.models import Event
from bot.core.money import known_currencies
from bot.core.runtime import Runtime
from bot.learning.metrics import WeekMetrics
from bot.learning.report import (
    MAX_SLACK_FILES,
    MAX_SLACK_TEXT,
    MAX_WEEKS,
    build_report,
    post_report,
    report_text,
    write_report,
)
from tests.bot.learning.test_outcomes import FEB, TODAY, ZONE, Ledger, at

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chart_size() -> tuple[int, int]:
    """The fixed width and height of every chart (matplotlib is imported only where one is drawn)."""
    from bot.learning.charts import HEIGHT, WIDTH

    return WIDTH, HEIGHT


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def week(last_day: date, usd_90: str, dso: str | None, collected: str) -> WeekMetrics:
    buckets = dict.fromkeys(("current", "1-30", "31-60", "61-90", "90+"), Decimal(0))
    buckets["90+"] = Decimal(usd_90)
    buckets["current"] = Decimal("100.00")
    return WeekMetrics(
        first_day=last_day,
        last_day=last_day,
        aging={"USD": buckets},
        dso={"USD": Decimal(dso) if dso else None},
        collected={"USD": Decimal(collected)},
        reached_30=0,
        paid_by_30=0,
    )


WEEKS = [
    week(date(2026, 3, 1), "500.00", "40.5", "1200.00"),
    week(date(2026, 3, 8), "700.00", None, "0"),
    week(date(2026, 3, 15), "650.00", "38.0", "-50.00"),  # a refund outweighed the payments
]


@pytest.mark.slow  # matplotlib renders each chart
@pytest.mark.parametrize(
    "name",
    ["aging", "dso", "cash"],
)
def test_each_chart_is_a_png_of_the_fixed_size_that_shows_its_data(name: str) -> None:
    from bot.learning.charts import aging_chart, cash_chart, dso_chart

    draw: Any = {
        "aging": lambda weeks: aging_chart(weeks, "USD"),
        "dso": dso_chart,
        "cash": lambda weeks: cash_chart(weeks, "USD"),
    }[name]
    drawn = draw(WEEKS)
    assert png_size(drawn) == chart_size()
    assert len(drawn) > 10_000  # axes, labels and bars, not an empty canvas
    assert draw(WEEKS) == drawn  # the same figures give the same bytes
    assert draw(WEEKS[:2]) != drawn
    assert png_size(draw([])) == chart_size()


def small_ledger(runtime: Runtime, step: str = "plus7") -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    paid = ledger.invoice(acme, "1200.00", issued=date(2026, 1, 2), due=FEB)
    ledger.invoice(acme, "300.00", issued=date(2026, 2, 20), due=date(2026, 3, 20))
    ledger.touch(acme, [paid], at(date(2026, 2, 8)), step=step)
    ledger.pay(paid, "1200.00", date(2026, 2, 12))
    euro = ledger.customer("strategic")
    owed = ledger.invoice(euro, "900.00", issued=date(2026, 1, 10), due=FEB, currency="EUR")
    ledger.touch(euro, [owed], at(date(2026, 2, 4)), step="gentle")


@pytest.mark.slow
def test_write_report_writes_the_charts_and_an_escaped_self_contained_page(
    runtime: Runtime, tmp_path: Path
) -> None:
    small_ledger(runtime, step="<b>plus7</b>")
    out = tmp_path / "report" / "march"
    with runtime.sessions() as session:
        written = write_report(session, TODAY, out, timezone=ZONE)

    names = [p.name for p in written]
    assert names == [
        "dso.png",
        "forecast-EUR.png",
        "forecast-USD.png",
        "aging-EUR.png",
        "cash-EUR.png",
        "aging-USD.png",
        "cash-USD.png",
        "index.html",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no partial files left
    for path in written[:-1]:
        assert png_size(path.read_bytes()) == chart_size()
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in names[:-1]:
        assert f'<img src="{name}"' in page
    assert "&lt;b&gt;plus7&lt;/b&gt;" in page and "<b>plus7" not in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "$1,200.00" in page  # collected after the plus7 touch
    assert "€900.00" in page  # the EUR invoice, open
    assert "Cash expected in the coming weeks" in page and "Expected cash in, week by week" in page


@pytest.mark.slow  # a ledger is recorded and its report built
def test_write_report_into_a_file_instead_of_a_folder_says_so_and_writes_nothing(
    runtime: Runtime, tmp_path: Path
) -> None:
    small_ledger(runtime)
    place = tmp_path / "reports"
    place.mkdir()
    target = place / "report.html"
    target.write_text("mine", encoding="utf-8")
    with runtime.sessions() as session, pytest.raises(UserError, match="is a file"):
        write_report(session, TODAY, target, timezone=ZONE)
    assert target.read_text(encoding="utf-8") == "mine"
    assert [p.name for p in place.iterdir()] == ["report.html"]


def test_the_slack_summary_gives_the_figures_and_stays_within_one_section(
    runtime: Runtime,
) -> None:
    small_ledger(runtime)
    with runtime.sessions() as session:
        report = build_report(session, TODAY, timezone=ZONE, weeks=12)
    text = report_text(report)
    assert text.startswith("*Collections report*, weeks to Sun 15 Mar 2026")
    assert "• *USD*: $300.00 open, $0.00 overdue" in text
    assert "• *EUR*: €900.00 open, €900.00 overdue" in text
    assert "$1,200.00 in 12 weeks" in text
    assert "*Touches* 22 Dec to 15 Mar: 2 (paid 1, nothing 1)" in text
    assert "• standard · plus7 (+7) · email: 1 sent, 100.0% paid within 14 days" in text
    assert len(text) <= MAX_SLACK_TEXT

    many = sorted(known_currencies())[:120]  # more currencies than a message has room for
    crowded = replace(
        report,
        weeks=[
            replace(
                w,
                aging={code: w.aging["USD"] for code in many},
                dso=dict.fromkeys(many, Decimal("12.5")),
                collected=dict.fromkeys(many, Decimal(1)),
            )
            for w in report.weeks
        ],
    )
    assert len(report_text(crowded)) <= MAX_SLACK_TEXT
    assert report_text(crowded).endswith("…")


@pytest.mark.slow
def test_post_report_uploads_the_charts_through_slack_and_posts_the_summary(
    runtime: Runtime, slack_api: Any
) -> None:
    small_ledger(runtime)
    client = WebClient(token="xoxb-test", base_url=slack_api.url, timeout=5)

    post_report(runtime, client, "C0FINANCE", TODAY, weeks=12)

    asked = slack_api.calls("files.getUploadURLExternal")
    assert [c["filename"] for c in asked] == [
        "dso.png",
        "forecast-EUR.png",
        "forecast-USD.png",
        "aging-EUR.png",
        "cash-EUR.png",
        "aging-USD.png",
        "cash-USD.png",
    ]
    uploaded = slack_api.files
    assert len(uploaded) == 7
    for entry in uploaded.values():
        assert entry["data"] is not None and entry["data"][:8] == PNG_SIGNATURE
        assert len(entry["data"]) == entry["length"] > 10_000
    completed = slack_api.calls("files.completeUploadExternal")
    assert len(completed) == 1
    assert completed[0]["channel_id"] == "C0FINANCE"
    assert [f["id"] for f in json.loads(completed[0]["files"])] == sorted(uploaded)
    with runtime.sessions() as session:
        summary = report_text(build_report(session, TODAY, timezone=ZONE, weeks=12))
        logged = session.scalars(select(Event).where(Event.kind == "report.posted")).all()
    assert completed[0]["initial_comment"] == summary
    (message,) = slack_api.messages.values()
    assert message["channel"] == "C0FINANCE" and message["text"] == summary
    assert [f["name"] for f in message["files"]] == [c["filename"] for c in asked]
    assert [e.payload["channel"] for e in logged] == ["C0FINANCE"]


@pytest.mark.slow
def test_a_refused_upload_posts_nothing_and_logs_nothing(runtime: Runtime, slack_api: Any) -> None:
    from slack_sdk.errors import SlackApiError

    small_ledger(runtime)
    client = WebClient(token="xoxb-test", base_url=slack_api.url, timeout=5)
    slack_api.fail_next("files.completeUploadExternal", "not_in_channel")
    with pytest.raises(SlackApiError):
        post_report(runtime, client, "C0FINANCE", TODAY)
    assert slack_api.messages == {}
    with runtime.sessions() as session:
        assert session.scalars(select(Event).where(Event.kind == "report.posted")).all() == []


@pytest.mark.slow
def test_a_report_with_many_currencies_posts_ten_charts_and_the_folder_keeps_them_all(
    runtime: Runtime, slack_api: Any, tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("charts are drawn the same from either database: one is enough")
    ledger = Ledger(runtime)
    acme = ledger.customer()
    for code in ("AUD", "CAD", "CHF", "EUR", "GBP", "USD"):
        ledger.invoice(
            acme, "100.00", issued=date(2026, 3, 1), due=date(2026, 3, 31), currency=code
        )
    client = WebClient(token="xoxb-test", base_url=slack_api.url, timeout=5)
    post_report(runtime, client, "C0FINANCE", TODAY)
    with runtime.sessions() as session:
        written = write_report(session, TODAY, tmp_path / "out", timezone=ZONE)

    assert len(written) == 1 + 3 * 6 + 1  # DSO, three per currency, the page
    posted = [c["filename"] for c in slack_api.calls("files.getUploadURLExternal")]
    assert posted == [p.name for p in written[:MAX_SLACK_FILES]]


@pytest.mark.parametrize("weeks", [0, MAX_WEEKS + 1])
def test_a_report_of_no_weeks_or_too_many_is_refused_with_the_range(
    runtime: Runtime, weeks: int
) -> None:
    with runtime.sessions() as session, pytest.raises(UserError, match=f"1 to {MAX_WEEKS} weeks"):
        build_report(session, TODAY, weeks=weeks)


def test_dates_at_the_ends_of_the_calendar_stored_before_they_were_checked_do_not_stop_the_report(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    acme = ledger.customer()
    ledger.invoice(acme, "300.00", issued=date(2026, 2, 20), due=date(2026, 3, 20))
    ledger.invoice(acme, "50.00", issued=date(2026, 1, 2), due=date(9999, 12, 31))
    ledger.invoice(acme, "70.00", issued=date(1, 1, 1), due=date(1, 1, 31))
    with runtime.sessions() as session:
        report = build_report(session, TODAY, timezone=ZONE, weeks=12)
    latest = report.weeks[-1]
    assert latest.open_total("USD") == Decimal("420.00")  # 300.00 and both typed in error
    assert latest.overdue("USD") == Decimal("70.00")  # the one due in year 1
    assert latest.reached_30 == 0
