"""The log records of what one test started, for asserting that nothing failed.

Work that an earlier test left running (a click's work after its ack, a retry to a fake Slack that
has stopped) may still log while a later test runs; its threads were already alive when the
later test began, so they are told apart by thread. A thread's id is unique only among live
threads, so a record counts as earlier work only while the earlier thread with its id is still
alive. Start one before the test's app is served."""

from __future__ import annotations

import logging
import threading

import pytest


class LogOfTest:
    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.earlier = {thread.ident: thread for thread in threading.enumerate()}

    def _earlier_work(self, record: logging.LogRecord) -> bool:
        thread = self.earlier.get(record.thread)
        return thread is not None and thread.is_alive()

    @property
    def records(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if not self._earlier_work(r)]

    @property
    def text(self) -> str:
        return "\n".join(f"{r.levelname} {r.name} {r.getMessage()}" for r in self.records)

    def failures(self) -> list[str]:
        """Each record logged with a traceback or at ERROR or above."""
        return [
            f"{r.levelname} {r.name} {r.getMessage()}"
            for r in self.records
            if r.exc_info or r.levelno >= logging.ERROR
        ]
