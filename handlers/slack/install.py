"""The install pages: GET /slack/install (an "Add to Slack" link carrying a signed state that
expires, also set as a cookie so the install finishes in the browser that began it; nothing is
stored, and one address may start only so many installs a minute) and GET
/slack/oauth_redirect (Slack sends the installer back here with a code; arbot trades it for the
workspace's token and answers with a page that says what happened and what to do next)."""

from __future__ import annotations

import hmac
import logging
from html import escape
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.workspaces.flows import complete_install
from bot.workspaces.registry import Workspaces
from handlers.slack.install_state import AttemptLimit, issue_state, state_is_valid
from integrations.errors import InstallFailed
from integrations.slack_install import STATE_SECONDS, SlackInstaller, authorize_url, oauth_ready

log = logging.getLogger(__name__)
STATE_COOKIE = "arbot_slack_state"
INSTALLS_PER_MINUTE = 20  # from one address: far more than a person installing ever needs


def page(title: str, *paragraphs: str, status: int = 200) -> HTMLResponse:
    """A plain page; every paragraph is HTML already escaped by the caller."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def install_routes(main: Runtime, workspaces: Workspaces) -> list[Route]:
    attempts = AttemptLimit(INSTALLS_PER_MINUTE, 60)

    async def install(request: Request) -> Response:
        problem = oauth_ready(main)
        if problem:
            return page("arbot cannot be installed yet", escape(problem) + ".", status=503)
        address = request.client.host if request.client else ""
        if not attempts.allow(address, main.clock.now()):
            log.warning("install page: too many visits from one address")
            return page(
                "Too many install attempts",
                "This address started more installs in the last minute than anyone needs. "
                "Wait a minute, then open this page again.",
                status=429,
            )
        state = issue_state(_secret_key(main), main.clock.now())
        url = authorize_url(main, state)
        response = page(
            "Install arbot",
            f'<a href="{escape(url)}">Add to Slack</a>',
            "While installing, pick the finance channel: arbot posts each morning's plan there.",
        )
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=STATE_SECONDS,
            path="/slack",
            secure=urlsplit(main.settings.public_url or "").scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    async def oauth_redirect(request: Request) -> Response:
        error = request.query_params.get("error")
        if error:
            return page(
                "arbot was not installed",
                f"Slack said: {escape(error)}. Nothing was stored. "
                '<a href="/slack/install">Start again</a> whenever you like.',
            )
        code = request.query_params.get("code", "")
        state = request.query_params.get("state", "")
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not code or not state or not hmac.compare_digest(state.encode(), cookie.encode()):
            return _expired()
        if not state_is_valid(_secret_key(main), state, main.clock.now()):
            return _expired()
        try:
            done = await run_in_threadpool(complete_install, workspaces, SlackInstaller(main), code)
        except InstallFailed as exc:
            return page("arbot was not installed", escape(str(exc)) + ".", status=400)
        except UserError as exc:
            log.error("install could not finish: %s", exc)
            return page("arbot was not installed", escape(str(exc)) + ".", status=503)
        workspace = done.workspace
        team = escape(workspace.team_id)
        channel = escape(workspace.finance_channel or "")
        response = page(
            "arbot is installed" + (" again" if done.reinstalled else ""),
            f"Workspace {escape(workspace.team_name)} ({team}). Its data is kept apart from "
            "every other workspace's.",
            f"Finance channel: {channel or 'none chosen: set ARBOT_FINANCE_CHANNEL'}.",
            "Next, whoever runs arbot gives this workspace its own settings, e.g. "
            f"<code>arbot workspace set {team} ARBOT_TIMEZONE=America/Chicago "
            "SMTP_HOST=smtp.example.com ARBOT_FROM_EMAIL=ar@example.com</code>, and imports "
            f"its ledger with <code>ARBOT_WORKSPACE={team} arbot import-csv ledger.csv</code>.",
        )
        response.delete_cookie(STATE_COOKIE, path="/slack")
        return response

    return [
        Route("/slack/install", install, methods=["GET"]),
        Route("/slack/oauth_redirect", oauth_redirect, methods=["GET"]),
    ]


def _secret_key(main: Runtime) -> str:
    key = main.settings.secret_key
    return key.get_secret_value() if key else ""


def _expired() -> HTMLResponse:
    return page(
        "This install link has expired",
        "It was used already, is older than ten minutes, or was opened in another browser. "
        '<a href="/slack/install">Start the install again</a>.',
        status=400,
    )
