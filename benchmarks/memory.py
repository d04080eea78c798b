"""The stored plan's peak memory on a book of 300,000 open invoices: the plan runs in a fresh
interpreter of its own (`python -m benchmarks.memory URL`), which reports its peak resident set
(VmHWM: getrusage's maximum would carry over the parent's across exec) and what it held before
planning (the interpreter, arbot's modules, the runtime)."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.books import book_csv, import_book, size_text
from benchmarks.databases import database, open_runtime
from benchmarks.options import Options
from benchmarks.results import MIB, Result

TARGET_MIB = 400.0


def _status_mib(field: str) -> float:
    """A size from /proc/self/status (VmRSS: resident now; VmHWM: the peak), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(kind: str, options: Options) -> list[Result]:
    invoices = options.memory_invoices
    with database(kind, options.folder, f"memory-{invoices}") as url:
        runtime = open_runtime(url)
        try:
            import_book(runtime, book_csv(options.folder, invoices))
        finally:
            runtime.close()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", url],
            check=True,
            capture_output=True,
            text=True,
        )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        Result(
            "plan, stored: peak memory",
            kind,
            size_text(invoices),
            figures["peak"],
            unit=MIB,
            target=TARGET_MIB,
            note=f"the planning process held {figures['before']:.0f} MiB before it planned; "
            f"{figures['reminders']:,} reminders and escalations stored.",
        )
    ]


def run(options: Options) -> list[Result]:
    return [r for kind in options.databases for r in measure(kind, options)]


def plan_and_report(url: str) -> None:
    from benchmarks.planner import plan

    runtime = open_runtime(url)
    before = _status_mib("VmRSS")
    stored = plan(runtime, dry_run=False)
    runtime.close()
    peak = _status_mib("VmHWM")
    print(json.dumps({"before": before, "peak": peak, "reminders": len(stored.reminder_ids)}))


if __name__ == "__main__":
    plan_and_report(sys.argv[1])
