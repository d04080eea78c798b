"""`python -m benchmarks` (or `make bench`): every benchmark on SQLite and PostgreSQL, each figure
beside the floor of the same work measured in the same run, then a verdict; exits 1 when a target
is missed. `--help` lists the sizes and `--only` runs some benchmarks alone."""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    approvals,
    bounces,
    forecast,
    importing,
    memory,
    payments,
    planner,
    scaling,
    sending,
    slack_calls,
    startup,
)
from benchmarks.databases import KINDS, POSTGRESQL, postgres_absent
from benchmarks.options import SCALING_SIZES, Options
from benchmarks.results import Result, Skipped, figure, print_table

BENCHMARKS: dict[str, Callable[[Options], list[Result]]] = {
    "startup": startup.run,
    "import": importing.run,
    "plan": planner.run,
    "memory": memory.run,
    "payments": payments.run,
    "send": sending.run,
    "approvals": approvals.run,
    "bounces": bounces.run,
    "forecast": forecast.run,
    "slack_calls": slack_calls.run,
}


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time arbot's heavy paths against their floors, on SQLite and PostgreSQL.",
    )
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks to run (default all: {','.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--databases",
        default=",".join(KINDS),
        help="comma-separated: sqlite,postgresql (default both; PostgreSQL is skipped with a "
        "note when it does not answer at ARBOT_BENCH_POSTGRES)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--invoices", type=int, default=100_000, help="the book's open invoices")
    parser.add_argument("--payments", type=int, default=10_000, help="bank payments to import")
    parser.add_argument("--emails", type=int, default=1_000, help="emails to send")
    parser.add_argument("--clicks", type=int, default=50, help="concurrent Approve clicks")
    parser.add_argument(
        "--planned",
        default="1000,20000",
        help="reminders planned on the day the clicks land, one burst each (default 1000,20000)",
    )
    parser.add_argument(
        "--memory-invoices",
        type=int,
        default=300_000,
        help="the book whose plan's peak memory is measured",
    )
    parser.add_argument(
        "--scaling",
        nargs="?",
        const=",".join(str(s) for s in SCALING_SIZES),
        default=None,
        help="also print the scaling table of import and plan over these book sizes "
        "(default 10000,30000,100000,300000; long)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"--only: no benchmark named {', '.join(unknown)}; use {','.join(BENCHMARKS)}"
        )
    wanted = [name.strip() for name in args.databases.split(",") if name.strip()]
    if any(name not in KINDS for name in wanted):
        raise SystemExit(f"--databases: use {','.join(KINDS)}")
    skipped: list[Skipped] = []
    kinds = [KINDS[name] for name in wanted]
    if POSTGRESQL in kinds:
        absent = postgres_absent()
        if absent:
            kinds.remove(POSTGRESQL)
            skipped.append(Skipped("every PostgreSQL line", POSTGRESQL, absent))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="arbot-bench-") as folder:
        options = Options(
            folder=Path(folder),
            databases=tuple(kinds),
            runs=args.runs,
            invoices=args.invoices,
            payments=args.payments,
            emails=args.emails,
            clicks=args.clicks,
            planned=_sizes(args.planned),
            memory_invoices=args.memory_invoices,
            scaling=_sizes(args.scaling) if args.scaling else (),
        )
        failed: list[str] = []
        for name in only:
            try:
                measured = BENCHMARKS[name](options)
            except Exception as exc:  # one broken benchmark must not lose the others' figures
                traceback.print_exc()
                failed.append(name)
                skipped.append(Skipped(name, "", f"FAILED: {type(exc).__name__}: {exc}"[:160]))
                continue
            for result in measured:
                print(
                    f"{result.name} ({result.database or 'no database'}, {result.size}): "
                    f"{figure(result.value, result.unit)}"
                    + (f", floor {figure(result.floor, result.unit)}" if result.floor else ""),
                    flush=True,
                )
            results += measured
        title = (
            f"arbot benchmarks: {platform.node()}, {platform.processor() or platform.machine()}, "
            f"{_cores()} cores, Python {platform.python_version()}; medians of {args.runs}"
        )
        ok = print_table(title, results, skipped) and not failed
        if options.scaling:
            scaling.run(options)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Peak memory of the benchmark process: {peak_mib:.0f} MiB")
    raise SystemExit(0 if ok else 1)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()
