"""SIGTERM for `arbot serve`: the HTTP server stops wherever the signal lands.

uvicorn handles SIGTERM itself only while it serves (then raises it again when it is done). A
signal that lands before that (while the scheduler starts, the app is built or the server
starts up) must still stop it, or the process would serve on with nobody to stop it. So this
handler notes the signal and tells a server that exists to exit; a server made after the signal
is told before it runs. Every order of "signal" and "server made" ends with the server exiting."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Protocol


class Stoppable(Protocol):
    should_exit: bool

    def run(self) -> None: ...


class SigtermStop:
    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._server: Stoppable | None = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)

    def handle(self, _signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.should_exit = True

    def run(self, server: Stoppable) -> None:
        """Run the server until SIGTERM (returns at once if it came already)."""
        self._server = server
        if self.stopping.is_set():
            server.should_exit = True
        server.run()
