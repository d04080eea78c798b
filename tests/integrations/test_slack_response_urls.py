"""A click is answered at its response_url only when that is Slack's own address."""

from __future__ import annotations

from slack_sdk import WebClient

from integrations.slack_chat import SlackChat


def test_only_slacks_hooks_host_or_the_api_host_is_answered() -> None:
    chat = SlackChat(WebClient(token="xoxb-test", base_url="https://slack.com/api/"))
    assert chat.answerable("https://hooks.slack.com/actions/T0TEST/1/abc")
    assert chat.answerable("https://hooks.slack-gov.com/actions/T0TEST/1/abc")
    assert chat.answerable("https://slack.com/response/R1")
    assert not chat.answerable("http://hooks.slack.com/actions/T0TEST/1/abc")  # not https
    assert not chat.answerable("https://hooks.slack.com.example.net/actions/1")
    assert not chat.answerable("https://internal.example/admin")
    assert not chat.answerable("https://hooks.slack.invalid/actions/T0TEST/1/abc")
    assert not chat.answerable("not a url")
