"""Signed requests with random fields, through the real ASGI app: buttons with every action id arbot
knows (and others) carrying random values of random types, form submissions, `/ar` commands,
events, and Stripe events of random types and field types. Whatever they carry, the answer is never
a 500 and nothing logs a traceback (nor an error).

Each test sends its examples to one served app, then waits for the work behind the last of them
(the clicks' work runs after their ack) before it reads the log."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.core.runtime import Runtime
from bot.core.vocabulary import TIERS
from integrations.slack_ids import Action, Field, Form, approve_all, review_apply
from tests.support import stripe_requests as sr
from tests.support.log_of_test import LogOfTest
from tests.support.slack_requests import SlackRequests, wait_for

pytestmark = pytest.mark.slow  # random signed requests to the served app, many examples each

EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BIG = 10**30

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-BIG, max_value=BIG),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
# What arbot puts in a button's value or a form's metadata, and near misses of it.
id_texts = st.sampled_from(
    [
        "1",
        "2",
        "3",
        "0",
        "-1",
        str(2**31),
        str(BIG),
        "²",
        "\u0661",  # an Arabic-Indic one: int() reads it
        "abc",
        "",
        "1|C0FINANCE",
        "1|",
        "x|C0FINANCE",
        "2026-03-16|standard",
        "2026-03-16|<!channel>",
        "1:1",
        "1:0",
        "1:x",
        f"{BIG}:1",
        "\x00",
    ]
)
anything = st.one_of(id_texts, st.text(max_size=20), json_values)
action_ids = st.one_of(
    st.sampled_from(
        [*Action, *(approve_all(tier) for tier in TIERS), review_apply(1), review_apply(11)]
    ),
    st.text(max_size=12),
)
callback_ids = st.one_of(st.sampled_from([*Form]), st.text(max_size=12))
fields = st.sampled_from([*Field])


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[LogOfTest]:
    """Asked for first, before the app is served (see tests/support/log_of_test.py)."""
    with caplog.at_level(logging.INFO):
        yield LogOfTest(caplog)


def no_failure_logged(log: LogOfTest) -> None:
    assert not log.failures(), "\n".join(log.failures())
    assert "didn't call ack()" not in log.text  # a listener raised after its ack


def all_work_done(served: SlackRequests, slack_api: Any) -> None:
    """Every click's work is done: the clicks are handed to Bolt one at a time, in order, so once
    a last click's answer is seen, the clicks before it have been dispatched; its work then runs
    behind theirs."""
    before = len(slack_api.calls("chat.postEphemeral"))
    served.click(Action.APPROVE, str(2**31 - 1))  # no such reminder: the clicker is told so
    wait_for(
        lambda: any(
            "there is no reminder" in call["text"]
            for call in slack_api.calls("chat.postEphemeral")[before:]
        )
    )


def click(team: str, action_id: Any, value: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": team, "domain": "test"},
        "user": {"id": "U0APPROVER", "team_id": team},
        "api_app_id": "A0ARBOT",
        "container": {"type": "message", "message_ts": "1.0", "channel_id": "C0FINANCE"},
        "trigger_id": "trigger-1",
        "channel": {"id": "C0FINANCE", "name": "finance"},
        "message": {"ts": "1700000000.000100", "text": "plan"},
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
    }


@st.composite
def clicks(draw: st.DrawFn) -> dict[str, Any]:
    payload = click("T0TEST", draw(action_ids), draw(anything))
    for key in draw(
        st.sets(st.sampled_from(["user", "channel", "actions", "message"]), max_size=2)
    ):
        payload[key] = draw(json_values)
    return payload


def test_signed_random_clicks_never_fail(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any
) -> None:
    @FUZZ
    @given(payload=clicks())
    def send(payload: dict[str, Any]) -> None:
        answer = served.interactive(payload)
        assert answer.status_code == 200, answer.text  # a click is acknowledged before it is read

    send()
    all_work_done(served, slack_api)
    no_failure_logged(log)


@st.composite
def submissions(draw: st.DrawFn) -> dict[str, Any]:
    entry = st.dictionaries(
        st.sampled_from(["type", "value", "selected_date", "selected_option"]), anything, max_size=3
    )
    values = draw(
        st.one_of(
            st.dictionaries(fields, st.dictionaries(st.just("value"), entry), max_size=3),
            json_values,
        )
    )
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": "U0APPROVER", "team_id": "T0TEST"},
        "api_app_id": "A0ARBOT",
        "view": {
            "id": "V0",
            "type": "modal",
            "callback_id": draw(callback_ids),
            "private_metadata": draw(anything),
            "state": {"values": values},
        },
    }
    for key in draw(st.sets(st.sampled_from(["user", "view"]), max_size=1)):
        payload[key] = draw(json_values)
    return payload


def test_signed_random_form_submissions_never_fail(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any
) -> None:
    @FUZZ
    @given(payload=submissions())
    def send(payload: dict[str, Any]) -> None:
        answer = served.interactive(payload)
        assert answer.status_code != 500, answer.text

    send()
    all_work_done(served, slack_api)
    no_failure_logged(log)


words = st.one_of(
    st.sampled_from(
        [
            "status",
            "aging",
            "plan",
            "pause",
            "resume",
            "never",
            "automate",
            "assign",
            "report",
            "help",
            "share",
            "Customer",
            "1",
            "C-1",
            "14d",
            "999d",
            "2w",
            str(BIG),
            "²",
            '"',
            "<!channel>",
        ]
    ),
    st.text(max_size=10),
)


def test_signed_random_commands_never_fail(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any
) -> None:
    @FUZZ
    @given(text=st.lists(words, max_size=5).map(" ".join))
    def send(text: str) -> None:
        answer = served.command(text)
        assert answer.status_code == 200, answer.text

    send()
    all_work_done(served, slack_api)
    no_failure_logged(log)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    keys = st.sampled_from(["user", "channel", "thread_ts", "text", "subtype", "bot_id", "tab"])
    event = draw(st.dictionaries(keys, anything, max_size=5))
    event["type"] = draw(st.sampled_from(["message", "app_home_opened"]) | json_values)
    return event


def test_signed_random_events_never_fail(
    log: LogOfTest, posted: Runtime, served: SlackRequests, slack_api: Any
) -> None:
    @FUZZ
    @given(event=events())
    def send(event: dict[str, Any]) -> None:
        answer = served.event(event)
        assert answer.status_code != 500, answer.text

    send()
    before = len(slack_api.calls("views.publish"))  # an event is acknowledged before it is read
    served.event({"type": "app_home_opened", "user": "U0APPROVER", "tab": "home"})
    wait_for(lambda: len(slack_api.calls("views.publish")) > before)
    no_failure_logged(log)


STRIPE_TYPES = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
    "charge.refunded",
    "charge.dispute.created",
]
OBJECT_FIELDS = [
    "id",
    "payment_intent",
    "payment_link",
    "payment_status",
    "reason",
    "currency",
    "amount",
    "amount_total",
    "amount_received",
    "amount_refunded",
    "created",
    "metadata",
]


@st.composite
def stripe_events(draw: st.DrawFn) -> dict[str, Any]:
    sensible = {
        "id": "pi_fuzz",
        "payment_intent": "pi_fuzz",
        "payment_status": "paid",
        "currency": "usd",
        "amount": 1000,
        "amount_total": 1000,
        "amount_received": 1000,
        "amount_refunded": 500,
        "created": 1773669600,
        "metadata": {"arbot_invoice_ids": draw(st.one_of(id_texts, json_values))},
    }
    changed = draw(st.dictionaries(st.sampled_from(OBJECT_FIELDS), anything, max_size=3))
    event: dict[str, Any] = {
        "id": draw(st.one_of(st.just(f"evt_{time.monotonic_ns()}"), anything)),
        "object": "event",
        "type": draw(st.one_of(st.sampled_from(STRIPE_TYPES), anything)),
        "created": draw(st.one_of(st.just(1773669600), anything)),
        "livemode": draw(st.one_of(st.just(False), anything)),
        "data": {"object": {**sensible, **changed}},
    }
    for key in draw(st.sets(st.sampled_from(["data", "id", "type"]), max_size=1)):
        event[key] = draw(json_values)
    return event


def test_signed_random_stripe_events_never_fail(
    log: LogOfTest, posted: Runtime, served: SlackRequests
) -> None:
    posted.settings.stripe_webhook_secret = SecretStr(sr.WEBHOOK_SECRET)
    url = served.url.replace("/slack/events", "/webhooks/stripe")

    @FUZZ
    @given(event=stripe_events())
    def send(event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        answer = served.client.post(
            url, content=body, headers={"Stripe-Signature": sr.signature(body)}
        )
        assert answer.status_code in (200, 400), answer.text

    send()
    no_failure_logged(log)
