"""What every Slack listener is given (`register(app, kit)` binds it as the first argument): the
runtime, the Slack side, who may act, the threads that do the work after an ack, and the few
things every listener does: refuse someone who may not act, tell a person something privately,
open a form, and run the work after the ack. What a request says is read by
handlers/slack/payload.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from handlers.slack.payload import Body, OddPayload, clicker, text_of
from handlers.slack.redraw_queue import RedrawQueue
from integrations.slack_chat import SlackChat

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerKit:
    runtime: Runtime
    slack: SlackChat
    allows: Callable[[str], bool]  # an approver?
    workers: Executor  # the work after an ack (see handlers/slack/app.py)
    redraws: RedrawQueue = field(default_factory=RedrawQueue)  # the plan's cards, coalesced

    def tell(
        self,
        channel: str | None,
        user: str,
        text: str,
        blocks: list[Body] | None = None,
        *,
        response_url: str | None = None,
    ) -> None:
        """An ephemeral message, seen only by `user`, in the channel they acted in (with
        `blocks`, those are shown and `text` is what notifications read). Given the
        `response_url` of the click being answered, it goes there (Slack's own way to answer a
        click, no Web API call), and by chat.postEphemeral when Slack refuses it there. Telling
        is the last thing a failure does, so it never fails itself: what Slack refuses is
        logged."""
        if response_url and self.slack.answerable(response_url):
            try:
                self.slack.respond(response_url, text, blocks)
                return
            except Exception as exc:
                log.warning(
                    "could not answer %s at the click's response_url (%s: %s): "
                    "telling them by chat.postEphemeral",
                    user,
                    type(exc).__name__,
                    exc,
                )
        if not channel:
            return
        try:
            if blocks:
                self.slack.client.chat_postEphemeral(
                    channel=channel, user=user, text=text, blocks=blocks
                )
                return
            self.slack.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except Exception as exc:
            log.warning("could not tell %s in %s: %s: %s", user, channel, type(exc).__name__, exc)

    def refused(self, channel: str | None, user: str, text: str) -> bool:
        """True, after telling them `text`, if `user` is not an approver."""
        if self.allows(user):
            return False
        self.tell(channel, user, text)
        return True

    def later(self, work: Callable[..., None], user: str, channel: str | None, *args: Any) -> None:
        """Run work(kit, *args) on the workers, after the ack (see `now`); the plan's redraws
        asked for meanwhile start once it is done (handlers/slack/redraw_queue.py)."""
        self.redraws.taken()
        try:
            self.workers.submit(self._in_hand, work, user, channel, *args)
        except BaseException:
            self.redraws.finished(self)
            raise

    def _in_hand(
        self, work: Callable[..., None], user: str, channel: str | None, *args: Any
    ) -> None:
        try:
            self.now(work, user, channel, *args)
        finally:
            self.redraws.finished(self)

    def now(self, work: Callable[..., None], user: str, channel: str | None, *args: Any) -> None:
        """Run work(kit, *args) here; if it fails, the person who acted is told, not only the log
        (nothing fails silently): a UserError's own words, a request of the wrong shape in one
        log line, anything else with its traceback. Nothing it raises reaches Bolt (see
        `on_click`)."""
        try:
            work(self, *args)
        except OddPayload as exc:
            self.tell(channel, user, f"Nothing was changed: {exc}.")
            log.warning("refused a Slack request: %s", exc)
        except UserError as exc:  # e.g. what the click was about no longer exists
            log.info("Slack work for %s refused: %s", user, exc)
            self.tell(channel, user, str(exc))
        except Exception as exc:
            log.exception("Slack work failed after ack: %s", getattr(work, "__name__", work))
            self.tell(
                channel,
                user,
                f"That may not have gone through ({type(exc).__name__}). Please check "
                "the message, and try again if nothing changed.",
            )

    def open_view(self, trigger_id: str, view: Body, channel: str | None, user: str) -> None:
        """Open a form for a click (its trigger lasts three seconds)."""
        try:
            self.slack.client.views_open(trigger_id=trigger_id, view=view)
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
    work(kit, body) on the workers.

    Who clicked is read before the ack, and nothing is raised after it: when a listener raises
    after acking, Bolt's error path drops the ack it made, and Bolt then waits three seconds for
    one, on the one thread that hands clicks to Bolt (handlers/app.py)."""
    user, channel = clicker(body)
    ack()
    kit.later(work, user, channel, body)


def on_form_click(
    kit: ListenerKit,
    work: Callable[[ListenerKit, Body, str], None],
    ack: Callable[[], None],
    body: Body,
) -> None:
    """A button that opens a form (register it as `partial(on_form_click, kit, work)`): ack, then
    run work(kit, body, trigger_id) at once, on this thread, since the trigger lasts three
    seconds; as in `on_click`, nothing is raised after the ack."""
    user, channel = clicker(body)
    trigger_id = text_of(body, "trigger_id")
    ack()
    kit.now(work, user, channel, body, trigger_id)
