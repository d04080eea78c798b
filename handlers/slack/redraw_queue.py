"""The plan's cards redrawn after clicks, many at once: a click's work asks for its reminders'
cards (and the header) to be redrawn and goes on to the next click; one drain at a time, on the
work threads, redraws every message asked for since it last looked, from the state read then
(bot/planning/posting.refresh, whose message versions keep a redraw from going back in time,
also against other processes), and looks again until nothing more was asked. A burst of 50
Approve clicks is applied at the pace of the approvals, and each message is drawn a few times,
not 50: bounded, and the last state is always drawn."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.planning import posting

if TYPE_CHECKING:
    from handlers.slack.kit import ListenerKit

log = logging.getLogger(__name__)


class RedrawQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked: set[int] = set()
        self._draining = False

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
