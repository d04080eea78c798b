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


# Text written outside arbot (customers, payers, approvers) that Slack would read as a control
# sequence if it reached mrkdwn unescaped: a channel-wide ping, a mention, a disguised link.
CONTROL_SEQUENCES = ("<!channel>", "<!here>", "<@U0EVIL>", "<https://evil.example|ok>", "<script>")
HOSTILE_TEXT = "<!channel> & <!here> <@U0EVIL> <https://evil.example|ok> <script>"


def mrkdwn_texts(payload: Any) -> list[str]:
    """Every text Slack parses as mrkdwn in a payload: a message's notification `text` and every
    text object but plain_text (which shows `<` as it is), in blocks, fields and views."""
    if isinstance(payload, str):
        return [payload]
    found: list[str] = []
    if isinstance(payload, dict):
        plain = payload.get("type") == "plain_text"
        for key, value in payload.items():
            if key == "text" and isinstance(value, str):
                if not plain:
                    found.append(value)
            elif isinstance(value, dict | list):
                found.extend(mrkdwn_texts(value))
    elif isinstance(payload, list):
        for item in payload:
            found.extend(mrkdwn_texts(item))
    return found


def unescaped(payloads: list[Any]) -> list[str]:
    """The mrkdwn texts of `payloads` that carry one of CONTROL_SEQUENCES as Slack would act on it."""
    return [
        text
        for payload in payloads
        for text in mrkdwn_texts(payload)
        if any(sequence in text for sequence in CONTROL_SEQUENCES)
    ]
