"""The plan's cards redrawn after clicks, many at once: a click's work asks for its reminders'
cards (and the header) to be redrawn and goes on to the next click; one drain at a time, on the
work threads, redraws every message asked for since it last looked, from the state read then
(bot/planning/redraws.refresh, whose message versions keep a redraw from going back in time,
also against other processes), and looks again until nothing more was asked. A burst of 50
Approve clicks is applied at the pace of the approvals, and each message is drawn a few times,
not 50: bounded, and the last state is always drawn.

A drain starts once the clicks in hand (their work handed to the workers and not finished) are
applied, when the last of them finishes, or IN_HAND_SECONDS after its redraws were asked for,
whichever is first (a timer's, so a slow work in hand or a steady stream of clicks delays
redraws, never starves them); no work thread waits for it. Three Approve all clicks in a row redraw the header and each message
once, not once per click. A drain the database fails asks for its cards again after
RETRY_SECONDS (longer while it keeps failing): until a redraw is asked of its message's version
or owed, nothing but this queue knows of it, and the sweep could not find it."""

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
IN_HAND_SECONDS = 0.25  # the longest a redraw asked for waits for the clicks in hand
# A drain the database failed asks for its cards again after this, doubled for each drain
# that failed in a row, up to RETRY_MAX_SECONDS.
RETRY_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0


class RedrawQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked: set[int] = set()
        self._asked_since: float | None = None  # when what is asked now was first asked
        self._draining = False
        self._in_hand = 0  # clicks whose work was handed to the workers and has not finished
        self._timer: threading.Timer | None = None  # starts the drain when waited long enough
        self._failed = 0  # drains the database failed in a row

    def taken(self) -> None:
        """A click's work was handed to the workers (ListenerKit.later)."""
        with self._lock:
            self._in_hand += 1

    def finished(self, kit: ListenerKit) -> None:
        """A click's work handed over by `taken` has finished, whatever its end: the last of
        the clicks in hand starts the drain of what they asked for."""
        with self._lock:
            self._in_hand -= 1
            if not self._due():
                return
            self._draining = True
        self._start(kit)

    def ask(self, kit: ListenerKit, reminder_ids: Iterable[int]) -> None:
        """Redraw these reminders' messages soon, on kit's work threads: once no click is in
        hand, or IN_HAND_SECONDS after it was asked for."""
        with self._lock:
            if not self._asked:
                self._asked_since = time.monotonic()
            self._asked.update(reminder_ids)
            if not self._due():
                self._wait_at_most(kit)
                return
            self._draining = True
        self._start(kit)

    def _wait_at_most(self, kit: ListenerKit) -> None:
        """What is asked and not drawn yet waits for the clicks in hand no longer than
        IN_HAND_SECONDS after it was first asked for: a timer then starts its drain, unless one
        is set already (called holding the lock)."""
        if self._timer is not None or not self._asked:
            return
        waited = time.monotonic() - (self._asked_since or 0.0)
        self._timer = threading.Timer(max(IN_HAND_SECONDS - waited, 0.0), self._overdue, (kit,))
        self._timer.daemon = True
        self._timer.start()

    def _overdue(self, kit: ListenerKit) -> None:
        """IN_HAND_SECONDS since a redraw was asked for, and clicks are still in hand. While a
        drain draws, what it leaves waiting gets a timer of its own when it ends."""
        with self._lock:
            self._timer = None
            if self._draining or not self._asked:
                return
            self._draining = True
        self._start(kit)

    def _due(self) -> bool:
        """Whether a drain should start now (called holding the lock)."""
        if self._draining or not self._asked:
            return False
        waited = time.monotonic() - (self._asked_since or 0.0)
        return self._in_hand <= 0 or waited >= IN_HAND_SECONDS

    def _start(self, kit: ListenerKit) -> None:
        try:
            kit.workers.submit(self._drain, kit)
        except RuntimeError:  # the app is stopping: what its clicks asked for is drawn here
            log.info("the app is stopping: the plan's cards are redrawn before it goes")
            self._drain(kit)

    def _drain(self, kit: ListenerKit) -> None:
        while True:
            with self._lock:
                reminder_ids = sorted(self._asked)
                self._asked.clear()
                self._asked_since = None
                if not reminder_ids:
                    self._draining = False
                    return
            try:
                with kit.runtime.sessions() as session:
                    posting.refresh(session, kit.slack, reminder_ids, kit.runtime.settings.timezone)
            except Exception:  # what Slack refused is owed already; this is the database
                self._again_later(kit, reminder_ids)
            else:
                with self._lock:
                    self._failed = 0
            with self._lock:  # more was asked meanwhile: draw it now, or after the clicks
                self._draining = False  # in hand (whose last one starts the next drain), or
                if not self._due():  # IN_HAND_SECONDS after it was asked, whichever is first
                    self._wait_at_most(kit)
                    return
                self._draining = True

    def _again_later(self, kit: ListenerKit, reminder_ids: list[int]) -> None:
        """The database failed while these cards were redrawn: before the redraw is asked of
        a message's version (bot/core/message_versions.py) or owed, it is nowhere but here, and
        the sweep cannot find it. So they are asked for again after a wait, longer for each
        drain failed in a row (a database that is down is not hammered)."""
        with self._lock:
            wait = min(RETRY_SECONDS * 2**self._failed, RETRY_MAX_SECONDS)
            self._failed += 1
        log.exception(
            "the cards of reminders %s were not redrawn: asked for again in %.0f s",
            reminder_ids,
            wait,
        )
        timer = threading.Timer(wait, self.ask, (kit, reminder_ids))
        timer.daemon = True
        timer.start()
