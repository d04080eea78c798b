"""Installing arbot into another Slack workspace: trade Slack's one-time code for the workspace's
token, check the install, make the workspace's storage, keep the token (sealed) and note the
workspace. Slack is reached through the SlackInstalls port (integrations.slack_install)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core.errors import UserError
from bot.workspaces import installs
from bot.workspaces.registry import TEAM_ID, InstalledWorkspace, Workspaces
from integrations.base.slack import SlackGrant, SlackInstalls
from integrations.errors import InstallFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    workspace: InstalledWorkspace
    reinstalled: bool


def complete_install(workspaces: Workspaces, slack: SlackInstalls, code: str) -> Installed:
    """Trade the one-time code for the workspace's bot token; make the workspace's storage
    first, then store the token sealed and note the workspace, so an install that fails half-way
    leaves nothing behind. A token Slack granted for an install arbot refuses is revoked, unless
    a workspace is served with it: Slack grants the same bot token again when the app is added
    again to a workspace it is in, so adding it to the main workspace (SLACK_BOT_TOKEN's) or an
    installed one's reinstall that fails would otherwise cut that workspace off from Slack."""
    grant = slack.exchange_code(code)
    in_use = serves_a_workspace(workspaces, grant)
    try:
        return _keep(workspaces, slack, grant, in_use)
    except BaseException:
        if in_use:
            log.warning(
                "install into %s did not finish; its token stays: it is in use", grant.team_id
            )
        else:
            slack.revoke(grant.token)  # whatever stopped the install, the token goes back
        raise


def serves_a_workspace(workspaces: Workspaces, grant: SlackGrant) -> bool:
    """Whether the granted token is one a workspace is served with now (read before anything of
    this install is stored): SLACK_BOT_TOKEN, or the token of the installed workspace it is for."""
    main_token = workspaces.main.settings.slack_bot_token
    if main_token is not None and grant.token == main_token.get_secret_value():
        return True
    if not TEAM_ID.match(grant.team_id or ""):
        return False
    installed = workspaces.get(grant.team_id)
    if installed is None or not installed.active:
        return False
    return bool(grant.token) and grant.token == installs.bot_token(workspaces.main, grant.team_id)


def _keep(
    workspaces: Workspaces, slack: SlackInstalls, grant: SlackGrant, in_use: bool = False
) -> Installed:
    """Check the install, make the workspace's storage, store the token and note the workspace.
    A failure after the token is stored takes it out again (unless `in_use`: the workspace is
    served with that token)."""
    team_id = grant.team_id
    refusal = _refusal(slack, grant)
    if refusal:
        raise InstallFailed(refusal)
    before = workspaces.get(team_id)
    try:
        workspaces.prepare(team_id)
    except UserError:  # a setting to fix (ARBOT_SECRET_KEY, DATABASE_URL): it says which
        raise
    except Exception as exc:
        log.exception("workspace %s: its database could not be made", team_id)
        raise InstallFailed(
            f"arbot could not make this workspace's database ({type(exc).__name__}: {exc}); "
            "nothing was installed. Tell whoever runs arbot"
        ) from None
    slack.keep(grant)
    try:
        workspace = workspaces.record_install(
            team_id, grant.team_name or team_id, grant.channel_id, grant.installer
        )
    except BaseException:  # its token is revoked (above): keep none of it
        if not in_use:
            slack.forget(team_id)
        raise
    log.info("installed into workspace %s", team_id)
    return Installed(workspace, reinstalled=before is not None)


def _refusal(slack: SlackInstalls, grant: SlackGrant) -> str | None:
    """Why arbot will not take this install, or None."""
    if grant.enterprise:
        return (
            "arbot installs into standalone workspaces; workspaces of an Enterprise Grid "
            "organisation are not supported"
        )
    if not TEAM_ID.match(grant.team_id):
        return f"Slack named no usable workspace ({grant.team_id!r})"
    if grant.team_id == slack.main_team():
        return (
            f"workspace {grant.team_id} is already the main one (SLACK_BOT_TOKEN): its data is in "
            "the main database, so there is nothing to install"
        )
    return None
