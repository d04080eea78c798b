"""The outcomes report: how each playbook step does and how the portfolio moves week by week, as
a folder (PNG charts and an `index.html` that needs nothing from the network) or as one Slack
message carrying the charts and a short summary."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, StrictUndefined
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.money import format_money
from bot.core.runtime import Runtime
from bot.forecasting.cash import Forecast, cash_forecast
from bot.learning.bootstrap import MIN_CUSTOMERS, RESAMPLES
from bot.learning.comparison import Comparison, Unavailable, compare, pilot_of
from bot.learning.metrics import DEFAULT_WEEKS, WEEK_DAYS, WeekMetrics, percent, portfolio
from bot.learning.outcomes import OUTCOMES, PAID_WITHIN_DAYS, StepRow, effectiveness, outcomes
from bot.ledger.aging import BUCKETS
from bot.planning.planner import Pilot

MAX_SLACK_TEXT = 3000  # one section block's text: the summary fits one, so it fits anywhere
MAX_SLACK_FILES = 10  # charts on one Slack message; the folder report has them all
MAX_WEEKS = 104
TOP_STEPS = 5
FORECAST_WEEKS = 13
ZERO = Decimal(0)


@dataclass(frozen=True)
class Report:
    today: date
    since: date  # touches sent from this day...
    until: date  # ...to this one (yesterday), in the business's timezone
    weeks: list[WeekMetrics]
    steps: list[StepRow]
    outcomes: dict[str, int]  # outcome -> touches
    # The followed-up customers against the control group or the observed segment over the same
    # weeks (bot.learning.comparison), or why there is nothing to compare.
    comparison: Comparison | Unavailable | None = None
    # The cash expected in each of the next FORECAST_WEEKS weeks, from today (bot.forecasting).
    forecast: Forecast | None = None

    @property
    def currencies(self) -> list[str]:
        return sorted({code for week in self.weeks for code in week.aging})

    @property
    def touches(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True)
class Chart:
    filename: str
    title: str
    png: bytes


def build_report(
    session: Session,
    today: date,
    *,
    timezone: str = "UTC",
    weeks: int = DEFAULT_WEEKS,
    pilot: Pilot | None = None,
) -> Report:
    """The figures for the `weeks` weeks before `today` (today is not over yet); `pilot` is the
    pilot's scope, for the comparison when no control group was drawn."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise UserError(f"the report covers 1 to {MAX_WEEKS} weeks, not {weeks}")
    since, until = today - timedelta(days=WEEK_DAYS * weeks), today - timedelta(days=1)
    touches = outcomes(session, since, until, timezone)
    counts = Counter(touch.outcome for touch in touches)
    return Report(
        today=today,
        since=since,
        until=until,
        weeks=portfolio(session, today, weeks, timezone),
        steps=effectiveness(touches),
        outcomes={name: counts.get(name, 0) for name in OUTCOMES},
        comparison=compare(session, since, until, timezone=timezone, pilot=pilot),
        forecast=cash_forecast(session, today, FORECAST_WEEKS, timezone),
    )


def report_charts(report: Report, limit: int | None = None) -> list[Chart]:
    """DSO for every currency, the comparison, the cash expected in the coming weeks per
    currency, then open balances and cash collected per currency; with `limit`, only the first
    that many are drawn (a chart takes about 0.12 s of CPU)."""
    # matplotlib takes about a second of CPU to import: only drawing a report pays for it, not
    # every process that imports the Slack app or the scheduler.
    from bot.learning.charts import (
        aging_chart,
        cash_chart,
        comparison_chart,
        dso_chart,
        forecast_chart,
    )

    planned: list[tuple[str, str, Callable[[], bytes]]] = [
        ("dso.png", "Days sales outstanding", partial(dso_chart, report.weeks))
    ]
    found = report.comparison
    if isinstance(found, Comparison):
        planned.append(
            (
                "comparison.png",
                f"Days past due at payment: the {found.followed_label} and the "
                f"{found.baseline_label}",
                partial(comparison_chart, found.weekly, found.followed_label, found.baseline_label),
            )
        )
    forecast = report.forecast
    if forecast is not None:
        for code in sorted(forecast.open_balance()):
            planned.append(
                (
                    f"forecast-{code}.png",
                    f"Cash expected per week, the next {len(forecast.weeks)} weeks ({code})",
                    partial(forecast_chart, forecast.weeks, code),
                )
            )
    for code in report.currencies:
        planned.append(
            (
                f"aging-{code}.png",
                f"Open balances by age ({code})",
                partial(aging_chart, report.weeks, code),
            )
        )
        planned.append(
            (
                f"cash-{code}.png",
                f"Cash collected per week ({code})",
                partial(cash_chart, report.weeks, code),
            )
        )
    return [Chart(filename, title, draw()) for filename, title, draw in planned[:limit]]


# --- A folder ---------------------------------------------------------------------------------


def write_report(
    session: Session,
    today: date,
    out_dir: Path,
    *,
    timezone: str = "UTC",
    weeks: int = DEFAULT_WEEKS,
    pilot: Pilot | None = None,
) -> list[Path]:
    """Write the charts and `index.html` into `out_dir` (made when missing) and return their
    paths, index.html last. Everything is computed before the first file is written, and each
    file replaces its old version in one step, so a failure never leaves a half-written page."""
    _refuse_a_file(out_dir)  # before the charts are drawn, about 0.12 s of CPU each
    report = build_report(session, today, timezone=timezone, weeks=weeks, pilot=pilot)
    charts = report_charts(report)
    files = [(c.filename, c.png) for c in charts]
    files.append(("index.html", report_html(report, charts).encode("utf-8")))
    _make_folder(out_dir)
    return [_replace(out_dir / name, content) for name, content in files]


def _refuse_a_file(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file: give the report a folder to write into")


def _make_folder(out_dir: Path) -> None:
    _refuse_a_file(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the report folder {out_dir}: {exc.strerror}") from None


def _replace(path: Path, content: bytes) -> Path:
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    return path


def report_html(report: Report, charts: Sequence[Chart]) -> str:
    """The page: outcomes of the touches, the step table, the weekly figures and the charts."""
    return _PAGE.render(
        report=report,
        charts=charts,
        buckets=BUCKETS,
        paid_within=PAID_WITHIN_DAYS,
        money=format_money,
        pct=_pct,
        label=_outcome_label,
        compared=report.comparison if isinstance(report.comparison, Comparison) else None,
        unavailable=report.comparison if isinstance(report.comparison, Unavailable) else None,
        resamples=RESAMPLES,
        min_customers=MIN_CUSTOMERS,
        zero=ZERO,
    )


def _pct(value: Decimal | None) -> str:
    return "\N{EN DASH}" if value is None else f"{value}%"


def _outcome_label(name: str) -> str:
    return name.replace("_", " ")


_PAGE = Environment(autoescape=True, undefined=StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Collections report, {{ report.today.isoformat() }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 70rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
img { display: block; margin: 1rem 0; max-width: 100%; height: auto; }
.note { color: #666; font-size: 0.9rem; }
</style>
</head>
<body>
<h1>Collections report</h1>
<p class="note">Made on {{ report.today.isoformat() }}. Touches sent from {{ report.since.isoformat() }}
to {{ report.until.isoformat() }}; money after a touch is credited to the last touch of that invoice
before it arrived. Past weeks' balances are rebuilt from invoice totals and recorded payments.</p>

<h2>Follow-up compared</h2>
{% if compared %}
<p><strong>{{ compared.sentence()[:1]|upper }}{{ compared.sentence()[1:] }}.</strong></p>
<table>
<caption>The {{ compared.followed_label }} against the {{ compared.baseline_label }},
{{ compared.since.isoformat() }} to {{ compared.until.isoformat() }}
({{ compared.followed_customers }} customers against {{ compared.baseline_customers }})</caption>
<tr><th>Figure</th><th>{{ compared.followed_label|capitalize }}</th>
<th>{{ compared.baseline_label|capitalize }}</th><th>Difference</th><th>95% interval</th>
<th>Customers counted</th></tr>
{% for row in compared.rows %}
<tr><td>{{ row.title }}</td><td>{{ row.value_text(row.followed) }}</td>
<td>{{ row.value_text(row.baseline) }}</td><td>{{ row.gain_text() }}</td>
<td>{{ row.interval_text() }}</td>
<td>{{ row.followed_customers }} / {{ row.baseline_customers }}</td></tr>
{% endfor %}
</table>
<p class="note">Differences are signed so that positive favours the {{ compared.followed_label }}.
Each interval comes from {{ "{:,}".format(resamples) }} resamples of the customers of each group (a customer's
invoices stay together), seeded, so the same ledger gives the same page. A difference is given
only when its 95% interval leaves 0 out and is no wider on each side than the difference itself,
with at least {{ min_customers }} customers behind the figure in each group; otherwise it reads
"not enough data yet".
{% for note in compared.notes %}{{ note }} {% endfor %}</p>
{% else %}
<p>{{ unavailable.reason if unavailable else "No comparison." }}</p>
{% endif %}

<h2>Cash expected in the coming weeks</h2>
{% if report.forecast and report.forecast.nothing_learned %}
<p>{{ report.forecast.nothing_learned }}</p>
{% elif report.forecast and report.forecast.invoices %}
{% set open_balance = report.forecast.open_balance() %}
<table>
<caption>Expected cash in, week by week (from how each customer has paid;
{{ report.forecast.invoices|length }} open invoices)</caption>
<tr><th>Week of</th>{% for code in open_balance|sort %}<th>{{ code }}</th>{% endfor %}</tr>
{% for week in report.forecast.weeks %}
<tr><td>{{ week.week_start.isoformat() }}</td>
{% for code in open_balance|sort %}<td>{{ money(week.expected.get(code, zero), code) }}</td>{% endfor %}</tr>
{% endfor %}
<tr><td>Open now</td>{% for code in open_balance|sort %}<td>{{ money(open_balance[code], code) }}</td>{% endfor %}</tr>
</table>
<p class="note">Each week sums every open invoice's balance times the chance it is paid that week,
learned from the payments arbot knows of; a customer with no payment yet is given the whole book's
behaviour. Money history never saw paid that late falls in no week, so the weeks add up to less
than what is open. <code>arbot forecast</code> lists each invoice's expected date.</p>
{% else %}
<p>No open invoices to forecast.</p>
{% endif %}

<h2>What followed the touches</h2>
<table>
<caption>{{ report.touches }} touch{{ "" if report.touches == 1 else "es" }}</caption>
<tr>{% for name in report.outcomes %}<th>{{ label(name) }}</th>{% endfor %}</tr>
<tr>{% for count in report.outcomes.values() %}<td>{{ count }}</td>{% endfor %}</tr>
</table>

<h2>Steps</h2>
{% if report.steps %}
<table>
<tr><th>Tier</th><th>Step</th><th>Day</th><th>Channel</th><th>Touches</th>
{% for days in paid_within %}<th>Paid &le; {{ days }} d</th>{% endfor %}
<th>Replied</th><th>Escalated</th><th>Collected after</th></tr>
{% for row in report.steps %}
<tr><td>{{ row.tier }}</td><td class="text">{{ row.step_key }}</td><td>{{ "%+d" % row.day }}</td>
<td class="text">{{ row.channel }}</td><td>{{ row.touches }}</td>
{% for days in paid_within %}<td>{{ pct(row.paid_percent(days)) }}</td>{% endfor %}
<td>{{ pct(row.reply_percent) }}</td><td>{{ pct(row.escalation_percent) }}</td>
<td>{% for code, amount in row.collected.items() %}{{ money(amount, code) }}{% if not loop.last %}<br>{% endif %}{% else %}&ndash;{% endfor %}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No reminder went out in these weeks.</p>
{% endif %}

<h2>Week by week</h2>
{% for code in report.currencies %}
<table>
<caption>{{ code }}: open balances at the end of each week</caption>
<tr><th>Week ending</th>{% for bucket in buckets %}<th>{{ bucket }}</th>{% endfor %}
<th>Overdue</th><th>DSO (days)</th><th>Collected</th></tr>
{% for week in report.weeks %}
<tr><td>{{ week.last_day.isoformat() }}</td>
{% for bucket in buckets %}<td>{{ money(week.aging[code][bucket], code) }}</td>{% endfor %}
<td>{{ money(week.overdue(code), code) }}</td>
<td>{% if week.dso[code] is none %}&ndash;{% else %}{{ week.dso[code] }}{% endif %}</td>
<td>{{ money(week.collected[code], code) }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No invoices or payments in these weeks.</p>
{% endfor %}
<table>
<caption>Invoices reaching 30 days past due</caption>
<tr><th>Week ending</th><th>Reached day 30</th><th>Paid by then</th><th>Share</th></tr>
{% for week in report.weeks %}
<tr><td>{{ week.last_day.isoformat() }}</td><td>{{ week.reached_30 }}</td>
<td>{{ week.paid_by_30 }}</td><td>{{ pct(week.paid_by_30_percent) }}</td></tr>
{% endfor %}
</table>

<h2>Charts</h2>
{% for chart in charts %}
<img src="{{ chart.filename }}" alt="{{ chart.title }}" width="800" height="450">
{% endfor %}
</body>
</html>
"""
)


# --- Slack ------------------------------------------------------------------------------------


def report_text(report: Report) -> str:
    """A short mrkdwn summary (at most MAX_SLACK_TEXT characters, so it fits one section)."""
    last = report.weeks[-1]
    lines = [f"*Collections report*, weeks to {last.last_day:%a %d %b %Y}"]
    if isinstance(report.comparison, Comparison):
        lines.append(f"• Follow-up compared: {report.comparison.sentence()}")
    lines += [_currency_line(report, code) for code in report.currencies]
    reached = sum(w.reached_30 for w in report.weeks)
    paid = sum(w.paid_by_30 for w in report.weeks)
    if reached:
        lines.append(
            f"• Paid by day 30: {paid} of {reached} invoices that got there "
            f"({_pct(percent(paid, reached))})"
        )
    outcome_parts = ", ".join(
        f"{_outcome_label(name)} {count}" for name, count in report.outcomes.items() if count
    )
    lines.append(
        f"*Touches* {report.since:%d %b} to {report.until:%d %b}: {report.touches}"
        + (f" ({outcome_parts})" if outcome_parts else "")
    )
    lines += [_step_line(row) for row in _best_steps(report.steps)]
    return _fit(lines)


def _currency_line(report: Report, code: str) -> str:
    last, earlier = report.weeks[-1], report.weeks[max(0, len(report.weeks) - 5)]
    dso = last.dso.get(code)
    before = earlier.dso.get(code)
    trend = (
        f" (was {before} on {earlier.last_day:%d %b})"
        if earlier is not last and before is not None
        else ""
    )
    in_all = sum((w.collected.get(code, ZERO) for w in report.weeks), ZERO)
    return (
        f"• *{code}*: {format_money(last.open_total(code), code)} open, "
        f"{format_money(last.overdue(code), code)} overdue"
        + (f"; DSO {dso} days{trend}" if dso is not None else "")
        + f"; collected {format_money(last.collected.get(code, ZERO), code)} last week, "
        f"{format_money(in_all, code)} in {len(report.weeks)} weeks"
    )


def _best_steps(steps: Sequence[StepRow]) -> list[StepRow]:
    """The steps that got paid soonest most often (then the busiest)."""
    return sorted(steps, key=lambda r: (-(r.paid_percent(14) or 0), -r.touches))[:TOP_STEPS]


def _step_line(row: StepRow) -> str:
    collected = ", ".join(format_money(amount, code) for code, amount in row.collected.items())
    return (
        f"• {_escape(row.tier)} · {_escape(row.step_key)} ({row.day:+d}) · {_escape(row.channel)}: "
        f"{row.touches} sent, {_pct(row.paid_percent(14))} paid within 14 days, "
        f"{_pct(row.reply_percent)} replied" + (f", {collected} after" if collected else "")
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(lines: list[str]) -> str:
    """Whole lines only: drop the last ones until the text fits, and say so."""
    text = "\n".join(lines)
    while len(text) > MAX_SLACK_TEXT and len(lines) > 1:
        lines = lines[:-1]
        text = "\n".join([*lines, "…"])
    return text[:MAX_SLACK_TEXT]


class SlackFiles(Protocol):
    """What `post_report` needs of slack_sdk's WebClient."""

    def files_upload_v2(
        self,
        *,
        file_uploads: list[dict[str, Any]],
        channel: str,
        initial_comment: str,
        **kwargs: Any,
    ) -> Any: ...


def post_report(
    runtime: Runtime,
    client: SlackFiles,
    channel: str,
    today: date,
    *,
    weeks: int = DEFAULT_WEEKS,
) -> None:
    """Post one message to `channel`: the summary with the charts attached (at most
    MAX_SLACK_FILES: DSO first, then currency by currency), through Slack's external upload
    (files.getUploadURLExternal, the bytes, files.completeUploadExternal). Slack is called outside
    any transaction; the audit log notes the post afterwards."""
    with runtime.sessions() as session:
        report = build_report(
            session,
            today,
            timezone=runtime.settings.timezone,
            weeks=weeks,
            pilot=pilot_of(runtime.settings),
        )
    charts = report_charts(report, MAX_SLACK_FILES)
    client.files_upload_v2(
        file_uploads=[
            {"file": c.png, "filename": c.filename, "title": c.title, "alt_txt": c.title}
            for c in charts
        ],
        channel=channel,
        initial_comment=report_text(report),
    )
    with runtime.writing() as session:
        audit.record(
            session,
            runtime.clock.now(),
            "report.posted",
            payload={
                "channel": channel,
                "since": report.since.isoformat(),
                "until": report.until.isoformat(),
                "charts": [c.filename for c in charts],
                "touches": report.touches,
            },
        )
