"""Several workspaces through the real ASGI app: the install pages against the local fake Slack,
and a second business that cannot see or act on the first one's customers (Slack commands,
buttons, webhooks, unsubscribe links), until it uninstalls."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.core.clock import FixedClock
from bot.core.models import Contact, Invoice, Reminder, Workspace
from bot.core.runtime import Runtime, start
from bot.core.tokens import token
from bot.planning import posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.workspaces.registry import Workspaces, workspace_database_url
from integrations.slack_chat import SlackChat, web_client
from integrations.slack_install import installation_store
from tests.handlers.posted_plan import approve_value
from tests.support import stripe_requests as sr
from tests.support.fake_http import local_client
from tests.support.ledger_files import a_week_late
from tests.support.serving import serve
from tests.support.slack_requests import SlackRequests, wait_for
from tests.support.workspace_setup import (
    BETA,
    BETA_CHANNEL,
    BETA_TOKEN,
    beta_rows,
    deployment_settings,
    import_rows,
    install,
)

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

TODAY = date(2026, 3, 16)
BETA_STRIPE_SECRET = "whsec_beta_only"
HEALTH_TOKEN = "health-token-1"


def _plan_and_post(runtime: Runtime, token_: str, channel: str, slack_api: Any) -> None:
    with runtime.writing() as session:
        run_plan(
            session, PlanRules.from_settings(runtime.settings), TODAY, runtime.clock.now(), False
        )
    posting.post_plan(runtime, SlackChat(web_client(token_, slack_api.url)), channel, TODAY)


@pytest.fixture
def two_businesses(
    deployment: tuple[Runtime, Workspaces], slack_api: Any, tmp_path: Path
) -> tuple[Runtime, Runtime, Workspaces]:
    """The main workspace with Customers 1-3, and Beta with its own one customer; each has a
    plan posted, so each has a reminder number 1 of its own."""
    main, workspaces = deployment
    import_rows(main, tmp_path, a_week_late(3))
    _plan_and_post(main, "xoxb-test", "C0FINANCE", slack_api)
    install(main, workspaces, slack_api)
    workspaces.set_settings(
        BETA,
        {
            "ARBOT_APPROVERS": "U0APPROVER",
            "ARBOT_TIMEZONE": "America/New_York",
            "STRIPE_WEBHOOK_SECRET": BETA_STRIPE_SECRET,
        },
    )
    beta = workspaces.runtime(BETA)
    import_rows(beta, tmp_path, beta_rows())
    _plan_and_post(beta, BETA_TOKEN, BETA_CHANNEL, slack_api)
    return main, beta, workspaces


def _state(runtime: Runtime, reminder_id: int) -> str:
    with runtime.sessions() as session:
        return session.scalar(select(Reminder.state).where(Reminder.id == reminder_id)) or ""


def test_installing_through_slacks_oauth_pages(
    deployment: tuple[Runtime, Workspaces], slack_api: Any
) -> None:
    main, workspaces = deployment
    with serve(main, workspaces) as url, local_client(base_url=url) as browser:
        main.settings.public_url = url  # the address Slack sends installers back to
        page = browser.get("/slack/install")
        assert page.status_code == 200 and "Add to Slack" in page.text
        link = html.unescape(re.search(r'href="([^"]+)"', page.text)[1])  # type: ignore[index]
        asked = parse_qs(urlsplit(link).query)
        assert asked["client_id"] == [slack_api.client_id]
        assert {"commands", "chat:write", "incoming-webhook"} <= set(asked["scope"][0].split(","))
        assert asked["redirect_uri"] == [f"{url}/slack/oauth_redirect"]
        state = asked["state"][0]
        assert browser.cookies.get("arbot_slack_state") == state

        slack_api.grant("code-ok", BETA, BETA_TOKEN, channel=BETA_CHANNEL)
        done = browser.get("/slack/oauth_redirect", params={"code": "code-ok", "state": state})
        assert done.status_code == 200, done.text
        assert "arbot is installed" in done.text and BETA in done.text
        assert BETA_CHANNEL in done.text
        installed = workspaces.get(BETA)
        assert installed is not None and installed.finance_channel == BETA_CHANNEL
        assert installation_store(main).bot_token(BETA) == BETA_TOKEN

        replayed = browser.get("/slack/oauth_redirect", params={"code": "code-ok", "state": state})
        assert replayed.status_code == 400 and "expired" in replayed.text


def test_an_install_that_did_not_come_from_this_browser_or_was_refused_stores_nothing(
    deployment: tuple[Runtime, Workspaces], slack_api: Any
) -> None:
    main, workspaces = deployment
    with serve(main, workspaces) as url, local_client(base_url=url) as browser:
        main.settings.public_url = url
        slack_api.grant("code-1", BETA, BETA_TOKEN)
        # a state arbot really issued, brought back by another browser (no cookie)
        issued = html.unescape(re.search(r'href="([^"]+)"', browser.get("/slack/install").text)[1])
        real_state = parse_qs(urlsplit(issued).query)["state"][0]
        with local_client() as other_browser:
            elsewhere = other_browser.get(
                f"{url}/slack/oauth_redirect", params={"code": "code-1", "state": real_state}
            )
        assert elsewhere.status_code == 400 and "expired" in elsewhere.text
        browser.cookies.clear()

        cancelled = browser.get("/slack/oauth_redirect", params={"error": "access_denied"})
        assert "was not installed" in cancelled.text and "access_denied" in cancelled.text

        link = browser.get("/slack/install").text
        state = parse_qs(urlsplit(html.unescape(re.search(r'href="([^"]+)"', link)[1])).query)
        bad = browser.get(
            "/slack/oauth_redirect", params={"code": "not-granted", "state": state["state"][0]}
        )
        assert bad.status_code == 400 and "Slack refused the install (invalid_code)" in bad.text
    assert workspaces.all() == []


def test_the_install_page_says_what_is_missing(
    database_url: str, slack_api: Any, clock: FixedClock
) -> None:
    main = start(deployment_settings(database_url, slack_api, slack_client_id=None), clock=clock)
    try:
        with serve(main, Workspaces(main)) as url, local_client() as http:
            page = http.get(f"{url}/slack/install")
        assert page.status_code == 503 and "SLACK_CLIENT_ID" in page.text
    finally:
        main.close()


def test_another_workspace_cannot_see_or_act_on_the_first_ones_customers(
    two_businesses: tuple[Runtime, Runtime, Workspaces], slack_api: Any
) -> None:
    main, beta, workspaces = two_businesses
    with serve(main, workspaces) as url:
        ours = SlackRequests(url)
        theirs = SlackRequests(url, team=BETA)
        try:
            # /ar status only ever looks in the asking workspace's own books
            assert "I-1" in ours.command("status Customer 1").json()["text"]
            seen = theirs.command("status Customer 1", channel=BETA_CHANNEL).json()["text"]
            assert "I-1" not in seen and "1,200" not in seen
            assert "BETA-1" in theirs.command("status Beta Only", channel=BETA_CHANNEL).text
            assert "BETA-1" not in ours.command("status Beta Only").text

            # Approve reminder 1 from Beta: Beta's reminder 1, never the main workspace's
            with beta.sessions() as session:
                beta_card = session.get(Reminder, 1)
                assert beta_card is not None
            theirs.click(
                "approve",
                approve_value(beta, slack_api, 1),
                channel=BETA_CHANNEL,
                message_ts=beta_card.slack_ts or "",
            )
            wait_for(lambda: _state(beta, 1) == "approved")
            assert _state(main, 1) == "planned"
            updates = wait_for(lambda: slack_api.records("chat.update"))  # card redrawn
            assert all(r["team"] == BETA for r in updates)
            assert {r["params"]["channel"] for r in updates} == {BETA_CHANNEL}

            # and the main workspace's click acts on its own reminder 1 only
            ours.click("approve", approve_value(main, slack_api, 1))
            wait_for(lambda: _state(main, 1) == "approved")
        finally:
            ours.close()
            theirs.close()


def test_a_workspace_that_is_not_installed_is_refused(
    two_businesses: tuple[Runtime, Runtime, Workspaces],
) -> None:
    main, _beta, workspaces = two_businesses
    with serve(main, workspaces, main_app=False) as url:
        stranger = SlackRequests(url, team="T0GAMMA")
        try:
            answer = stranger.command("status Customer 1")
            assert answer.status_code == 403 and "not installed" in answer.text
            assert "I-1" not in answer.text
        finally:
            stranger.close()


def test_webhooks_and_links_reach_only_their_own_workspace(
    two_businesses: tuple[Runtime, Runtime, Workspaces],
) -> None:
    main, beta, workspaces = two_businesses
    main_secret = "deployment-secret-key"
    beta_key = beta.settings.secret_key
    assert beta_key is not None
    with serve(main, workspaces) as url, local_client() as http:
        # the main workspace's unsubscribe link, replayed at Beta's address: nothing
        main_link = token(main_secret, 1, "unsubscribe")
        assert http.post(f"{url}/w/{BETA}/unsubscribe/{main_link}").status_code == 404
        # Beta's own link opts out Beta's contact, and only that one
        beta_link = token(beta_key.get_secret_value(), 1, "unsubscribe")
        assert http.post(f"{url}/w/{BETA}/unsubscribe/{beta_link}").status_code == 200
        assert http.post(f"{url}/unsubscribe/{beta_link}").status_code == 404

        # a Stripe payment signed with Beta's secret pays Beta's invoice, not invoice 1 of main
        body = sr.event("checkout.session.completed", sr.checkout_completed(90000, [1]))
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sr.signature(body, BETA_STRIPE_SECRET),
        }
        assert http.post(f"{url}/webhooks/stripe", content=body, headers=headers).status_code == 400
        paid = http.post(f"{url}/w/{BETA}/webhooks/stripe", content=body, headers=headers)
        assert paid.status_code == 200 and paid.json()["status"] == "applied", paid.text

        unknown = http.post(f"{url}/w/T0NOPE/webhooks/stripe", content=body, headers=headers)
        assert unknown.status_code == 404
        main.settings.health_token = SecretStr(HEALTH_TOKEN)
        operator = {"Authorization": f"Bearer {HEALTH_TOKEN}"}
        assert http.get(f"{url}/healthz", headers=operator).json()["workspaces"] == {BETA: "ok"}
    with beta.sessions() as session:
        assert session.scalar(select(Invoice.status).where(Invoice.id == 1)) == "paid"
        assert session.scalar(select(Contact.email_opted_out_at)) is not None
    with main.sessions() as session:
        assert session.scalar(select(Invoice.status).where(Invoice.id == 1)) == "open"
        opted = session.scalars(select(Contact.email_opted_out_at)).all()
        assert opted and all(at is None for at in opted)


def test_an_uninstalled_workspace_is_no_longer_served_and_keeps_its_data(
    two_businesses: tuple[Runtime, Runtime, Workspaces],
) -> None:
    main, beta, workspaces = two_businesses
    with serve(main, workspaces, main_app=False) as url:
        theirs = SlackRequests(url, team=BETA)
        try:
            assert "BETA-1" in theirs.command("status Beta Only", channel=BETA_CHANNEL).text
            gone = theirs.event({"type": "app_uninstalled"})
            assert gone.status_code == 200
            answer = theirs.command("status Beta Only", channel=BETA_CHANNEL)
            assert answer.status_code == 403 and "BETA-1" not in answer.text
        finally:
            theirs.close()
    with main.sessions() as session:
        row = session.get(Workspace, BETA)
        assert row is not None and row.uninstalled_at is not None
    assert installation_store(main).bot_token(BETA) is None
    with beta.sessions() as session:  # the data stays, for a reinstall or an export
        assert session.scalar(select(Invoice.number)) == "BETA-1"
    assert json.dumps([w.team_id for w in workspaces.installed()]) == "[]"


def test_the_main_workspace_cannot_be_installed_a_second_time(
    deployment: tuple[Runtime, Workspaces], slack_api: Any
) -> None:
    from bot.workspaces.flows import complete_install
    from integrations.errors import InstallFailed
    from integrations.slack_install import SlackInstaller

    main, workspaces = deployment
    slack_api.grant("code-main", "T0TEST", "xoxb-test-2")  # T0TEST is SLACK_BOT_TOKEN's team
    with pytest.raises(InstallFailed, match="already the main one"):
        complete_install(workspaces, SlackInstaller(main), "code-main")
    assert workspaces.all() == [] and installation_store(main).bot_token("T0TEST") is None
    assert slack_api.revoked == ["xoxb-test-2"]  # the token Slack granted is given back


def test_even_if_the_main_workspace_was_installed_its_clicks_act_on_the_main_data(
    deployment: tuple[Runtime, Workspaces], slack_api: Any, tmp_path: Path
) -> None:
    main, workspaces = deployment
    import_rows(main, tmp_path, a_week_late(2))
    _plan_and_post(main, "xoxb-test", "C0FINANCE", slack_api)
    workspaces.prepare("T0TEST")  # as an older arbot could have let happen
    workspaces.record_install("T0TEST", "Test Team", "C0FINANCE", "U0ADMIN")
    with serve(main, workspaces) as url:
        ours = SlackRequests(url)
        try:
            assert "I-1" in ours.command("status Customer 1").json()["text"]
            ours.click("approve", approve_value(main, slack_api, 1))
            wait_for(lambda: _state(main, 1) == "approved")
        finally:
            ours.close()


def test_a_workspace_of_an_enterprise_org_is_refused_and_its_token_given_back(
    deployment: tuple[Runtime, Workspaces], slack_api: Any
) -> None:
    from bot.workspaces.flows import complete_install
    from integrations.errors import InstallFailed
    from integrations.slack_install import SlackInstaller

    main, workspaces = deployment
    slack_api.grant("code-org", BETA, BETA_TOKEN, enterprise="E0ORG")
    with pytest.raises(InstallFailed, match="Enterprise Grid"):
        complete_install(workspaces, SlackInstaller(main), "code-org")
    assert workspaces.all() == [] and slack_api.revoked == [BETA_TOKEN]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_install_whose_database_cannot_be_made_leaves_nothing_behind(
    deployment: tuple[Runtime, Workspaces], slack_api: Any, database_url: str
) -> None:
    from bot.core.errors import UserError
    from bot.workspaces.flows import complete_install
    from integrations.slack_install import SlackInstaller

    main, workspaces = deployment
    # a directory where Beta's database file would go: SQLite cannot open it
    Path(database_url.removeprefix("sqlite:///")).with_name("arbot.t0beta.db").mkdir()
    slack_api.grant("code-b", BETA, BETA_TOKEN)
    with pytest.raises(UserError, match=r"cannot open the database .*arbot\.t0beta\.db"):
        complete_install(workspaces, SlackInstaller(main), "code-b")
    assert workspaces.all() == [] and installation_store(main).bot_token(BETA) is None
    assert slack_api.revoked == [BETA_TOKEN]


def test_slack_can_check_the_events_url_of_a_deployment_without_a_main_workspace(
    deployment: tuple[Runtime, Workspaces],
) -> None:
    main, workspaces = deployment
    with serve(main, workspaces, main_app=False) as url:
        slack = SlackRequests(url)
        try:
            body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"})
            answer = slack.send(body, "application/json")
            assert answer.status_code == 200 and answer.json() == {"challenge": "c-123"}
            forged = slack.send(body, "application/json", signature="v0=00")
            assert forged.status_code == 401
        finally:
            slack.close()


def test_an_install_that_cannot_check_the_main_workspace_gives_its_token_back(
    database_url: str, slack_api: Any, clock: FixedClock
) -> None:
    from bot.workspaces.flows import complete_install
    from integrations.errors import InstallFailed
    from integrations.slack_install import SlackInstaller

    main = start(deployment_settings(database_url, slack_api, slack_bot_token="xoxb-revoked"))
    try:
        workspaces = Workspaces(main)
        slack_api.grant("code-b", BETA, BETA_TOKEN)
        with pytest.raises(InstallFailed, match="SLACK_BOT_TOKEN does not work"):
            complete_install(workspaces, SlackInstaller(main), "code-b")
        assert workspaces.all() == [] and slack_api.revoked == [BETA_TOKEN]
    finally:
        main.close()


def test_an_unsigned_url_check_is_refused_with_one_workspace_too(
    deployment: tuple[Runtime, Workspaces],
) -> None:
    main, _workspaces = deployment
    with serve(main) as url:
        slack = SlackRequests(url)
        try:
            body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"})
            assert slack.send(body, "application/json", signature="v0=00").status_code == 401
            assert slack.send(body, "application/json").json() == {"challenge": "c-123"}
        finally:
            slack.close()


def test_a_reinstall_takes_the_channel_picked_while_installing(
    deployment: tuple[Runtime, Workspaces], slack_api: Any
) -> None:
    main, workspaces = deployment
    install(main, workspaces, slack_api)
    workspaces.set_settings(BETA, {"ARBOT_FINANCE_CHANNEL": "C0OLD", "ARBOT_TIMEZONE": "UTC"})
    again = install(main, workspaces, slack_api, channel="C0NEWFIN")
    assert again.finance_channel == "C0NEWFIN"
    assert workspaces.runtime(BETA).settings.finance_channel == "C0NEWFIN"
    assert workspaces.own_settings(BETA) == {"ARBOT_TIMEZONE": "UTC"}


def test_a_workspace_that_cannot_be_opened_is_told_so_in_slack(
    two_businesses: tuple[Runtime, Runtime, Workspaces], database_url: str, slack_api: Any
) -> None:
    assert two_businesses  # Beta installed, its settings sealed under the deployment's key
    rekeyed = start(
        deployment_settings(
            database_url, slack_api, secret_key="a-new-key", health_token=HEALTH_TOKEN
        )
    )
    try:
        with serve(rekeyed, Workspaces(rekeyed), main_app=False) as url:
            theirs = SlackRequests(url, team=BETA)
            try:
                answer = theirs.command("status Beta Only", channel=BETA_CHANNEL)
                hook = theirs.client.post(f"{url}/w/{BETA}/webhooks/stripe", content=b"{}")
                health = theirs.client.get(
                    f"{url}/healthz", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}
                )
            finally:
                theirs.close()
        assert answer.status_code == 200
        assert "cannot serve this workspace" in answer.text and "ARBOT_SECRET_KEY" in answer.text
        # an unauthenticated caller is told it is unavailable, not why
        assert hook.status_code == 503 and "ARBOT_SECRET_KEY" not in hook.text
        assert hook.json()["request_id"] == hook.headers["x-request-id"]
        # /healthz names it, and stays 200: the other workspaces are still served
        assert health.status_code == 200
        assert "ARBOT_SECRET_KEY" in health.json()["workspaces"][BETA]
    finally:
        rekeyed.close()


def test_a_workspace_that_cannot_be_opened_tells_a_caller_nothing_of_its_insides_and_is_retried_later(
    two_businesses: tuple[Runtime, Runtime, Workspaces], caplog: pytest.LogCaptureFixture
) -> None:
    main, _beta, workspaces = two_businesses
    if main.engine.dialect.name != "sqlite":
        pytest.skip("breaks the workspace's own SQLite file")
    workspaces.close()
    own = Path(str(make_url(workspace_database_url(main.settings.database_url, BETA)).database))
    kept = own.read_bytes()
    own.write_bytes(b"not a database at all" * 100)
    seconds = [1000.0]
    fresh = Workspaces(main, monotonic=lambda: seconds[0])
    hook = f"/w/{BETA}/webhooks/stripe"
    with serve(main, fresh) as url, local_client() as http:
        first = http.post(f"{url}{hook}", content=b"{}", headers={"X-Request-ID": "req-1"})
        own.write_bytes(kept)  # mended, but not tried again at once
        second = http.post(f"{url}{hook}", content=b"{}")
        seconds[0] += 4 * 60  # past the wait
        third = http.post(f"{url}{hook}", content=b"{}")
    assert first.status_code == 503 and second.status_code == 503
    assert first.json() == {
        "status": "unavailable",
        "detail": "this workspace cannot be served right now; whoever runs arbot finds why in "
        "its log under this request id, or in /healthz",
        "request_id": "req-1",
    }
    for text in (first.text, second.text):
        assert str(own.parent) not in text and "DatabaseError" not in text and ".db" not in text
    logged = [r for r in caplog.records if r.name == "handlers.workspace_routing"]
    assert any(
        "file is not a database" in r.getMessage() and getattr(r, "request_id", "") == "req-1"
        for r in logged
    )
    assert third.status_code != 503  # opened again once the wait was over
