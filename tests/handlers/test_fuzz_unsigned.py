"""Every HTTP route of the real app, fuzzed with unsigned requests: random bodies (raw bytes, forms,
JSON, nesting past Python's recursion limit), sent whole or in chunks, with random headers (content
types and lengths, Slack, Stripe and Twilio signatures, Authorization, cookies, request ids),
queries and paths. None of them gets a 500 or writes a traceback, and none changes the database."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.clock import FixedClock
from bot.core.db import make_engine
from bot.core.runtime import Runtime
from bot.workspaces.registry import Workspaces
from tests.conftest import NOW, empty_tables
from tests.support.asgi_calls import AsgiCalls, asgi_calls
from tests.support.fake_slack import FakeSlack
from tests.support.hostile import deployment_with_every_secret, snapshot, tracebacks
from tests.support.kept_schemas import keep_workspace_schemas
from tests.support.workspace_setup import BETA

pytestmark = pytest.mark.slow  # every route, many random requests each

EXAMPLES = 50  # per route: each example is one request through the whole app

ROUTES = [
    ("POST", "/slack/events"),
    ("GET", "/healthz"),
    ("GET", "/slack/install"),
    ("GET", "/slack/oauth_redirect"),
    ("POST", "/webhooks/stripe"),
    ("POST", "/webhooks/email"),
    ("POST", "/webhooks/twilio/sms"),
    ("POST", "/webhooks/twilio/status"),
    ("GET", "/unsubscribe/{token}"),
    ("POST", "/unsubscribe/{token}"),
    ("POST", f"/w/{BETA}/webhooks/stripe"),
    ("POST", f"/w/{BETA}/webhooks/email"),
    ("POST", f"/w/{BETA}/webhooks/twilio/sms"),
    ("POST", f"/w/{BETA}/webhooks/twilio/status"),
    ("GET", f"/w/{BETA}/unsubscribe/{{token}}"),
    ("POST", f"/w/{BETA}/unsubscribe/{{token}}"),
]

HEADER_NAMES = [
    b"content-type",
    b"content-length",
    b"transfer-encoding",
    b"x-slack-signature",
    b"x-slack-request-timestamp",
    b"stripe-signature",
    b"x-twilio-signature",
    b"authorization",
    b"cookie",
    b"x-request-id",
    b"x-forwarded-for",
    b"host",
]
LIKELY_VALUES = [
    b"application/x-www-form-urlencoded",
    b"application/json",
    b"message/rfc822",
    b"multipart/form-data; boundary=x",
    b"text/plain; charset=utf-16",
    b"v0=" + b"0" * 64,
    b"v0=",
    b"t=1,v1=00",
    b"t=99999999999999999999,v1=zz,v0=",
    b"t=,v1=",
    b"Bearer inbound-secret-0",
    b"Basic \xff\xfe",
    b"Basic Og==",
    b"Basic !!!",
    b"arbot_slack_state=1.2.3",
    b"-1",
    b"0",
    b"99999999999999999999999",
    b"1e10",
    b"chunked",
    b"abc",
    b"",
]

header_values = st.one_of(
    st.sampled_from(LIKELY_VALUES),
    st.binary(max_size=80),
    st.integers(min_value=-(10**20), max_value=10**20).map(lambda n: str(n).encode()),
)
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=8)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
slack_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["block_actions", "view_submission", "event_callback", "x"])},
    optional={
        "team": json_values,
        "user": json_values,
        "actions": json_values,
        "event": json_values,
        "team_id": json_values,
        "authorizations": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=512).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    slack_like.map(lambda v: json.dumps(v).encode()),
    slack_like.map(lambda v: b"payload=" + json.dumps(v).encode()),
    st.binary(max_size=256).map(lambda b: b"payload=" + b),
    st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=6).map(
        lambda form: "&".join(f"{k}={v}" for k, v in form.items()).encode()
    ),
    st.sampled_from([b"[", b'{"a":', b"payload=%5B"]).map(lambda s: s * 50_000),
    st.just(b"\x00" * 64),
)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """The body split where the draw says: as a client streaming it might send it."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


# What an HTTP server hands on as a query: printable ASCII (%-escapes stay escaped).
queries = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=64).map(
    str.encode
)
requests = st.tuples(
    headers,
    bodies.flatmap(chunked),
    queries,
    st.text(max_size=40).filter(lambda t: "/" not in t),  # an unsubscribe token
)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Runtime, Workspaces]]:
    """The deployment every test here sends its requests to, made once for the module on each
    database (with Beta installed: on PostgreSQL a schema of its own, migrated, 0.9 s a test):
    each test shows that its requests changed none of its rows, and each gets an app of its own
    (tests/conftest.py's `database_url` empties it the same way at the end)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz_unsigned") / "arbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_schema")
    slack_api = FakeSlack(token="xoxb-test", members=["U0APPROVER", "U0SECOND", "U0MEMBER"])
    slack_api.start()
    try:
        with deployment_with_every_secret(url, slack_api, FixedClock(NOW)) as deployment:
            yield deployment
    finally:
        slack_api.stop()
        if request.param == "postgresql":
            engine = make_engine(url)
            with engine.begin() as connection:
                empty_tables(connection)
                keep_workspace_schemas(connection, url, empty_tables)
            engine.dispose()


@pytest.fixture
def app_and_state(
    deployment: tuple[Runtime, Workspaces],
) -> Iterator[tuple[AsgiCalls, tuple[Runtime, Runtime]]]:
    main, workspaces = deployment
    with asgi_calls(main, workspaces) as app:
        yield app, (main, workspaces.runtime(BETA))


def _assert_unharmed(
    app_and_state: tuple[AsgiCalls, tuple[Runtime, Runtime]],
    caplog: pytest.LogCaptureFixture,
    send: Any,
) -> None:
    app, runtimes = app_and_state
    before = snapshot(*runtimes)
    send(app)
    assert tracebacks(caplog) == []
    assert snapshot(*runtimes) == before


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_no_unsigned_request_to_a_route_gets_a_500_a_traceback_or_changes_anything(
    app_and_state: tuple[AsgiCalls, tuple[Runtime, Runtime]],
    caplog: pytest.LogCaptureFixture,
    method: str,
    route: str,
) -> None:
    caplog.set_level(logging.INFO)

    @FUZZ
    @given(request=requests)
    def one(app: AsgiCalls, request: tuple[Any, list[bytes], bytes, str]) -> None:
        sent_headers, chunks, query, token = request
        path = route.replace("{token}", token)
        answer = app.call(method, path, sent_headers, chunks, query)
        assert answer.status < 500, (answer.status, answer.text[:300])

    _assert_unharmed(app_and_state, caplog, one)


def test_no_unsigned_request_to_any_path_gets_a_500_a_traceback_or_changes_anything(
    app_and_state: tuple[AsgiCalls, tuple[Runtime, Runtime]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "BREW"])
    prefixes = st.sampled_from(
        ["/", "/w/", f"/w/{BETA}/", "/slack/", "/webhooks/", "/unsubscribe/"]
    )
    paths = st.tuples(prefixes, st.text(max_size=60)).map("".join)

    @settings(FUZZ, max_examples=2 * EXAMPLES)
    @given(method=methods, path=paths, request=requests)
    def one(
        app: AsgiCalls, method: str, path: str, request: tuple[Any, list[bytes], bytes, str]
    ) -> None:
        sent_headers, chunks, query, _ = request
        answer = app.call(method, path, sent_headers, chunks, query)
        assert answer.status < 500, (answer.status, answer.text[:300])

    _assert_unharmed(app_and_state, caplog, one)
