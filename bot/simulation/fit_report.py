"""What `arbot simulate --fit` fitted, beside the defaults, as plain text and as JSON."""

from __future__ import annotations

from typing import Any

from bot.simulation.fit import Fit, Implied
from bot.simulation.model import BehaviourModel

FITTED_NAMES = ("pay_daily", "not_yet_due_factor", "halving_days_overdue", "pay_on_touch_day")


def describe_fit(fit: Fit, defaults: BehaviourModel) -> str:
    lines = [
        f"Behaviour model fitted from the ledger's history up to {fit.as_of.isoformat()}: "
        f"{fit.paid} paid invoices, {fit.open} still open, {fit.touch_days} days on which a "
        "reminder reached an invoice.",
        f"{'':32}{'default':>12}{'fitted':>12}",
    ]
    for name, default, fitted in _rows(fit.model, defaults):
        lines.append(f"{name:32}{default:>12}{fitted:>12}")
    lines += [
        f"{'The same invoices, as seen:':32}{'history':>12}{'fitted':>12}{'defaults':>12}",
        f"{'Mean days after due (paid)':32}{_days(fit.history):>12}"
        f"{_days(fit.with_fitted):>12}{_days(fit.with_defaults):>12}",
        f"{'Unpaid a year after issue':32}{_share(fit.history):>12}"
        f"{_share(fit.with_fitted):>12}{_share(fit.with_defaults):>12}",
    ]
    lines.append(
        "(The models' figures are for invoices like the ledger's, over the days the history saw "
        "each one, with no reminders.)"
    )
    lines += [f"Kept: {note}." for note in fit.notes]
    if fit.fitted:
        lines.append("The simulation below runs on the fitted model.")
    else:
        lines.append("The simulation below runs on the defaults.")
    return "\n".join(lines)


def fit_json(fit: Fit, defaults: BehaviourModel) -> dict[str, Any]:
    return {
        "as_of": fit.as_of.isoformat(),
        "fitted": fit.fitted,
        "paid_invoices": fit.paid,
        "open_invoices": fit.open,
        "reminder_days": fit.touch_days,
        "parameters": {
            name: {"default": default, "fitted": fitted}
            for name, default, fitted in _rows(fit.model, defaults)
        },
        "mean_days_after_due": {
            "history": fit.history.mean_days_late,
            "fitted": fit.with_fitted.mean_days_late,
            "defaults": fit.with_defaults.mean_days_late,
        },
        "share_unpaid_after_a_year": {
            "history": fit.history.share_unpaid,
            "fitted": fit.with_fitted.share_unpaid,
            "defaults": fit.with_defaults.share_unpaid,
        },
        "notes": fit.notes,
    }


def _rows(model: BehaviourModel, defaults: BehaviourModel) -> list[tuple[str, str, str]]:
    rows = []
    for name in FITTED_NAMES:
        default, fitted = getattr(defaults, name), getattr(model, name)
        if isinstance(default, dict):
            for tier in default:
                rows.append((f"{name}.{tier}", f"{default[tier]:g}", f"{fitted[tier]:g}"))
        else:
            rows.append((name, f"{default:g}", f"{fitted:g}"))
    return rows


def _days(implied: Implied) -> str:
    return "n/a" if implied.mean_days_late is None else f"{implied.mean_days_late:.1f}"


def _share(implied: Implied) -> str:
    return "n/a" if implied.share_unpaid is None else f"{implied.share_unpaid:.1%}"
