"""The Bolt app for one workspace: the listeners of each feature module, who may approve, and the
threads that keep Slack's acknowledgements fast.

Every listener acks first, then verifies who is asking, calls one bot/ function and answers. Bolt
checks a request's signature before any listener runs. Slack wants its ack within three seconds,
so a request passes through four pools of threads:

1. `dispatchers` (handlers/app.py, 64 threads): Bolt's dispatch blocks until a listener acks, so it
   runs off the event loop, and a burst of requests is dispatched side by side.
2. Bolt's `listener_executor` (LISTENER_THREADS, below): with process_before_response=False Bolt
   runs each listener on a thread of its own and answers Slack as soon as the listener calls ack().
3. `workers` (WORK_THREADS, below; kit.later): the work after an ack (the database, redrawing
   messages) runs here, so listener threads are free again at once; a failure is told to the
   person who clicked (handlers/slack/kit.py).
4. `clicks` (handlers/app.py, 1 thread): a button click is acknowledged before Bolt sees it. Its
   ack carries nothing, so handlers/app.py checks the signature itself (slack_sdk's check, the
   one Bolt makes), answers an empty 200 at once, and dispatches the request to Bolt on this
   thread instead of 1, once no click has come in for a moment or a quarter of a second after
   its own ack (AcksFirst), so work never holds up the acks of a burst. Bolt then runs the
   listener as in 2 and 3; its ack() answers nobody, and listeners read the same either way.

A form's submission, a command and an event go through 1 to 3 only: their ack may carry an answer
(the /ar text, a form's errors).

A signed request whose fields are not shaped as Slack sends them (handlers/slack/payload.py) is
refused in one log line: a 400, or the form's own error, and never a crash, whether Bolt or a
listener is the one reading it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient

from bot.core.runtime import Runtime
from handlers.slack import (
    commands,
    escalations,
    guardrails,
    home,
    plan_forms,
    plan_views,
    proposals,
    reminders,
    reviews,
)
from handlers.slack.kit import ListenerKit
from handlers.slack.payload import OddForm, OddPayload, person_and_place, unroutable
from handlers.slack.work_pool import WorkPool
from integrations.slack_chat import SlackChat

log = logging.getLogger(__name__)
MEMBERS_TTL_SECONDS = 60
LISTENER_THREADS = 64
WORK_THREADS = 2
FEATURES = (
    reminders,
    plan_views,
    commands,
    home,
    escalations,
    plan_forms,
    proposals,
    reviews,
    guardrails,
)


class Approvers:
    """ARBOT_APPROVERS, or (when empty) every member of the finance channel, looked up briefly cached."""

    def __init__(self, runtime: Runtime, client: WebClient) -> None:
        self.listed = set(runtime.settings.approvers)
        self.channel = runtime.settings.finance_channel
        self.client = client
        self._members: set[str] = set()
        self._fetched = 0.0

    def allows(self, user: str) -> bool:
        if self.listed:
            return user in self.listed
        if not self.channel:
            return False
        if time.monotonic() - self._fetched > MEMBERS_TTL_SECONDS:
            members: set[str] = set()
            for page in self.client.conversations_members(channel=self.channel, limit=1000):
                members.update(page["members"])
            self._members, self._fetched = members, time.monotonic()
        return user in self._members


class ShapeCheckedApp(App):
    """Bolt, refusing a payload whose fields it would fail to read while routing it (it reads
    them again in its own error handler, so that would end in a 500 and a traceback)."""

    # The thread pools of the work after an ack (set by build_bolt): Bolt's listeners, and
    # arbot's work they hand on (which may hand on more work to itself).
    listeners: ThreadPoolExecutor | None = None
    workers: WorkPool | None = None

    def finish_work(self) -> None:
        """Wait for the work this app took on after its acks, and take no more (a server that
        is stopping: what a click started is finished, not cut off)."""
        if self.listeners is not None:
            self.listeners.shutdown(wait=True)
        if self.workers is not None:
            self.workers.finish()

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        why = unroutable(req.body)
        if why is not None:
            log.warning("refused a Slack request: %s", why)
            return BoltResponse(status=400, body=f"refused: {why}")
        return super().dispatch(req)


def build_bolt(runtime: Runtime, client: WebClient) -> ShapeCheckedApp:
    settings = runtime.settings
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    listeners = ThreadPoolExecutor(max_workers=LISTENER_THREADS)
    workers = WorkPool(WORK_THREADS, "arbot-work")
    app = ShapeCheckedApp(
        # Bolt's name for the app (and its loggers), the name of this file: given, Bolt does not
        # find it with inspect.stack(), which reads the source of every frame on the stack.
        name=Path(__file__).name,
        client=client,
        signing_secret=secret,
        # Enough threads that a burst of clicks is acknowledged at once, not queued behind work.
        listener_executor=listeners,
        token_verification_enabled=False,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    kit = ListenerKit(
        runtime=runtime,
        slack=SlackChat(client),
        allows=Approvers(runtime, client).allows,
        workers=workers,
    )
    app.listeners, app.workers = listeners, workers
    app.middleware(same_workspace)
    app.error(partial(on_error, kit))
    for feature in FEATURES:
        feature.register(app, kit)
    return app


def same_workspace(context: Any, next: Callable[[], Any]) -> Any:
    """Only requests from the workspace the bot is installed in (E9)."""
    result = context.authorize_result
    if (
        result is not None
        and context.team_id
        and result.team_id
        and context.team_id != result.team_id
    ):
        log.warning("refused a request from workspace %s", context.team_id)
        return BoltResponse(status=403, body="wrong workspace")
    return next()


def on_error(
    kit: ListenerKit, error: Exception, body: Any, response: BoltResponse | None
) -> BoltResponse | None:
    """Whatever a listener raises reaches a person, not only the log; a request of the wrong
    shape is refused in one line. This never raises itself, whatever the request's shape:
    `response` is None once the request was acknowledged (then nobody awaits an answer)."""
    if isinstance(error, OddPayload):
        log.warning("refused a Slack request: %s", error)
        if response is None:
            return None
        if isinstance(error, OddForm):  # shown in the form, on its field
            return BoltResponse(
                status=200,
                body={"response_action": "errors", "errors": {error.field: str(error)}},
            )
        return BoltResponse(status=400, body=f"refused: {error}")
    log.error("Slack listener failed: %s", error, exc_info=error)
    user, channel = person_and_place(body)
    if user and channel:
        kit.tell(
            channel,
            user,
            f"Something went wrong ({type(error).__name__}); nothing was "
            "changed. Please try again, or tell whoever runs arbot.",
        )
    return None
