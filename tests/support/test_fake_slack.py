"""The fake Slack Web API answers slack_sdk the way slack.com does."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.support.fake_slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.url, timeout=5)


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def button(action_id: str, text: str = "Approve", value: str = "1") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "edit_reminder",
    "title": {"type": "plain_text", "text": "Edit reminder"},
    "blocks": [section("Hello")],
}


def test_url_and_auth_test(fake: FakeSlack, client: WebClient) -> None:
    assert fake.url.startswith("http://127.0.0.1:") and fake.url.endswith("/api/")
    answer = client.auth_test()
    assert answer["ok"] is True
    assert (answer["team_id"], answer["team"]) == ("T0TEST", "Test Team")
    assert (answer["user_id"], answer["bot_id"]) == ("U0BOT", "B0BOT")
    assert answer["url"]
    assert fake.records("auth.test")[0]["headers"]["Authorization"] == "Bearer xoxb-test"


def test_post_then_update_a_message(fake: FakeSlack, client: WebClient) -> None:
    blocks = [section("Invoice INV-1 is 30 days overdue", "b1")]
    first = client.chat_postMessage(channel="C1", text="INV-1 overdue", blocks=blocks)
    second = client.chat_postMessage(channel="C1", text="another", thread_ts=first["ts"])
    assert first["ok"] and first["channel"] == "C1"
    assert first["message"]["text"] == "INV-1 overdue"
    assert first["message"]["blocks"] == blocks
    assert first["message"]["ts"] == first["ts"]
    assert float(second["ts"]) > float(first["ts"])  # unique and increasing
    assert first["ts"].count(".") == 1 and len(first["ts"].split(".")[1]) == 6

    done = [section("Invoice INV-1: reminder sent :white_check_mark:", "b1")]
    updated = client.chat_update(channel="C1", ts=first["ts"], text="sent", blocks=done)
    assert (updated["channel"], updated["ts"], updated["text"]) == ("C1", first["ts"], "sent")

    now = fake.messages[("C1", first["ts"])]
    assert (now["text"], now["blocks"]) == ("sent", done)
    assert fake.messages[("C1", second["ts"])]["thread_ts"] == first["ts"]
    assert [c["text"] for c in fake.calls("chat.postMessage")] == ["INV-1 overdue", "another"]
    assert fake.last("chat.update")["blocks"] == done  # recorded as Python objects
    assert [c["channel"] for c in fake.calls()] == ["C1", "C1", "C1"]

    with pytest.raises(SlackApiError) as refused:
        client.chat_update(channel="C1", ts="1.000000", text="nope")
    assert refused.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as no_channel:
        client.api_call("chat.postMessage", json={"text": "where?"})
    assert no_channel.value.response["error"] == "channel_not_found"


def test_form_encoded_blocks_and_query_string_token(fake: FakeSlack, client: WebClient) -> None:
    blocks = [section("from a form")]
    client.api_call(
        "chat.postMessage", params={"channel": "C2", "text": "t", "blocks": json.dumps(blocks)}
    )
    assert fake.last("chat.postMessage")["blocks"] == blocks
    assert "x-www-form-urlencoded" in fake.records()[-1]["headers"]["Content-Type"]

    url = fake.url + "conversations.info?token=xoxb-test&channel=C2"
    with urllib.request.urlopen(url, timeout=5) as response:  # a plain GET, token in the query
        answer = json.load(response)
    assert answer == {
        "ok": True,
        "channel": answer["channel"] | {"id": "C2", "name": "finance"},
    }


def test_ok_false_raises_slack_api_error(fake: FakeSlack, client: WebClient) -> None:
    fake.expired_triggers.add("trigger-old")
    with pytest.raises(SlackApiError) as expired:
        client.views_open(trigger_id="trigger-old", view=MODAL)
    assert expired.value.response.status_code == 200
    assert expired.value.response.data == {"ok": False, "error": "expired_trigger_id"}

    opened = client.views_open(trigger_id="trigger-new", view=MODAL)
    assert opened["view"]["id"].startswith("V")
    assert opened["view"]["callback_id"] == "edit_reminder"

    wrong = WebClient(token="xoxb-wrong", base_url=fake.url, timeout=5)
    with pytest.raises(SlackApiError) as invalid:
        wrong.chat_postMessage(channel="C1", text="hi")
    assert invalid.value.response["error"] == "invalid_auth"
    missing = WebClient(base_url=fake.url, timeout=5)
    with pytest.raises(SlackApiError) as no_token:
        missing.auth_test()
    assert no_token.value.response["error"] == "invalid_auth"
    assert fake.messages == {}


def test_fail_next_and_unknown_method(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C1", text="hi")
    assert failed.value.response["error"] == "not_in_channel"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]  # only the next call fails

    with pytest.raises(SlackApiError) as unknown:
        client.api_call("chat.scheduleMessage", json={"channel": "C1", "text": "x"})
    assert unknown.value.response["error"] == "unknown_method"


def test_a_429_is_retried_transparently(fake: FakeSlack) -> None:
    fake.rate_limit_next("chat.postMessage", retry_after=0)
    client = WebClient(
        token="xoxb-test",
        base_url=fake.url,
        timeout=5,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    answer = client.chat_postMessage(channel="C1", text="after a 429")
    assert answer["ok"] and answer.status_code == 200
    assert fake.rate_limited_count == 1
    assert [r["status"] for r in fake.records("chat.postMessage")] == [429, 200]
    assert len(fake.messages) == 1  # posted exactly once
    assert next(iter(fake.messages.values()))["text"] == "after a 429"


def test_a_429_without_a_retry_handler_surfaces(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit_next("chat.postMessage", retry_after=7, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as limited:
            client.chat_postMessage(channel="C1", text="hi")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "7"
        assert limited.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    assert fake.rate_limited_count == 2


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        pytest.param([section(f"line {i}") for i in range(51)], "less than 51 items", id="51"),
        pytest.param([section("x" * 3001)], "less than 3001 characters", id="3001-chars"),
        pytest.param(
            [{"type": "actions", "elements": [button("approve"), button("approve")]}],
            "duplicate action_id",
            id="dup-action-id",
        ),
        pytest.param([section("a", "b1"), section("b", "b1")], "duplicate block_id", id="dup-b"),
        pytest.param(
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "less than 11 items",
            id="11-fields",
        ),
        pytest.param(
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "less than 151 characters",
            id="long-header",
        ),
        pytest.param(
            [{"type": "actions", "elements": [button("a", text="b" * 76)]}],
            "less than 76 characters",
            id="long-button",
        ),
        pytest.param(
            [{"type": "actions", "elements": [button(f"a{i}") for i in range(26)]}],
            "less than 26 items",
            id="26-elements",
        ),
    ],
)
def test_block_kit_limits_are_refused(
    fake: FakeSlack, client: WebClient, blocks: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert refused.value.response["error"] == "invalid_blocks"
    messages = refused.value.response["response_metadata"]["messages"]
    assert any(problem in m and "[json-pointer:/blocks" in m for m in messages), messages
    assert fake.messages == {}


def test_limits_apply_to_updates_ephemerals_and_views(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="ok", blocks=[section("fine")])["ts"]
    with pytest.raises(SlackApiError) as update:
        client.chat_update(channel="C1", ts=ts, text="t", blocks=[section("x" * 3001)])
    assert update.value.response["error"] == "invalid_blocks"
    assert fake.messages[("C1", ts)]["blocks"] == [section("fine")]  # unchanged

    with pytest.raises(SlackApiError) as too_long:
        client.chat_postMessage(channel="C1", text="x" * 40_001)
    assert too_long.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as ephemeral:
        client.chat_postEphemeral(channel="C1", user="U1", text="t", blocks=[section("")])
    assert ephemeral.value.response["error"] == "invalid_blocks"
    assert client.chat_postEphemeral(channel="C1", user="U1", text="only you")["message_ts"]

    big = MODAL | {"blocks": [section(str(i)) for i in range(101)]}
    with pytest.raises(SlackApiError) as view:
        client.views_open(trigger_id="t1", view=big)
    assert view.value.response["error"] == "invalid_blocks"
    home = {"type": "home", "blocks": [section(str(i)) for i in range(100)]}
    published = client.views_publish(user_id="U1", view=home)
    updated = client.views_update(view_id=published["view"]["id"], view=MODAL)
    assert updated["view"]["id"] == published["view"]["id"]
    assert fake.views[updated["view"]["id"]]["callback_id"] == "edit_reminder"


def test_members_info_and_reset() -> None:
    with FakeSlack(members=["U1", "U2", "U3"]) as fake:
        client = WebClient(token="xoxb-test", base_url=fake.url, timeout=5)
        everyone = client.conversations_members(channel="C1")
        assert everyone["members"] == ["U1", "U2", "U3"]
        assert everyone["response_metadata"] == {"next_cursor": ""}
        page = client.conversations_members(channel="C1", limit=2)
        assert page["members"] == ["U1", "U2"] and page["response_metadata"]["next_cursor"]
        info = client.conversations_info(channel="C9")
        assert (info["channel"]["id"], info["channel"]["name"]) == ("C9", "finance")

        client.chat_postMessage(channel="C1", text="hi")
        fake.fail_next("auth.test", "account_inactive")
        fake.reset()
        assert fake.calls() == [] and fake.messages == {}
        assert client.auth_test()["ok"]  # the pending failure was forgotten too
        with pytest.raises(LookupError):
            fake.last("chat.postMessage")
    with FakeSlack() as default:
        answer = WebClient(token="xoxb-test", base_url=default.url).conversations_members(
            channel="C1"
        )
        assert answer["members"] == ["U0APPROVER"]


def test_concurrent_posts_get_unique_ts(fake: FakeSlack, client: WebClient) -> None:
    seen: list[str] = []

    def post(n: int) -> None:
        seen.append(client.chat_postMessage(channel="C1", text=f"m{n}")["ts"])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 16 and len(fake.messages) == 16
    assert len(fake.calls("chat.postMessage")) == 16


def test_a_response_url_answers_the_click_apart_from_the_web_api(
    fake: FakeSlack, client: WebClient
) -> None:
    from slack_sdk.webhook import WebhookClient

    posted = client.chat_postMessage(channel="C1", text="plan", blocks=[section("Plan")])
    url = fake.response_url("C1", posted["ts"])
    told = WebhookClient(url).send_dict({"text": "only you", "response_type": "ephemeral"})
    assert (told.status_code, told.body) == (200, "ok")
    replaced = WebhookClient(url).send_dict(
        {"replace_original": True, "text": "plan, approved", "blocks": [section("Approved")]}
    )
    assert replaced.status_code == 200
    assert fake.messages[("C1", posted["ts"])]["text"] == "plan, approved"
    assert [(a["kind"], a["ts"]) for a in fake.responses()] == [
        ("ephemeral", posted["ts"]),
        ("replace_original", posted["ts"]),
    ]
    assert [r["method"] for r in fake.records()] == ["chat.postMessage"]  # not Web API calls
    too_many = [section(f"line {n}") for n in range(51)]  # Slack's limit is 50 blocks
    refused = WebhookClient(url).send_dict({"text": "long", "blocks": too_many})
    assert (refused.status_code, refused.body) == (400, "invalid_blocks")
    fake.fail_response_next("expired_url", 404)
    expired = WebhookClient(url).send_dict({"text": "late"})
    assert (expired.status_code, expired.body) == (404, "expired_url")
    for _ in range(3):  # five answers in all
        assert WebhookClient(url).send_dict({"text": "again"}).status_code == 200
    used = WebhookClient(url).send_dict({"text": "once more"})
    assert (used.status_code, used.body) == (404, "used_url")
