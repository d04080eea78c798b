"""The send worker inside `arbot serve`: flush the outbox every minute until told to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class SendLoop:
    def __init__(self, tick: Callable[[], object], interval_seconds: float = 60) -> None:
        self.tick = tick
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="arbot-send", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Finish the tick in progress (what it claimed is sent or recorded), then stop."""
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # one bad tick must not stop the worker; say so in the log
                log.exception("send tick failed")
            self._stop.wait(self.interval)
