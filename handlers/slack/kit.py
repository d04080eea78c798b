"""What every Slack listener is given (`register(app, kit)` binds it as the first argument): the
runtime, the Slack side, who may act, the threads that do the work after an ack, and the few
things every listener does: read who clicked on what, refuse someone who may not act, tell a
person something privately, open a form, and run the work after the ack."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.core.runtime import Runtime
from integrations.slack_chat import SlackChat
from integrations.slack_ids import INPUT, Field

log = logging.getLogger(__name__)
Body = dict[str, Any]  # a request's payload, as Bolt hands it over


def clicker(body: Body) -> tuple[str, str | None]:
    """Who clicked, and in which channel."""
    return body["user"]["id"], body.get("channel", {}).get("id")


def clicked(body: Body) -> tuple[str, str | None, int]:
    """Who clicked, in which channel, on what (a button's value is the id of what it acts on)."""
    user, channel = clicker(body)
    return user, channel, int(body["actions"][0]["value"])


def entered(values: Body, field: Field) -> Body:
    """What a person entered in one field of a form (the input's state, e.g. its `value`)."""
    entry: Body = values.get(field, {}).get(INPUT, {})
    return entry


def typed(values: Body, field: Field) -> str | None:
    """The text a person typed in one field of a form."""
    text: str | None = entered(values, field).get("value")
    return text


@dataclass(frozen=True)
class ListenerKit:
    runtime: Runtime
    slack: SlackChat
    allows: Callable[[str], bool]  # an approver?
    workers: Executor  # the work after an ack (see handlers/slack/app.py)

    def tell(self, channel: str | None, user: str, text: str) -> None:
        """An ephemeral message, seen only by `user`, in the channel they acted in."""
        if channel:
            self.slack.client.chat_postEphemeral(channel=channel, user=user, text=text)

    def refused(self, channel: str | None, user: str, text: str) -> bool:
        """True, after telling them `text`, if `user` is not an approver."""
        if self.allows(user):
            return False
        self.tell(channel, user, text)
        return True

    def later(self, work: Callable[..., None], user: str, channel: str | None, *args: Any) -> None:
        """Run work(kit, *args) after the ack; if it fails, the person who clicked is told, not
        only the log (nothing fails silently)."""

        def run() -> None:
            try:
                work(self, *args)
            except Exception as exc:
                log.exception("Slack work failed after ack: %s", getattr(work, "__name__", work))
                try:
                    self.tell(
                        channel,
                        user,
                        f"That may not have gone through ({type(exc).__name__}). Please check "
                        "the message, and try again if nothing changed.",
                    )
                except Exception:
                    log.exception("could not tell %s that their action failed", user)

        self.workers.submit(run)

    def open_view(self, body: Body, view: Body, channel: str | None, user: str) -> None:
        """Open a form for the click in `body` (its trigger lasts three seconds)."""
        try:
            self.slack.client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            if exc.response.get("error") == "expired_trigger_id":
                self.tell(
                    channel,
                    user,
                    "Slack took too long to open the form. Please click the button again.",
                )
            else:
                log.exception("views.open failed")
                self.tell(
                    channel, user, f"Slack refused to open the form ({exc.response.get('error')})."
                )


def on_click(
    kit: ListenerKit, work: Callable[[ListenerKit, Body], None], ack: Callable[[], None], body: Body
) -> None:
    """A button's listener (register it as `partial(on_click, kit, work)`): ack at once, then run
    work(kit, body) on the workers."""
    ack()
    user, channel = clicker(body)
    kit.later(work, user, channel, body)
