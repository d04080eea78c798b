"""The payment plan and Resume forms within Slack's limits, whatever the account holds: a hundred
options at most in a select, 75 characters in an option's text, 24 in a title, 100 blocks."""

from __future__ import annotations

from integrations.slack_plans import plan_modal, resume_confirmation, resume_modal
from tests.support.fake_slack import _view_problems


def test_the_plan_form_of_an_account_with_many_long_invoices_is_accepted() -> None:
    scopes = [("account", "The whole account: $1,234,567.89")] + [
        (f"INV-{n:05d}-{'X' * 40}", f"INV-{n:05d}-{'X' * 40}: $12,345.67") for n in range(150)
    ]
    view = plan_modal(7, "R" * 300 + " & <Sons>", scopes, "USD")
    assert _view_problems(view) is None
    options = view["blocks"][1]["element"]["options"]
    assert len(options) == 100 and all(len(o["text"]["text"]) <= 75 for o in options)
    assert len({b["block_id"] for b in view["blocks"] if "block_id" in b}) == 13


def test_the_resume_forms_hold_long_reasons_and_say_when_nothing_holds() -> None:
    holding = {
        "promise": "The promise to pay by 2026-03-20 (INV-7), 2026-03-21 (INV-8)",
        "dispute": "The dispute on "
        + ", ".join(f"INV-{n} (wrong qty {'y' * 80})" for n in range(40)),
        "pause": "The pause until 2026-04-01",
    }
    assert _view_problems(resume_modal(7, "Ridgeline", holding)) is None
    assert _view_problems(resume_modal(7, "Ridgeline", {})) is None
    confirm = resume_confirmation("7|C1|dispute", [holding["dispute"] * 3], [holding["pause"]])
    assert _view_problems(confirm) is None
    assert "reminders about it go out again" in str(confirm["blocks"])
