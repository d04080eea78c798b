"""Clicks' redraws are coalesced: what several clicks ask for before a work thread gets to it is
drawn once per message, with the latest state, what is asked while a drain is drawing is
drawn by that drain's next round, and a drain lets the clicks in hand be applied before it draws
(the work threads are a hand-run executor here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import update

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from handlers.slack import redraw_queue
from handlers.slack.kit import ListenerKit
from handlers.slack.reminders import redraw
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import message_of
from tests.support.slack_requests import PATIENCE, wait_for


class HandRun(Executor):
    """Work threads that run what was submitted only when the test says so."""

    def __init__(self) -> None:
        self.waiting: list[Callable[[], Any]] = []
        self.stopped = False  # takes no more work, as an executor shut down

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self.stopped:
            raise RuntimeError("cannot schedule new futures after shutdown")
        self.waiting.append(lambda: fn(*args, **kwargs))
        return Future()

    def run_all(self) -> None:
        while self.waiting:
            self.waiting.pop(0)()


def _kit(runtime: Runtime, slack_api: Any, workers: Executor) -> ListenerKit:
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    return ListenerKit(runtime=runtime, slack=chat, allows=lambda _: True, workers=workers)


def _approve(runtime: Runtime, reminder_id: int) -> None:
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.id == reminder_id)
            .values(state="approved", approved_by="U0APPROVER", approved_at=runtime.clock.now())
        )


def test_redraws_asked_by_several_clicks_are_drawn_once_per_message_with_the_latest_state(
    posted: Runtime, slack_api: Any
) -> None:
    workers = HandRun()
    kit = _kit(posted, slack_api, workers)
    for reminder_id in (1, 2, 3):  # three clicks' work, before a work thread is free
        _approve(posted, reminder_id)
        redraw(kit, [reminder_id])
    assert len(workers.waiting) == 1  # one drain for all of them
    workers.run_all()

    updates = slack_api.calls("chat.update")
    assert len(updates) == 2  # the cards' message and the plan's header, once each
    cards = json.dumps(message_of(posted, slack_api, 1)["blocks"])
    assert cards.count("Approved by <@U0APPROVER>") == 3


def test_what_is_asked_while_a_drain_draws_is_drawn_by_its_next_round(
    posted: Runtime, slack_api: Any
) -> None:
    workers = HandRun()
    kit = _kit(posted, slack_api, workers)
    asked_meanwhile = False

    def click_during_the_draw(what: str) -> None:
        nonlocal asked_meanwhile
        if what == "Slack chat.update" and not asked_meanwhile:
            asked_meanwhile = True
            _approve(posted, 2)
            redraw(kit, [2])  # the drain is running: no second drain

    slack_api.on_call = click_during_the_draw
    _approve(posted, 1)
    redraw(kit, [1])
    workers.run_all()

    assert asked_meanwhile and not workers.waiting
    cards = json.dumps(message_of(posted, slack_api, 2)["blocks"])
    assert cards.count("Approved by <@U0APPROVER>") == 2


def test_redraws_start_once_the_clicks_in_hand_are_applied(
    posted: Runtime, slack_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redraw_queue, "IN_HAND_SECONDS", PATIENCE)  # no timer within the test
    workers = HandRun()
    kit = _kit(posted, slack_api, workers)
    kit.later(click, "U0APPROVER", "C0FINANCE", 1)
    kit.later(click, "U0APPROVER", "C0FINANCE", 2)  # in hand while the first one is applied
    first, second = workers.waiting
    workers.waiting.clear()
    first()
    assert workers.waiting == []  # its redraw waits for the click still in hand
    second()
    workers.run_all()

    assert len(slack_api.calls("chat.update")) == 2  # the cards' message and the header, once
    cards = json.dumps(message_of(posted, slack_api, 2)["blocks"])
    assert cards.count("Approved by <@U0APPROVER>") == 2


def test_a_slow_work_in_hand_holds_the_redraws_back_only_briefly(
    posted: Runtime, slack_api: Any
) -> None:
    slow_done = threading.Event()
    with ThreadPoolExecutor(max_workers=2) as workers:
        kit = _kit(posted, slack_api, workers)
        kit.later(lambda _: slow_done.wait(PATIENCE), "U0APPROVER", "C0FINANCE")
        kit.later(click, "U0APPROVER", "C0FINANCE", 1)
        try:
            wait_for(lambda: len(slack_api.calls("chat.update")) == 2)
        finally:
            slow_done.set()
    assert "Approved by <@U0APPROVER>" in json.dumps(message_of(posted, slack_api, 1)["blocks"])


def test_clicks_in_hand_when_the_app_stops_still_have_their_cards_redrawn(
    posted: Runtime, slack_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redraw_queue, "IN_HAND_SECONDS", PATIENCE)
    workers = HandRun()
    kit = _kit(posted, slack_api, workers)
    kit.later(click, "U0APPROVER", "C0FINANCE", 1)
    kit.later(click, "U0APPROVER", "C0FINANCE", 2)
    first, second = workers.waiting
    workers.waiting.clear()
    workers.stopped = True  # the app stops while they are in hand
    first()
    second()

    assert len(slack_api.calls("chat.update")) == 2
    cards = json.dumps(message_of(posted, slack_api, 2)["blocks"])
    assert cards.count("Approved by <@U0APPROVER>") == 2


def click(kit: ListenerKit, reminder_id: int) -> None:
    """A click's work: an approval, and the redraw it asks for."""
    _approve(kit.runtime, reminder_id)
    redraw(kit, [reminder_id])
