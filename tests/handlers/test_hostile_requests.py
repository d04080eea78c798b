"""Requests from a hostile world, through the real app under uvicorn: Slack's signature is judged
before a Slack body is read for anything else, so junk gets 401 and one log line, never a 500 or a
traceback; every body has a limit, refused with 413 before the rest is read; /healthz tells
anyone only whether the replica is healthy; the install page stores nothing and cannot be hammered."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from starlette.types import Message, Receive, Scope, Send

from bot.core.clock import FixedClock
from bot.core.models import slack_oauth_states
from bot.core.runtime import Runtime
from bot.workspaces.registry import Workspaces
from handlers.body_limits import SMALL_BODY_BYTES, BodyLimitMiddleware, BodyLimits
from handlers.slack.install import INSTALLS_PER_MINUTE
from tests.support import stripe_requests as sr
from tests.support.asgi_calls import asgi_calls
from tests.support.fake_http import local_client
from tests.support.hostile import (
    HEALTH_TOKEN,
    INBOUND_SECRET,
    deployment_with_every_secret,
    tracebacks,
)
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE, SlackRequests, wait_for
from tests.support.workspace_setup import BETA

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


@pytest.fixture
def deployment_with_secrets(
    database_url: str, slack_api: Any, clock: FixedClock
) -> Iterator[tuple[Runtime, Workspaces]]:
    """Every webhook's secret set, and workspace Beta installed."""
    with deployment_with_every_secret(database_url, slack_api, clock) as deployment:
        yield deployment


@pytest.fixture
def site(deployment_with_secrets: tuple[Runtime, Workspaces]) -> Iterator[tuple[Runtime, str]]:
    """That deployment served by uvicorn: its main runtime and base URL."""
    main, workspaces = deployment_with_secrets
    with serve(main, workspaces) as url:
        main.settings.public_url = url
        yield main, url


def request_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "arbot.http"]


# --- Slack: the signature first -----------------------------------------------------------------


@pytest.mark.parametrize("timestamp", ["abc", "", "1e10", "1.5", "+1", "9" * 5000])
def test_a_slack_timestamp_that_is_not_a_number_gets_401_in_one_log_line(
    served: SlackRequests, caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    caplog.set_level(logging.INFO)
    response = served.client.post(
        served.url,
        content=b"payload=%7B%7D",
        headers={
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": "v0=00",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 401
    # the server logs the request just after it answers
    (line,) = wait_for(lambda: request_lines(caplog))
    assert line.startswith("POST /slack/events 401 ")
    assert tracebacks(caplog) == []


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe", b"payload=\xff" + b"%7B%7D", b"payload=" + b"[" * 100_000, b"[" * 100_000],
    ids=["not-utf8", "payload-not-utf8", "deep-payload", "deep-json"],
)
def test_an_unsigned_slack_body_arbot_cannot_read_gets_401_before_it_is_parsed(
    served: SlackRequests, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    caplog.set_level(logging.INFO)
    for content_type in ("application/x-www-form-urlencoded", "application/json"):
        response = served.client.post(
            served.url,
            content=body,
            headers={
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
                "Content-Type": content_type,
            },
        )
        assert response.status_code == 401
    assert tracebacks(caplog) == []


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"type": "block_actions", "team": 5, "user": {"id": "U0APPROVER"}},
        {"type": "shortcut", "authorizations": ["x"], "team": None},
        {"type": "view_submission", "team": {"id": ["T0TEST"]}, "enterprise": 7},
    ],
    ids=["list", "team-number", "authorizations-of-strings", "team-id-list"],
)
def test_a_signed_payload_bolt_cannot_read_is_refused_in_one_line_without_a_traceback(
    served: SlackRequests, caplog: pytest.LogCaptureFixture, payload: Any
) -> None:
    caplog.set_level(logging.INFO)
    response = served.interactive(payload)
    assert response.status_code in (200, 400)  # a button is acked before Bolt reads it
    wait_for(lambda: any("could not be read" in r.getMessage() for r in caplog.records))
    assert tracebacks(caplog) == []


def test_a_signed_body_nested_past_pythons_recursion_limit_gets_400(
    served: SlackRequests, caplog: pytest.LogCaptureFixture
) -> None:
    body = "payload=" + "[" * 100_000
    response = served.send(body, "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert tracebacks(caplog) == []


# --- Every body has a limit ---------------------------------------------------------------------


def _raw_request(url: str, path: str, head: dict[str, str]) -> socket.socket:
    parts = urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        *(f"{k}: {v}" for k, v in head.items()),
    ]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return connection


def _answer(connection: socket.socket) -> tuple[int, str]:
    """The status and text of the answer, read until the server closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    connection.close()
    head, _, text = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), text.decode()


@pytest.mark.parametrize(
    "path", ["/webhooks/stripe", "/slack/events", f"/w/{BETA}/webhooks/stripe"]
)
def test_a_body_declared_over_the_limit_gets_413_before_any_of_it_is_sent(
    site: tuple[Runtime, str], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO)
    _, url = site
    connection = _raw_request(
        url, path, {"Content-Type": "application/json", "Content-Length": str(100 * 1024 * 1024)}
    )
    status, text = _answer(connection)  # not one byte of the 100 MB was sent
    assert status == 413 and str(SMALL_BODY_BYTES) in text
    # one line, naming the route (the request never reached it)
    (line,) = wait_for(lambda: request_lines(caplog))
    route = path.removeprefix(f"/w/{BETA}")
    assert line.startswith(f"POST {route} 413 "), line


def test_a_chunked_body_is_refused_with_413_once_it_passes_the_limit(
    site: tuple[Runtime, str],
) -> None:
    _, url = site
    connection = _raw_request(
        url,
        "/webhooks/twilio/sms",
        # a signature (any) makes the route read the body, which Twilio's signature covers
        {
            "Transfer-Encoding": "chunked",
            "Content-Type": "text/plain",
            "X-Twilio-Signature": "c2lnbmVk",
        },
    )
    chunk = b"x" * 65536
    sent = 0
    try:  # far past the limit: the server stops reading once it has answered
        while sent < 20 * SMALL_BODY_BYTES:
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except OSError:
        pass
    status, _ = _answer(connection)
    assert status == 413
    assert sent < 20 * SMALL_BODY_BYTES  # the connection was closed on the sender


def test_an_unsigned_text_is_refused_without_its_body_being_read(
    site: tuple[Runtime, str],
) -> None:
    """A chunked body left unfinished: the answer comes all the same, so nothing waited for it."""
    _, url = site
    connection = _raw_request(
        url, "/webhooks/twilio/sms", {"Transfer-Encoding": "chunked", "Content-Type": "text/plain"}
    )
    chunk = b"From=%2B15555550100&Body=hi"
    connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # and never the last chunk
    received = b""
    while b"\r\n" not in received and (more := connection.recv(65536)):
        received += more
    connection.close()
    assert received.split(b" ")[1] == b"401"


def test_inbound_mail_has_a_limit_of_its_own_named_by_its_setting(
    site: tuple[Runtime, str],
) -> None:
    main, url = site
    headers = {"Authorization": f"Bearer {INBOUND_SECRET}", "Content-Type": "message/rfc822"}
    # A one-word reply over 2 MB of quoted history: its size is what counts here, and triage
    # reads only the reply's own words (its hundred rules took 8 s over 2 MB of own words).
    big = b"Subject: big\r\n\r\nNoted.\r\n\r\n> " + b"x" * (2 * SMALL_BODY_BYTES) + b"\r\n"
    with local_client(base_url=url, timeout=PATIENCE) as client:
        # above Slack's and Stripe's 1 MB, well under the default 25 MB: read, not refused
        assert client.post("/webhooks/email", content=big, headers=headers).status_code != 413
        main.settings.inbound_email_max_bytes = SMALL_BODY_BYTES
    # the limit is read when the app is made
    with serve(main, Workspaces(main)) as smaller, local_client(base_url=smaller) as client:
        for path in ("/webhooks/email", f"/w/{BETA}/webhooks/email"):
            refused = client.post(path, content=big, headers=headers, timeout=PATIENCE)
            assert refused.status_code == 413, path
            assert "ARBOT_INBOUND_EMAIL_MAX_BYTES" in refused.text


def test_a_content_length_that_is_not_one_number_gets_400_and_the_app_never_runs() -> None:
    answered: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app must not run")

    async def send(message: Message) -> None:
        answered.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    middleware = BodyLimitMiddleware(app, BodyLimits())
    for bad in ([b"12abc"], [b"-1"], [b"1e6"], [b"\xff"], [b"5", b"6"]):
        headers = [(b"content-length", value) for value in bad]
        scope = {"type": "http", "path": "/webhooks/stripe", "headers": headers}
        asyncio.run(middleware(scope, receive, send))
        assert answered[0]["status"] == 400, bad
        answered.clear()


# --- /healthz: ok or not, for anyone ----------------------------------------------------------


def test_healthz_tells_anyone_only_ok_and_names_the_workspaces_only_to_its_token(
    site: tuple[Runtime, str],
) -> None:
    _, url = site
    anyone = httpx.get(f"{url}/healthz", timeout=PATIENCE)
    assert anyone.status_code == 200 and anyone.json() == {"status": "ok"}
    assert BETA not in anyone.text
    operator = httpx.get(
        f"{url}/healthz", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}, timeout=PATIENCE
    )
    assert operator.json()["workspaces"] == {BETA: "ok"}


# --- /slack/install: nothing stored, and a bound per address ---------------------------------


def _oauth_states(main: Runtime) -> int:
    with main.sessions() as session:
        return session.scalar(select(func.count()).select_from(slack_oauth_states)) or 0


def test_anonymous_visits_to_the_install_page_store_nothing_and_are_bounded_per_address(
    deployment_with_secrets: tuple[Runtime, Workspaces], clock: FixedClock
) -> None:
    main, workspaces = deployment_with_secrets
    with asgi_calls(main, workspaces) as app:
        statuses = [app.call("GET", "/slack/install").status for _ in range(500)]
        assert _oauth_states(main) == 0
        assert statuses.count(200) == INSTALLS_PER_MINUTE
        assert statuses.count(429) == 500 - INSTALLS_PER_MINUTE
        assert "Wait a minute" in app.call("GET", "/slack/install").text
        another = app.call("GET", "/slack/install", client=("192.0.2.7", 40000))
        assert another.status == 200  # the bound is per address
        clock.advance(timedelta(seconds=61))
        assert app.call("GET", "/slack/install").status == 200
    assert _oauth_states(main) == 0


def _issued_state(client: httpx.Client) -> str:
    page = client.get("/slack/install").text
    link = page.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    return parse_qs(urlsplit(link).query)["state"][0]


def test_an_install_state_that_is_tampered_with_or_too_old_is_refused(
    site: tuple[Runtime, str], clock: FixedClock, slack_api: Any
) -> None:
    _, url = site
    slack_api.grant("code-x", "T0GAMMA", "xoxb-gamma")
    with local_client(base_url=url, timeout=PATIENCE) as browser:
        state = _issued_state(browser)
        forged = state[:-1] + ("0" if state[-1] != "0" else "1")
        browser.cookies.set("arbot_slack_state", forged, path="/slack")
        tampered = browser.get("/slack/oauth_redirect", params={"code": "code-x", "state": forged})
        assert tampered.status_code == 400 and "expired" in tampered.text

        state = _issued_state(browser)
        clock.advance(timedelta(minutes=11))
        browser.cookies.set("arbot_slack_state", state, path="/slack")
        late = browser.get("/slack/oauth_redirect", params={"code": "code-x", "state": state})
        assert late.status_code == 400 and "expired" in late.text


# --- /w/<team id>/: garbage is simply not a workspace ------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["/w/", "/w/t0beta/", "/w/T0BETA%0A/", "/w/%00/", "/w/" + "T" * 5000 + "/", "/w/%FF/"]
)
def test_a_workspace_prefix_that_is_not_a_team_id_gets_404(
    site: tuple[Runtime, str], caplog: pytest.LogCaptureFixture, prefix: str
) -> None:
    _, url = site
    body = sr.event("checkout.session.completed", sr.checkout_completed(100, [1]))
    answer = httpx.post(
        f"{url}{prefix}webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": sr.signature(body)},
        timeout=PATIENCE,
    )
    assert answer.status_code == 404
    assert tracebacks(caplog) == []


def test_a_signed_slack_request_still_works_within_the_limits(site: tuple[Runtime, str]) -> None:
    _, url = site
    slack = SlackRequests(url)
    try:
        check = json.dumps({"type": "url_verification", "challenge": "c-1"})
        answer = slack.send(check, "application/json")
        assert answer.status_code == 200 and answer.json() == {"challenge": "c-1"}
    finally:
        slack.close()


@pytest.mark.parametrize(
    "team_id", [5, ["T0BETA"], {"id": "T0BETA"}, "T0BETA\n"], ids=["number", "list", "dict", "nl"]
)
def test_a_signed_event_whose_team_id_is_not_a_team_id_goes_to_the_main_app(
    site: tuple[Runtime, str], caplog: pytest.LogCaptureFixture, team_id: Any
) -> None:
    _, url = site
    slack = SlackRequests(url)
    try:
        event = {"type": "event_callback", "team_id": team_id, "event": {"type": "app_mention"}}
        answer = slack.send(json.dumps(event), "application/json")
    finally:
        slack.close()
    assert answer.status_code == 403  # the main app's answer to a workspace not its own
    assert tracebacks(caplog) == []
