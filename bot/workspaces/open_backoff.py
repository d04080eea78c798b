"""How often a workspace that could not be opened (its database unreadable, its settings sealed
under another key) is tried again: not at every request that names it, but after a wait that
starts at FIRST_WAIT and doubles with each failure up to LONGEST_WAIT. Until the wait is over,
asking for it fails at once with the same reason. A change to the workspace (a reinstall, new
settings: its stamp) is tried at once."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.errors import ArbotError, UserError

FIRST_WAIT = 5.0  # seconds
LONGEST_WAIT = 300.0


class WorkspaceUnavailable(ArbotError):
    """The workspace failed to open a moment ago and is not tried again yet; says why."""


@dataclass(frozen=True, slots=True)
class _Failure:
    stamp: str  # the workspace as it was when it failed
    reason: str
    fixable: bool  # a UserError: its words are for whoever runs arbot
    wait: float
    until: float


class OpenBackoff:
    """The workspaces that failed to open lately, and when each may be tried again."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._failures: dict[str, _Failure] = {}
        self._lock = threading.Lock()

    def check(self, team_id: str, stamp: str) -> None:
        """Raise the last failure's reason while its wait lasts (UserError when it was one,
        else WorkspaceUnavailable); return when the workspace may be tried."""
        with self._lock:
            failure = self._failures.get(team_id)
        if failure is None or failure.stamp != stamp:
            return
        left = failure.until - self._monotonic()
        if left <= 0:
            return
        message = f"{failure.reason} (tried again in {math.ceil(left)} s)"
        raise UserError(message) if failure.fixable else WorkspaceUnavailable(message)

    def failed(self, team_id: str, stamp: str, exc: BaseException) -> None:
        """Opening the workspace as `stamp` raised `exc`: wait longer before the next try."""
        with self._lock:
            last = self._failures.get(team_id)
            wait = (
                FIRST_WAIT
                if last is None or last.stamp != stamp
                else min(last.wait * 2, LONGEST_WAIT)
            )
            fixable = isinstance(exc, UserError)
            reason = str(exc) if fixable else f"{type(exc).__name__}: {exc}"
            self._failures[team_id] = _Failure(
                stamp, reason, fixable, wait, self._monotonic() + wait
            )

    def opened(self, team_id: str) -> None:
        with self._lock:
            self._failures.pop(team_id, None)
