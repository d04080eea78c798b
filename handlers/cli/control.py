"""`arbot control status` and `arbot control end`: the randomized holdout (ARBOT_CONTROL_SHARE),
how it stands, and ending it."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.core.errors import UserError
from handlers.cli.app import Json, opened_runtime, out, print_json

if TYPE_CHECKING:
    from bot.planning.control import HoldoutStatus

control_app = typer.Typer(
    help="The control group (ARBOT_CONTROL_SHARE): how it stands, and ending it.",
    no_args_is_help=True,
)

ACTOR_LIMIT = 64  # an audit event's actor


@control_app.command("status")
def control_status(as_json: Json = False) -> None:
    """The share in force and since when, and how many customers are in each group."""
    from bot.planning.control import holdout_status

    with opened_runtime() as runtime, runtime.sessions() as session:
        status = holdout_status(session, runtime.settings.control_share)
    if as_json:
        print_json(status_json(status))
        return
    out().print("\n".join(status_lines(status)), markup=False, soft_wrap=True)


def status_lines(status: HoldoutStatus) -> list[str]:
    configured = f"ARBOT_CONTROL_SHARE is {status.configured.normalize():f}"
    if status.share is None or status.started is None or status.share_since is None:
        return [f"No control group was ever drawn ({configured})."]
    groups = [
        f"  control: {status.control} customer{'s' if status.control != 1 else ''}",
        f"  followed: {status.followed} customer{'s' if status.followed != 1 else ''}",
    ]
    if status.ended is not None:
        return [
            f"The holdout ended on {status.ended.at:%Y-%m-%d %H:%M} UTC (by {status.ended.by}); "
            f"it ran from {status.started:%Y-%m-%d}. Its control group is followed up since; "
            "the report compares the weeks it ran.",
            *groups,
            f"{configured}: a non-zero share starts a new holdout with a new draw.",
        ]
    return [
        f"The holdout runs since {status.started:%Y-%m-%d}: share "
        f"{status.share.normalize():f} since {status.share_since:%Y-%m-%d %H:%M} UTC "
        f"({configured}).",
        groups[0] + " (observed only)",
        groups[1],
    ]


def status_json(status: HoldoutStatus) -> dict[str, Any]:
    ended = status.ended
    return {
        "configured_share": f"{status.configured.normalize():f}",
        "share": None if status.share is None else f"{status.share.normalize():f}",
        "share_since": status.share_since.isoformat() if status.share_since else None,
        "started": status.started.isoformat() if status.started else None,
        "ended": None if ended is None else {"at": ended.at.isoformat(), "by": ended.by},
        "groups": {"control": status.control, "followed": status.followed},
    }


@control_app.command("end")
def control_end(
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who ends it, for the audit log (default: your OS user)."),
    ] = None,
) -> None:
    """End the holdout: its control group is followed up from the next plan, and nobody is
    drawn any more. The report keeps comparing the weeks it ran. Set ARBOT_CONTROL_SHARE to 0
    first; a later non-zero share starts a new holdout with a new draw."""
    from bot.planning.control import end_holdout

    who = (by if by is not None else getpass.getuser()).strip()
    if not who or len(who) > ACTOR_LIMIT:
        raise UserError(f"--by needs a name of 1 to {ACTOR_LIMIT} characters")
    with opened_runtime() as runtime, runtime.writing() as session:
        counts = end_holdout(session, who, runtime.clock.now(), runtime.settings.control_share)
    control = counts["control"]
    out().print(
        f"Holdout ended by {who}: the {control} customer{'s' if control != 1 else ''} of its "
        "control group are followed up from the next plan. The report compares the weeks it "
        "ran.",
        markup=False,
        soft_wrap=True,
    )
