"""`arbot workspace …`: the Slack workspaces installed through /slack/install, and each one's own
settings (stored sealed). Every other command works on one workspace: the main one, or the one
ARBOT_WORKSPACE names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bot.core.errors import UserError
from handlers.cli.app import out

if TYPE_CHECKING:
    from bot.core.settings import Settings
    from bot.workspaces.registry import Workspaces

workspace_app = typer.Typer(
    help="The Slack workspaces installed here (several businesses on one deployment).",
    no_args_is_help=True,
)
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")


def _workspaces() -> Workspaces:
    from bot.core.runtime import start
    from bot.core.settings import load_settings
    from bot.workspaces.registry import Workspaces

    settings = load_settings(workspace=None)
    return Workspaces(start(settings))


def _shown(variable: str, value: str) -> str:
    if any(word in variable for word in SECRET_WORDS):
        return "•••• (set)"
    return value


@workspace_app.command("list")
def list_command() -> None:
    """Every workspace installed here: id, name, finance channel, when, and whether active."""
    workspaces = _workspaces()
    try:
        found = workspaces.all()
    finally:
        workspaces.main.close()
    if not found:
        out().print("No workspace installed through /slack/install (the main one needs none).")
        return
    table = Table("workspace", "name", "finance channel", "installed (UTC)", "state")
    for w in found:
        table.add_row(
            w.team_id,
            w.team_name,
            w.finance_channel or "-",
            w.installed_at.strftime("%Y-%m-%d %H:%M"),
            "active" if w.active else "uninstalled",
        )
    out().print(table)


@workspace_app.command("show")
def show_command(
    team_id: Annotated[str, typer.Argument(help="The workspace id, e.g. T0123ABCD.")],
) -> None:
    """A workspace's own settings (secrets masked)."""
    workspaces = _workspaces()
    try:
        workspace = workspaces.require(team_id)
        own = workspaces.own_settings(team_id)
    finally:
        workspaces.main.close()
    out().print(f"{workspace.team_id} ({workspace.team_name})", markup=False)
    out().print(f"  ARBOT_FINANCE_CHANNEL={workspace.finance_channel or ''} (chosen at install)")
    for variable in sorted(own):
        out().print(f"  {variable}={_shown(variable, own[variable])}", markup=False)
    if not own:
        out().print("  No settings of its own yet: `arbot workspace set` adds them.")


@workspace_app.command("set")
def set_command(
    team_id: Annotated[str, typer.Argument(help="The workspace id, e.g. T0123ABCD.")],
    assignments: Annotated[
        list[str], typer.Argument(help="VARIABLE=value pairs, as in the README's settings table.")
    ],
) -> None:
    """Set some of a workspace's own settings (SMTP, Stripe, timezone, …). All are checked
    first: one bad value changes nothing."""
    from bot.workspaces.registry import settable

    changes: dict[str, str | None] = {}
    for assignment in assignments:
        variable, sep, value = assignment.partition("=")
        if not sep or not variable.strip():
            raise UserError(
                f"{assignment!r}: write VARIABLE=value, e.g. ARBOT_TIMEZONE=Europe/Paris"
            )
        settable(variable.strip())
        changes[variable.strip().upper()] = value
    _change(team_id, changes)


@workspace_app.command("unset")
def unset_command(
    team_id: Annotated[str, typer.Argument(help="The workspace id, e.g. T0123ABCD.")],
    variables: Annotated[list[str], typer.Argument(help="The variables to clear.")],
) -> None:
    """Clear some of a workspace's own settings (they go back to their defaults)."""
    from bot.workspaces.registry import settable

    for variable in variables:
        settable(variable)
    _change(team_id, {v.upper(): None for v in variables})


def _change(team_id: str, changes: dict[str, str | None]) -> None:
    workspaces = _workspaces()
    try:
        stored = workspaces.set_settings(team_id, changes)
    finally:
        workspaces.main.close()
    for variable, value in changes.items():
        if value is None:
            out().print(f"{team_id}: {variable} cleared", markup=False)
        else:
            out().print(f"{team_id}: {variable}={_shown(variable, value)}", markup=False)
    out().print(f"{team_id} now has {len(stored)} setting(s) of its own.", markup=False)


def upgrade_workspaces(settings: Settings) -> list[str]:
    """`arbot db upgrade` for every installed workspace's data; the ids done."""
    from bot.core.runtime import start
    from bot.workspaces.registry import Workspaces

    workspaces = Workspaces(start(settings))
    try:
        done = []
        for workspace in workspaces.installed():
            workspaces.runtime(workspace.team_id)  # opening migrates
            done.append(workspace.team_id)
        return done
    finally:
        workspaces.close()
        workspaces.main.close()
