"""How long `arbot` takes to start: `arbot --help` and `arbot aging` on an empty SQLite database,
each the median of 5 fresh interpreters, beside a bare interpreter start for scale."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.ledger import Result

RUNS = 5


def _median_seconds(args: list[str], env: dict[str, str]) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def run() -> tuple[list[Result], str]:
    arbot = [sys.executable, "-m", "handlers.cli.main"]
    with tempfile.TemporaryDirectory() as folder:
        env = os.environ | {"DATABASE_URL": f"sqlite:///{Path(folder) / 'arbot.db'}"}
        subprocess.run([*arbot, "db", "upgrade"], env=env, check=True, capture_output=True)
        bare = _median_seconds([sys.executable, "-c", "pass"], env)
        help_seconds = _median_seconds([*arbot, "--help"], env)
        aging_seconds = _median_seconds([*arbot, "aging"], env)
    results = [
        Result("arbot --help (start-up)", f"median of {RUNS}", help_seconds, 0.5),
        Result("arbot aging (start-up, empty ledger)", f"median of {RUNS}", aging_seconds, 0.5),
    ]
    note = (
        f"Start-up: a bare interpreter starts in {bare:.2f} s; `arbot --help` takes "
        f"{help_seconds / bare:.0f} times that, `arbot aging` {aging_seconds / bare:.0f} times."
    )
    return results, note
