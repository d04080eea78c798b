"""What every group of Slack listeners is given by the Bolt app: the runtime, the Slack side,
who may act, how work runs after the ack (and tells the clicker if it fails), how a person is
told something privately, and how a form is opened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.core.runtime import Runtime
from integrations.slack_chat import SlackChat


@dataclass(frozen=True)
class ListenerKit:
    runtime: Runtime
    slack: SlackChat
    allows: Callable[[str], bool]  # an approver?
    later: Callable[..., None]  # later(work, user, channel, *args): after the ack
    tell: Callable[[str | None, str, str], None]  # tell(channel, user, text): ephemeral
    open_view: Callable[[dict[str, Any], dict[str, Any], str | None, str], None]
