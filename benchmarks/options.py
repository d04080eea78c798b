"""What one run of the benchmarks measures: sizes, databases, how many runs each median takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SCALING_SIZES = (10_000, 30_000, 100_000, 300_000)


@dataclass(frozen=True)
class Options:
    folder: Path  # a temporary folder for files and SQLite databases
    databases: tuple[str, ...]  # the kinds that answer (SQLITE, POSTGRESQL)
    runs: int = 3  # each figure is the median of this many runs
    invoices: int = 100_000  # the book planned, imported and matched against
    payments: int = 10_000
    emails: int = 1_000
    clicks: int = 50
    planned: tuple[int, ...] = (1_000, 20_000)  # reminders planned on the day the clicks land
    memory_invoices: int = 300_000
    scaling: tuple[int, ...] = field(default=SCALING_SIZES)
