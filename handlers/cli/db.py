"""`arbot db upgrade`: the schema brought up to date, the main database's and every workspace's."""

from __future__ import annotations

from handlers.cli.app import db_app, out


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date, the main one and every installed workspace's
    (arbot also does this itself when it starts)."""
    from bot.core import migrate
    from bot.core.db import make_engine
    from bot.core.runtime import opening
    from bot.core.settings import load_settings

    settings = load_settings(workspace=None)
    engine = make_engine(settings.database_url)
    try:
        with opening(settings.database_url):
            before = migrate.current_revision(engine)
            applied = migrate.upgrade(engine)
            after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    if applied:
        out().print(f"Database upgraded from {before or 'empty'} to {after}.")
    else:
        out().print(f"Database already up to date ({after}).")
    from handlers.cli.workspaces import upgrade_workspaces

    for team_id in upgrade_workspaces(load_settings(workspace=None)):
        out().print(f"Workspace {team_id}: up to date ({after}).")
