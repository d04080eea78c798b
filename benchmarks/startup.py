"""How long `arbot` takes to start: `arbot --help` and `arbot aging` on an empty SQLite database,
each the median of 5 fresh interpreters, beside a bare interpreter start (its floor)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from benchmarks.databases import SQLITE
from benchmarks.options import Options
from benchmarks.results import Result

RUNS = 5
TARGET_SECONDS = 0.5


def _median_seconds(args: list[str], env: dict[str, str]) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def run(options: Options) -> list[Result]:
    arbot = [sys.executable, "-m", "handlers.cli.main"]
    env = os.environ | {"DATABASE_URL": f"sqlite:///{options.folder / 'startup.db'}"}
    # Untimed, with bytecode written even where the environment turns it off
    # (PYTHONDONTWRITEBYTECODE): an installed arbot has its modules compiled by pip, so a timed
    # start must not compile them again.
    compiling = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([*arbot, "db", "upgrade"], env=compiling, check=True, capture_output=True)
    for warm_up in (["--help"], ["aging"]):
        subprocess.run([*arbot, *warm_up], env=compiling, check=True, capture_output=True)
    bare = _median_seconds([sys.executable, "-c", "pass"], env)
    help_seconds = _median_seconds([*arbot, "--help"], env)
    aging_seconds = _median_seconds([*arbot, "aging"], env)
    size = f"median of {RUNS} starts"
    return [
        Result(
            "arbot --help",
            "",
            size,
            help_seconds,
            floor=bare,
            floor_name="bare python",
            target=TARGET_SECONDS,
        ),
        Result(
            "arbot aging, empty ledger",
            SQLITE,
            size,
            aging_seconds,
            floor=bare,
            floor_name="bare python",
            target=TARGET_SECONDS,
        ),
    ]
