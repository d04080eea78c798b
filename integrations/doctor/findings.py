"""What one check found, and running the checks side by side, each within its time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Status = Literal["ok", "problem", "not_configured"]


@dataclass(frozen=True, slots=True)
class Finding:
    integration: str  # what a person calls it: "Slack", "SMTP", "QuickBooks"
    check: str  # a short name scripts can rely on: "token", "scopes", "channel", "sign-in"
    status: Status
    message: str  # in words; for a problem, what to fix

    def as_json(self) -> dict[str, str]:
        return {
            "integration": self.integration,
            "check": self.check,
            "status": self.status,
            "message": self.message,
        }


def ok(integration: str, check: str, message: str) -> Finding:
    return Finding(integration, check, "ok", message)


def problem(integration: str, check: str, message: str) -> Finding:
    return Finding(integration, check, "problem", message)


def not_configured(integration: str, message: str) -> Finding:
    return Finding(integration, "configured", "not_configured", message)


@dataclass(frozen=True, slots=True)
class Check:
    integration: str
    run: Callable[[], list[Finding]]


def run_checks(checks: Sequence[Check], timeout: float) -> list[Finding]:
    """Every check at once, each in a thread of its own; the findings in the checks' order. A check
    still running after `timeout` seconds is reported as such (its thread is left to end by
    itself: a daemon, it never holds the command up), and one that raises is reported with what
    it raised."""
    results: list[list[Finding] | None] = [None] * len(checks)

    def work(index: int, check: Check) -> None:
        try:
            results[index] = check.run()
        except Exception as exc:  # a check's own failure is a finding, never the end of the run
            log.warning("the %s check failed", check.integration, exc_info=True)
            results[index] = [
                problem(check.integration, "error", f"the check itself failed: {exc}")
            ]

    threads = [
        threading.Thread(target=work, args=(i, c), name=f"doctor-{i}", daemon=True)
        for i, c in enumerate(checks)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    found: list[Finding] = []
    for check, result in zip(checks, results, strict=True):
        if result is None:
            found.append(
                problem(
                    check.integration,
                    "timeout",
                    f"no answer within {timeout:g} s: check that it can be reached from here",
                )
            )
        else:
            found.extend(result)
    return found
