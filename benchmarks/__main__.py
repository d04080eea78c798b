"""Run every benchmark and print one table: `make bench` (or `python -m benchmarks`)."""

from __future__ import annotations

import resource

from rich.console import Console
from rich.table import Table

from benchmarks import ledger, planner, reconcile, sending, slack, startup


def main() -> None:
    startup_results, startup_note = startup.run()
    results = startup_results + ledger.run()
    plan_results, plan_note = planner.run()
    results += plan_results
    slack_results, slack_note = slack.run()
    results += slack_results
    send_results, send_note = sending.run()
    results += send_results
    reconcile_results, reconcile_note = reconcile.run()
    results += reconcile_results
    table = Table(title="arbot benchmarks (this machine)", title_justify="left")
    for column in ("benchmark", "size", "time", "target", "verdict"):
        table.add_column(column, justify="right" if column in ("time", "target") else "left")
    failed = False
    for result in results:
        ok = result.seconds <= result.target_seconds
        failed |= not ok
        table.add_row(
            result.name,
            result.size,
            f"{result.seconds:.2f} s",
            f"≤ {result.target_seconds:g} s",
            "ok" if ok else "TOO SLOW",
        )
    Console().print(table)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Console().print(startup_note)
    Console().print(plan_note)
    Console().print(slack_note)
    Console().print(send_note)
    Console().print(reconcile_note)
    Console().print(f"Peak memory of the whole run: {peak_mib:.0f} MiB")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
