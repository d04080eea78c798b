"""Slack's entry points. app.py builds the Bolt app for a workspace (`build_bolt`, the one name
the rest of arbot needs, so it is importable from here); kit.py is what every listener is given;
one module per feature registers its listeners: reminders, commands (/ar), home (App Home),
escalations, proposals and reviews. install.py serves the install pages."""

from handlers.slack.app import build_bolt

__all__ = ["build_bolt"]
