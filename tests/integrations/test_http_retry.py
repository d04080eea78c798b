"""Retrying one request to a source's API (integrations.http_retry), against a local server that
answers from a script: rate limits, server errors, dropped connections and garbled answers."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from integrations.errors import SourceUnavailable
from integrations.http_retry import Retries
from tests.support.fake_http import JsonHandler, LocalServer, local_client
from tests.support.slack_requests import PATIENCE

DROP = "drop"  # close the connection without answering
GARBLE = "garble"  # a 200 whose gzip body is not gzip


class ScriptedHandler(JsonHandler):
    script: ScriptedServer

    def do_GET(self) -> None:
        self._next()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._next()

    def _next(self) -> None:
        answer = self.script.next(self.command)
        if isinstance(answer, tuple):
            status, retry_after = answer
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif answer == GARBLE:
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", "8")
            self.end_headers()
            self.wfile.write(b"not gzip")
        else:
            self.close_connection = True


Answer = str | tuple[int, str | None]


class ScriptedServer(LocalServer):
    """Answers each request with the next of `answers`, then 200; records the methods."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.methods: list[str] = []
        self.lock = threading.Lock()
        super().__init__(type("Handler", (ScriptedHandler,), {"script": self}))

    def next(self, method: str) -> Answer:
        with self.lock:
            self.methods.append(method)
            return self.answers.pop(0) if self.answers else (200, None)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    fake = ScriptedServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with local_client(timeout=PATIENCE) as client:
        yield client


class Caller:
    """Sends one request the way the clients do, recording (not taking) each sleep."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.sleeps: list[float] = []

    def retries(
        self, repeatable: bool, resendable: type[httpx.HTTPError] = httpx.HTTPError
    ) -> Retries:
        return Retries(
            label="Acme CRM",
            repeatable=repeatable,
            sleep=self.sleeps.append,
            max_wait=60.0,
            asked_wait=lambda response: (
                float(response.headers["Retry-After"])
                if "Retry-After" in response.headers
                else None
            ),
            when_to_retry=lambda wait: f"try again in {wait / 60:.0f} minutes",
            log=logging.getLogger("tests.acme_crm"),
            resendable=resendable,
        )

    def answer(self, method: str, url: str, retries: Retries) -> httpx.Response:
        while True:
            response = retries.send(lambda: self.http.request(method, url))
            if not retries.again(response):
                return response


@pytest.fixture
def caller(http: httpx.Client) -> Caller:
    return Caller(http)


def test_a_rate_limit_is_waited_out_as_long_as_the_answer_asks_then_the_request_repeats(
    server: ScriptedServer, caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    server.answers = [(429, "7")]

    with caplog.at_level(logging.WARNING, logger="tests.acme_crm"):
        response = caller.answer("GET", server.url, caller.retries(repeatable=True))

    assert response.status_code == 200
    assert caller.sleeps == [7.0]
    assert server.methods == ["GET", "GET"]
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("tests.acme_crm", "Acme CRM rate limit: waiting 7.0 s")
    ]


def test_a_rate_limit_that_does_not_say_how_long_waits_longer_each_time_three_times_at_most(
    server: ScriptedServer, caller: Caller
) -> None:
    server.answers = [(429, None)] * 4

    response = caller.answer("POST", server.url, caller.retries(repeatable=False))

    assert response.status_code == 429
    assert caller.sleeps == [5.0, 10.0, 15.0]
    assert server.methods == ["POST"] * 4


def test_a_wait_beyond_the_cap_raises_with_the_clients_advice_and_does_not_sleep(
    server: ScriptedServer, caller: Caller
) -> None:
    server.answers = [(429, "600")]

    with pytest.raises(
        SourceUnavailable,
        match=r"^Acme CRM is rate limiting arbot for 600 s more: try again in 10 minutes$",
    ):
        caller.answer("GET", server.url, caller.retries(repeatable=True))
    assert caller.sleeps == []


def test_a_server_error_on_a_read_is_retried_twice_then_returned(
    server: ScriptedServer, caller: Caller
) -> None:
    server.answers = [(500, None)] * 3

    response = caller.answer("GET", server.url, caller.retries(repeatable=True))

    assert response.status_code == 500
    assert caller.sleeps == [1.0, 2.0]
    assert len(server.methods) == 3


def test_a_write_is_repeated_after_a_503_but_not_after_another_server_error(
    server: ScriptedServer, caller: Caller
) -> None:
    server.answers = [(503, None), (502, None)]

    response = caller.answer("POST", server.url, caller.retries(repeatable=False))

    assert response.status_code == 502
    assert caller.sleeps == [1.0]
    assert server.methods == ["POST", "POST"]


def test_a_provider_that_cannot_be_reached_is_tried_three_times_even_for_a_write(
    caller: Caller,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
        port = unused.getsockname()[1]
        with pytest.raises(
            SourceUnavailable,
            match=r"^cannot reach Acme CRM \(ConnectError\): check the network and try again$",
        ):
            caller.answer("POST", f"http://127.0.0.1:{port}", caller.retries(repeatable=False))
    assert caller.sleeps == [1.0, 2.0]


def test_a_dropped_connection_is_resent_for_a_repeatable_request_only(
    server: ScriptedServer, caller: Caller
) -> None:
    server.answers = [DROP]
    assert caller.answer("GET", server.url, caller.retries(repeatable=True)).status_code == 200
    assert caller.sleeps == [1.0]

    server.answers = [DROP]
    with pytest.raises(SourceUnavailable, match=r"cannot reach Acme CRM \(RemoteProtocolError\)"):
        caller.answer("POST", server.url, caller.retries(repeatable=False))
    assert caller.sleeps == [1.0]
    assert server.methods == ["GET", "GET", "POST"]


def test_a_garbled_answer_is_resent_only_when_the_client_counts_it_resendable(
    server: ScriptedServer, caller: Caller
) -> None:
    server.answers = [GARBLE]
    assert caller.answer("GET", server.url, caller.retries(repeatable=True)).status_code == 200
    assert caller.sleeps == [1.0]

    server.answers = [GARBLE]
    transport_only = caller.retries(repeatable=True, resendable=httpx.TransportError)
    with pytest.raises(SourceUnavailable, match=r"cannot reach Acme CRM \(DecodingError\)"):
        caller.answer("GET", server.url, transport_only)
    assert caller.sleeps == [1.0]
