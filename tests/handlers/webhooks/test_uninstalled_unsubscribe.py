"""A workspace that uninstalled arbot keeps its data, and installing again picks it up: its
customers' inboxes still hold the reminders it sent, whose one-click unsubscribe links must keep
working (RULES A7, C2), or an address that asked to stop is mailed again after a reinstall."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import Contact, Reminder
from bot.core.runtime import Runtime, start
from bot.core.tokens import token
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.workspaces.registry import Workspaces
from tests.support import stripe_requests as sr
from tests.support.serving import serve
from tests.support.slack_requests import SlackRequests
from tests.support.workspace_setup import BETA, beta_rows, import_rows, install

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

TODAY = date(2026, 3, 16)


def test_an_uninstalled_workspaces_unsubscribe_links_still_opt_the_address_out(
    deployment: tuple[Runtime, Workspaces], slack_api: Any, tmp_path: Path
) -> None:
    main, workspaces = deployment
    install(main, workspaces, slack_api)
    workspaces.set_settings(BETA, {"STRIPE_WEBHOOK_SECRET": "whsec_beta"})
    beta = workspaces.runtime(BETA)
    import_rows(beta, tmp_path, beta_rows())
    with beta.writing() as session:
        rules = PlanRules.from_settings(beta.settings)
        run_plan(session, rules, TODAY, beta.clock.now(), False)
    with beta.sessions() as session:
        reminder_id = session.scalars(select(Reminder.id)).first()
    assert reminder_id is not None
    secret = beta.settings.secret_key
    assert secret is not None
    link = f"/w/{BETA}/unsubscribe/{token(secret.get_secret_value(), reminder_id, 'unsubscribe')}"

    with serve(main, workspaces, main_app=False) as url:
        theirs = SlackRequests(url, team=BETA)
        try:
            assert theirs.event({"type": "app_uninstalled"}).status_code == 200
        finally:
            theirs.close()
        installed = workspaces.get(BETA)
        assert installed is not None and not installed.active

        page = httpx.get(f"{url}{link}")
        assert page.status_code == 200 and "<form method=post>" in page.text
        done = httpx.post(f"{url}{link}")
        assert done.status_code == 200 and "Done" in done.text

        # a forged link, and everything else of the workspace, is still not served
        assert httpx.post(f"{url}/w/{BETA}/unsubscribe/forged").status_code == 404
        body = sr.event("checkout.session.completed", sr.checkout_completed(90000, [1]))
        headers = {"Stripe-Signature": sr.signature(body, "whsec_beta")}
        paid = httpx.post(f"{url}/w/{BETA}/webhooks/stripe", content=body, headers=headers)
        assert paid.status_code == 404
    kept = start(beta.settings, clock=main.clock)  # its data, as a reinstall finds it
    try:
        with kept.sessions() as session:
            assert session.scalar(select(Contact.email_opted_out_at)) is not None
    finally:
        kept.close()
