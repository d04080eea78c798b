"""The plan's cards redrawn after clicks, many at once: a click's work asks for its reminders'
cards (and the header) to be redrawn and goes on to the next click; one drain at a time, on the
work threads, redraws every message asked for since it last looked, from the state read then
(bot/planning/posting.refresh, whose message versions keep a redraw from going back in time,
also against other processes), and looks again until nothing more was asked. A burst of 50
Approve clicks is applied at the pace of the approvals, and each message is drawn a few times,
not 50: bounded, and the last state is always drawn.

Before it looks, a drain lets the clicks already in hand (their work handed to the workers and
not finished) be applied first, for at most IN_HAND_SECONDS: three Approve all clicks in a row
redraw the header and each message once, not once per click."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.planning import posting

if TYPE_CHECKING:
    from handlers.slack.kit import ListenerKit

log = logging.getLogger(__name__)
IN_HAND_SECONDS = 0.25  # the longest a drain waits for clicks in hand before it draws


class RedrawQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._asked: set[int] = set()
        self._draining = False
        self._in_hand = 0  # clicks whose work was handed to the workers and has not finished
        self._holding = False  # a drain is waiting for them

    def taken(self) -> None:
        """A click's work was handed to the workers (ListenerKit.later)."""
        with self._lock:
            self._in_hand += 1

    def finished(self) -> None:
        """A click's work handed over by `taken` has finished, whatever its end."""
        with self._lock:
            self._in_hand -= 1
            if self._in_hand <= 0:
                self._settled.notify_all()

    def holding(self) -> bool:
        """Whether a drain is waiting for clicks in hand before it draws."""
        with self._lock:
            return self._holding

    def ask(self, kit: ListenerKit, reminder_ids: Iterable[int]) -> None:
        """Redraw these reminders' messages soon, on kit's work threads."""
        with self._lock:
            self._asked.update(reminder_ids)
            if self._draining or not self._asked:
                return
            self._draining = True
        try:
            kit.workers.submit(self._drain, kit)
        except RuntimeError:  # the app is shutting down: the sweep draws what is owed
            with self._lock:
                self._draining = False
            log.warning("plan cards not redrawn: the app is shutting down")

    def _drain(self, kit: ListenerKit) -> None:
        while True:
            with self._lock:
                until = time.monotonic() + IN_HAND_SECONDS
                while self._in_hand > 0 and (left := until - time.monotonic()) > 0:
                    self._holding = True
                    self._settled.wait(left)
                self._holding = False
                reminder_ids = sorted(self._asked)
                self._asked.clear()
                if not reminder_ids:
                    self._draining = False
                    return
            try:
                with kit.runtime.sessions() as session:
                    posting.refresh(session, kit.slack, reminder_ids, kit.runtime.settings.timezone)
            except Exception:  # what Slack refused is owed already; this is the database
                log.exception("the cards of reminders %s were not redrawn", reminder_ids)
