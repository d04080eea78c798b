"""For tests of requests from a hostile world: a deployment with every webhook's secret set and a
second workspace installed (so every route and every check behind it runs), a snapshot of every
table to show that nothing changed, and the log records that carry a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Base
from bot.core.runtime import Runtime, start
from bot.workspaces.registry import Workspaces
from tests.support import stripe_requests as sr
from tests.support.workspace_setup import deployment_settings, install

HEALTH_TOKEN = "health-token-1"
INBOUND_SECRET = "inbound-secret-1"
TWILIO_TOKEN = "twilio-token-1"


@contextmanager
def deployment_with_every_secret(
    database_url: str, slack_api: Any, clock: FixedClock
) -> Iterator[tuple[Runtime, Workspaces]]:
    """The main runtime, and the Workspaces with Beta installed."""
    main = start(
        deployment_settings(
            database_url,
            slack_api,
            stripe_webhook_secret=sr.WEBHOOK_SECRET,
            inbound_email_secret=INBOUND_SECRET,
            twilio_auth_token=TWILIO_TOKEN,
            health_token=HEALTH_TOKEN,
        ),
        clock=clock,
    )
    workspaces = Workspaces(main)
    try:
        install(main, workspaces, slack_api)
        yield main, workspaces
    finally:
        workspaces.close()
        main.close()


def snapshot(*runtimes: Runtime) -> list[list[str]]:
    """Every row of every table of each database, in a stable order."""
    tables = []
    for runtime in runtimes:
        with runtime.sessions() as session:
            for table in Base.metadata.sorted_tables:
                tables.append(sorted(repr(tuple(row)) for row in session.execute(select(table))))
    return tables


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages of log records that carry a traceback."""
    return [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
