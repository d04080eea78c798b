"""Slack: the bot token (`auth.test`), its scopes (the `x-oauth-scopes` header Slack sends with
every Web API answer) against what arbot asks for, and the bot's membership of the finance and
escalation channels (`conversations.info`'s `is_member`, else `conversations.members`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from integrations.doctor.findings import Finding, ok, problem
from integrations.slack_install import BOT_SCOPES

SLACK = "Slack"
# What the bot token must carry: the manifest's scopes (BOT_SCOPES, kept equal to
# slack/manifest.yml by a test), less incoming-webhook, which only lends its channel picker to
# installing a workspace through /slack/install.
NEEDED_SCOPES = tuple(s for s in BOT_SCOPES if s != "incoming-webhook")
REINSTALL = (
    "add it under OAuth & Permissions > Bot Token Scopes (or update the app from "
    "slack/manifest.yml), then reinstall the app"
)


def check_slack(
    token: str,
    api_url: str,
    channels: Mapping[str, str | None],
    timeout: float,
    refusal: str | None = None,
) -> list[Finding]:
    """`channels`: setting name → channel id (ARBOT_FINANCE_CHANNEL, ARBOT_ESCALATION_CHANNEL).
    `refusal`: why arbot itself no longer calls Slack with this token (Slack said the app was
    uninstalled or the token revoked: bot.core.slack_access), whatever Slack answers now."""
    stopped = [problem(SLACK, "revoked", refusal)] if refusal else []
    return stopped + _live(token, api_url, channels, timeout)


def _live(
    token: str, api_url: str, channels: Mapping[str, str | None], timeout: float
) -> list[Finding]:
    client = WebClient(token=token, base_url=api_url, timeout=int(max(timeout, 1)))
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        return [problem(SLACK, "token", _token_refused(_error(exc)))]
    except OSError as exc:
        return [
            problem(
                SLACK,
                "token",
                f"cannot reach Slack at {api_url} ({exc}): check SLACK_API_URL and the network",
            )
        ]
    team = f"{answer.get('team') or '?'} ({answer.get('team_id') or '?'})"
    bot_user = str(answer.get("user_id") or "")
    found = [
        ok(
            SLACK,
            "token",
            f"SLACK_BOT_TOKEN works: workspace {team}, bot @{answer.get('user') or '?'} "
            f"({bot_user or '?'})",
        )
    ]
    found.append(_scopes(_header(answer.headers, "x-oauth-scopes")))
    for setting, channel in channels.items():
        if channel:
            found.append(_membership(client, setting, channel, bot_user))
    return found


def _scopes(header: str | None) -> Finding:
    if header is None:
        return problem(
            SLACK,
            "scopes",
            "Slack did not say which scopes the token has (no x-oauth-scopes header): they "
            "could not be checked",
        )
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = [s for s in NEEDED_SCOPES if s not in granted]
    if missing:
        return problem(
            SLACK, "scopes", f"the bot token lacks the scope(s) {', '.join(missing)}: {REINSTALL}"
        )
    return ok(
        SLACK, "scopes", f"the bot token has every scope arbot needs ({', '.join(NEEDED_SCOPES)})"
    )


def _membership(client: WebClient, setting: str, channel: str, bot_user: str) -> Finding:
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as exc:
        error = _error(exc)
        if error == "channel_not_found":
            return problem(
                SLACK,
                "channel",
                f"{setting} is {channel!r}, which the bot cannot see: use the channel's id (C…, "
                "at the bottom of the channel's details); for a private channel, run /invite "
                "@arbot there first",
            )
        if error == "missing_scope":
            return problem(
                SLACK,
                "channel",
                f"Slack would not show {setting} ({channel}) to the bot (missing_scope): it "
                f"needs channels:read and groups:read; {REINSTALL}",
            )
        return problem(SLACK, "channel", f"Slack refused to show {setting} ({channel}): {error}")
    name = f"#{info.get('name') or channel}"
    if info.get("is_archived"):
        return problem(
            SLACK,
            "channel",
            f"{name} ({setting}) is archived: unarchive it or set {setting} to another channel",
        )
    member = info.get("is_member")
    if member is None:
        member = _listed(client, channel, bot_user)
    if not member:
        return problem(
            SLACK, "channel", f"the bot is not in {name} ({setting}): run /invite @arbot in {name}"
        )
    return ok(SLACK, "channel", f"the bot is in {name} ({setting})")


def _listed(client: WebClient, channel: str, bot_user: str) -> bool:
    """Whether `bot_user` is among the channel's members, page by page."""
    cursor = ""
    while True:
        page = client.conversations_members(channel=channel, cursor=cursor or None, limit=200)
        if bot_user in (page.get("members") or []):
            return True
        cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            return False


def _token_refused(error: str) -> str:
    if error in ("invalid_auth", "not_authed"):
        return (
            f"Slack does not know SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token "
            "(xoxb-…) from the app's OAuth & Permissions page"
        )
    if error in ("token_revoked", "account_inactive", "token_expired"):
        return (
            f"Slack says SLACK_BOT_TOKEN is dead ({error}): reinstall the app and set "
            "SLACK_BOT_TOKEN to its new bot token"
        )
    return f"Slack refused SLACK_BOT_TOKEN ({error})"


def _error(exc: SlackApiError) -> str:
    data: Any = getattr(exc.response, "data", None)
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else str(exc)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return ", ".join(value) if isinstance(value, list) else str(value)
    return None
