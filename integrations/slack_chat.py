"""The SlackPort over slack_sdk's WebClient: base URL from SLACK_API_URL, retries on 429."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from integrations.base import PlanSummary, PostedGroup, PostedPlan, ReminderCard
from integrations.slack_blocks import group_blocks, group_text, pack, plan_header_blocks


def web_client(token: str, base_url: str) -> WebClient:
    """A client that waits out Slack's rate limits (Retry-After) instead of losing a call."""
    return WebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=5),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


class SlackChat:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def post_plan(
        self,
        channel: str,
        summary: PlanSummary,
        cards: list[ReminderCard],
        on_group: Callable[[str, PostedGroup], None],
    ) -> PostedPlan:
        header = self.client.chat_postMessage(
            channel=channel,
            text=f"Collections plan for {summary.day.isoformat()}",
            blocks=plan_header_blocks(summary),
        )
        channel_id = str(header["channel"])
        groups = []
        for group in pack(cards):
            posted = self.client.chat_postMessage(
                channel=channel_id, text=group_text(group), blocks=group_blocks(group)
            )
            done = PostedGroup(str(posted["ts"]), tuple(c.reminder_id for c in group))
            on_group(channel_id, done)
            groups.append(done)
        return PostedPlan(channel=channel_id, header_ts=str(header["ts"]), groups=tuple(groups))

    def update_plan_header(self, channel: str, ts: str, summary: PlanSummary) -> None:
        self.client.chat_update(
            channel=channel,
            ts=ts,
            text=f"Collections plan for {summary.day.isoformat()}",
            blocks=plan_header_blocks(summary),
        )

    def update_cards(self, channel: str, ts: str, cards: list[ReminderCard]) -> None:
        self.client.chat_update(
            channel=channel, ts=ts, text=group_text(cards), blocks=group_blocks(cards)
        )
