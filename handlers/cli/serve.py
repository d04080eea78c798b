"""`arbot serve`: the HTTP app and the scheduler in one process, stopped gracefully by SIGTERM."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bot.core.errors import UserError
from handlers.cli.app import app, err, opened_runtime


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler", help="Serve HTTP only: no send worker, plan, sync or sweeps here."
        ),
    ] = False,
) -> None:
    """Run the Slack app (HTTP, or Socket Mode when SLACK_APP_TOKEN is set), the webhooks,
    /healthz and the scheduled jobs (morning plan, sync, send worker, sweeps, weekly review).
    SIGTERM stops it gracefully: the send worker finishes its tick first."""

    with opened_runtime(workspace=None) as runtime:
        settings = runtime.settings
        several = bool(settings.slack_client_id and settings.slack_client_secret)
        if not settings.slack_signing_secret or not (settings.slack_bot_token or several):
            raise UserError(
                "to serve the Slack app set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (one "
                "workspace), or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (installed through "
                "/slack/install into several), or all of them"
            )
        from bot.core.logs import secrets_of, setup_logging

        setup_logging(json=settings.log_json, secrets=secrets_of(settings))
        from bot.workspaces.registry import Workspaces
        from handlers.app import create_app
        from handlers.cli.stopping import SigtermStop
        from handlers.slack import build_bolt
        from integrations.slack_chat import SlackChat
        from integrations.wiring import slack_client_for
        from scheduler.runner import Runner, start_runner

        workspaces = Workspaces(runtime)
        installed = workspaces.installed()
        if installed:
            names = ", ".join(f"{w.team_name} ({w.team_id})" for w in installed)
            err().print(f"Installed workspaces: {names}.", markup=False)
        elif several:
            where = (
                f"{settings.public_url}/slack/install" if settings.public_url else "/slack/install"
            )
            err().print(f"No workspace installed yet: install arbot at {where}.", markup=False)
        bolt = None
        client = slack_client_for(settings)
        if client is not None:
            bolt = build_bolt(runtime, client)
        # A SIGTERM wherever it lands stops the HTTP server (handlers.cli.stopping); then the scheduler
        # below is stopped in order.
        sigterm = SigtermStop()
        sigterm.install()
        runner: Runner | None = None
        if settings.scheduler_enabled and not no_scheduler:
            slack = SlackChat(client) if client is not None else None
            runner = start_runner(runtime, slack, workspaces=workspaces)
        else:
            err().print("Scheduler off (--no-scheduler or ARBOT_SCHEDULER=false): HTTP only.")
        socket_mode = None
        served = None
        try:
            if settings.slack_app_token and bolt is not None:
                from slack_bolt.adapter.socket_mode import SocketModeHandler

                err().print("Slack Socket Mode: connecting (no public URL needed).")
                socket_mode = SocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
                socket_mode.connect()  # type: ignore[no-untyped-call]
            import uvicorn

            served = create_app(runtime, bolt, runner=runner, workspaces=workspaces)
            config = uvicorn.Config(
                served,
                host=host,
                port=port,
                log_config=None,  # arbot's logging (bot.core.logs) formats every line
                access_log=False,  # raw paths can carry tokens (/unsubscribe/{token})
            )
            sigterm.run(uvicorn.Server(config))
        finally:
            stop_taking_clicks(socket_mode, served)
            if runner is not None:
                runner.stop()
            workspaces.close()


def stop_taking_clicks(socket_mode: Any, served: Any) -> None:
    """Once the HTTP server has stopped taking requests: Socket Mode is closed first (its close
    waits for the messages its threads are handing to Bolt), then what the clicks already taken
    started is finished (handlers.app.finish_work). The other way round, a click Socket Mode
    hands over meanwhile finds Bolt's listener threads shut down and is lost."""
    if socket_mode is not None:
        socket_mode.close()
    if served is not None:
        from handlers.app import finish_work

        finish_work(served)
