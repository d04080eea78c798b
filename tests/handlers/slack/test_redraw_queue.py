"""Clicks' redraws are coalesced: what several clicks ask for before a work thread gets to it is
drawn once per message, with the latest state, what is asked while a drain is drawing is
drawn by that drain's next round, and a drain lets the clicks in hand be applied before it draws
(the work threads are a hand-run executor here)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import update

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.planning import posting
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


class _Clock:
    """time.monotonic, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


class _Timers:
    """threading.Timer, fired by the test when the clock has passed each one's interval."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[..., None], tuple[Any, ...]]] = []

    def __call__(self, interval: float, function: Callable[..., None], args: Any) -> Any:
        timers, due = self, self.clock.now + interval

        class Timer:
            daemon = False

            def start(self) -> None:
                timers.pending.append((due, function, tuple(args)))

        return Timer()

    def fire_due(self) -> None:
        due = [timer for timer in self.pending if timer[0] <= self.clock.now]
        self.pending = [timer for timer in self.pending if timer[0] > self.clock.now]
        for _, function, args in due:
            function(*args)


def test_what_a_click_asks_as_a_drain_ends_waits_no_longer_than_in_hand_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A click asks for its card while a drain draws, and its work is still in hand when the
    drain ends: the card is redrawn IN_HAND_SECONDS after it was asked for, not only once that
    work ends (which may be much later: a work waiting on the ledger's lock or on Slack)."""
    clock = _Clock()
    timers = _Timers(clock)
    monkeypatch.setattr(redraw_queue, "time", clock)
    monkeypatch.setattr(threading, "Timer", timers)
    queue, workers = redraw_queue.RedrawQueue(), HandRun()
    runtime = type("Runtime", (), {"sessions": staticmethod(contextlib.nullcontext)})()
    runtime.settings = type("Settings", (), {"timezone": "UTC"})()
    kit: Any = type("Kit", (), {"runtime": runtime, "slack": None, "workers": workers})()
    drawn: list[list[int]] = []

    def refresh(session: Any, slack: Any, reminder_ids: list[int], timezone: str) -> None:
        drawn.append(reminder_ids)
        if reminder_ids == [1]:  # the first card's drain is drawing when a second click asks
            clock.now = 0.2
            queue.taken()
            queue.ask(kit, [2])
            clock.now = 0.25
            timers.fire_due()  # the first click's timer, while the drain still draws
            clock.now = 0.3

    monkeypatch.setattr(posting, "refresh", refresh)
    queue.taken()
    queue.ask(kit, [1])
    queue.finished(kit)  # the first click applied: its drain is handed to a work thread
    workers.run_all()
    assert drawn == [[1]]  # the second click's work is still in hand

    clock.now = 0.2 + redraw_queue.IN_HAND_SECONDS
    timers.fire_due()
    workers.run_all()
    assert drawn == [[1], [2]]


def test_cards_a_drain_could_not_redraw_for_the_database_are_asked_for_again(
    posted: Runtime, slack_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails while a drain reads which messages hold the approved card: nothing
    of that redraw was stored (no message version asked, no redraw owed), so the sweep cannot
    find it; the queue asks for the card again after RETRY_SECONDS and it is drawn, where it
    used to be left stale with a log line until something else changed it."""
    from sqlalchemy.exc import OperationalError

    from bot.planning.redraws import retry_redraws

    clock = _Clock()
    timers = _Timers(clock)
    monkeypatch.setattr(redraw_queue, "time", clock)
    monkeypatch.setattr(threading, "Timer", timers)
    real_refresh, calls = posting.refresh, []

    def database_fails_once(*args: Any) -> None:
        calls.append(args[2])
        if len(calls) == 1:
            raise OperationalError(
                "SELECT reminders", {}, Exception("server closed the connection")
            )
        real_refresh(*args)

    monkeypatch.setattr(posting, "refresh", database_fails_once)
    workers = HandRun()
    kit = _kit(posted, slack_api, workers)
    kit.later(click, "U0APPROVER", "C0FINANCE", 1)
    workers.run_all()
    assert calls == [[1]] and not slack_api.calls("chat.update")
    assert retry_redraws(posted, kit.slack) == 0  # nothing the sweep can find

    clock.now += redraw_queue.RETRY_SECONDS
    timers.fire_due()
    workers.run_all()
    assert calls == [[1], [1]]
    assert "Approved by <@U0APPROVER>" in json.dumps(message_of(posted, slack_api, 1)["blocks"])
