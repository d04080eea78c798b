"""An install arbot refuses, or one that fails half-way, gives back the token Slack granted for
it. Slack grants the same bot token again when the app is installed again into a workspace it is
in (the token of the app and workspace, not of the install), so that token may be the very one a
workspace is served with: SLACK_BOT_TOKEN's, or an installed workspace's. Giving it back then
revokes that workspace's Slack access, so arbot keeps it."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from slack_sdk import WebClient

from bot.core.runtime import Runtime
from bot.workspaces.registry import Workspaces
from integrations.slack_install import installation_store
from tests.support.serving import serve
from tests.support.workspace_setup import BETA, BETA_TOKEN, install

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

MAIN_TOKEN = "xoxb-test"  # SLACK_BOT_TOKEN, of workspace T0TEST


def _works(slack_api: Any, token: str) -> bool:
    return bool(WebClient(token=token, base_url=slack_api.url).auth_test()["ok"])


def _install_through_the_pages(url: str, slack_api: Any, team: str, token: str) -> httpx.Response:
    """Add to Slack, as a person in `team` would, with Slack granting `token`."""
    with httpx.Client(base_url=url) as browser:
        page = browser.get("/slack/install")
        link = html.unescape(re.search(r'href="([^"]+)"', page.text)[1])  # type: ignore[index]
        state = parse_qs(urlsplit(link).query)["state"][0]
        slack_api.grant(f"code-{team}", team, token)
        return browser.get("/slack/oauth_redirect", params={"code": f"code-{team}", "state": state})


def test_adding_arbot_to_the_main_workspace_again_keeps_its_token(
    deployment: tuple[Runtime, Workspaces], slack_api: Any
) -> None:
    main, workspaces = deployment
    with serve(main, workspaces) as url:
        main.settings.public_url = url
        done = _install_through_the_pages(url, slack_api, "T0TEST", MAIN_TOKEN)
    assert done.status_code == 400 and "already the main one" in done.text
    assert workspaces.all() == []
    assert slack_api.revoked == []
    assert _works(slack_api, MAIN_TOKEN)  # the main workspace is still served


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_reinstall_that_fails_keeps_the_token_the_workspace_is_served_with(
    deployment: tuple[Runtime, Workspaces], slack_api: Any, database_url: str, tmp_path: Path
) -> None:
    main, workspaces = deployment
    with serve(main, workspaces) as url:
        main.settings.public_url = url
        install(main, workspaces, slack_api)
        # Beta's database cannot be opened for a moment, while someone installs arbot again
        own = Path(database_url.removeprefix("sqlite:///")).with_name("arbot.t0beta.db")
        own.rename(tmp_path / "moved.db")
        own.mkdir()
        workspaces.close()
        failed = _install_through_the_pages(url, slack_api, BETA, BETA_TOKEN)
        assert "cannot open the database" in failed.text
        own.rmdir()
        (tmp_path / "moved.db").rename(own)
    assert slack_api.revoked == []
    assert _works(slack_api, BETA_TOKEN)
    assert installation_store(main).bot_token(BETA) == BETA_TOKEN
    installed = workspaces.get(BETA)
    assert installed is not None and installed.active
