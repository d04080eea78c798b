"""Structured logs: one JSON object per line with the request id of the request being handled,
secret settings masked wherever they appear, and the request-id middleware that sets the id,
returns it, and logs each request by its route (never a token in a path)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.core.logs import request_id, secrets_of, setup_logging
from bot.core.settings import load_settings
from handlers.request_ids import request_id_middleware

TOKEN = "xoxb-1111-2222-abcdefghijkl"


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Everything logged during the test, as arbot writes it in production (JSON lines)."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    stream = io.StringIO()
    setup_logging(json=True, secrets=[TOKEN, "short"], stream=stream)
    yield stream
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def _lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_its_request_id(logged: io.StringIO) -> None:
    log = logging.getLogger("bot.example")
    log.info("outside any request")
    token = request_id.set("req-42")
    try:
        log.warning("posted %d cards", 3)
    finally:
        request_id.reset(token)

    first, second = _lines(logged)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["time"].endswith("+00:00") and first["message"] == "outside any request"
    assert second == second | {
        "level": "WARNING",
        "logger": "bot.example",
        "message": "posted 3 cards",
        "request_id": "req-42",
    }


def test_secret_values_are_masked_in_messages_and_tracebacks(logged: io.StringIO) -> None:
    log = logging.getLogger("bot.example")
    log.info("calling Slack with %s", TOKEN)
    try:
        raise RuntimeError(f"invalid_auth for token {TOKEN}")
    except RuntimeError:
        log.exception("posting failed")

    text = logged.getvalue()
    assert TOKEN not in text
    message, failure = _lines(logged)
    assert message["message"] == "calling Slack with ***"
    assert "RuntimeError: invalid_auth for token ***" in failure["exception"]
    assert "Traceback" in failure["exception"]


def test_a_short_value_is_not_treated_as_a_secret(logged: io.StringIO) -> None:
    logging.getLogger("bot.example").info("a short answer")
    assert _lines(logged)[0]["message"] == "a short answer"


def test_the_secrets_are_the_values_of_the_secret_settings_that_are_set() -> None:
    settings = load_settings(
        env_file=None, slack_bot_token=TOKEN, smtp_password="relay-password", smtp_user="arbot"
    )
    assert sorted(secrets_of(settings)) == ["relay-password", TOKEN]


def _get(*requests: tuple[str, dict[str, str]]) -> list[httpx.Response]:
    """Send the requests in order through the app, in-process."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://arbot") as client:
            return [await client.get(path, headers=headers) for path, headers in requests]

    return asyncio.run(send())


def _app() -> Starlette:
    async def whoami(request: Request) -> PlainTextResponse:
        logging.getLogger("handlers.example").info("handling")
        return PlainTextResponse(request_id.get() or "")

    return Starlette(
        routes=[Route("/whoami", whoami), Route("/unsubscribe/{token}", whoami)],
        middleware=[request_id_middleware()],
    )


def test_every_request_gets_an_id_in_its_logs_and_its_response(logged: io.StringIO) -> None:
    made_up, kept, refused = _get(
        ("/whoami", {}),
        ("/whoami", {"X-Request-ID": "lb-7f3a.1"}),
        ("/whoami", {"X-Request-ID": "not ok\\n{injected}"}),
    )

    assert made_up.headers["x-request-id"] == made_up.text and len(made_up.text) == 32
    assert kept.headers["x-request-id"] == kept.text == "lb-7f3a.1"
    assert refused.text != "not ok\\n{injected}" and len(refused.text) == 32
    handled = [line for line in _lines(logged) if line["message"] == "handling"]
    assert [line["request_id"] for line in handled] == [made_up.text, "lb-7f3a.1", refused.text]
    assert request_id.get() is None


def test_a_request_is_logged_by_its_route_so_a_token_in_the_path_stays_out(
    logged: io.StringIO,
) -> None:
    [answer] = _get(("/unsubscribe/r42.s3cr3t-signature", {}))

    lines = [line for line in _lines(logged) if line["logger"] == "arbot.http"]
    assert len(lines) == 1
    assert lines[0]["message"].startswith("GET /unsubscribe/{token} 200 in ")
    assert lines[0]["request_id"] == answer.headers["x-request-id"]
    assert "s3cr3t" not in logged.getvalue()
