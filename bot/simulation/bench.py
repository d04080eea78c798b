"""The simulation as a test bench: every arm (no follow-up, the active playbook, each proposed
version) on the same seeds, so the spread over seeds and the paired difference from no follow-up
can be read, not one lucky run.

The opening ledger is loaded once into a prepared database; each arm's database is a copy with
its playbook made active; each (arm, seed) plays its own copy of that. With `workers` above 1 the
runs go to a process pool (each run is independent; the figures do not depend on the order).
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.errors import UserError
from bot.core.models import PlaybookVersion
from bot.core.settings import Settings, load_settings
from bot.learning.versions import active_version, load_checked
from bot.simulation.model import BehaviourModel
from bot.simulation.report import Bench, RunFigures
from bot.simulation.run import SIMULATION_START, install_playbook, play, prepare
from integrations.base.ledger import LedgerBatch

DEFAULT_SEEDS = 20
MAX_SEEDS = 500
NONE_KEY = "none"


@dataclass(frozen=True)
class Arm:
    """One way of following up. `playbook` is a stored version's content (JSON); None with
    `follow_up` is the bundled playbook."""

    key: str  # "none", "active", "v3"
    label: str  # what the printout calls it
    follow_up: bool = True
    playbook: str | None = None
    version: int | None = None


NO_FOLLOW_UP = Arm(NONE_KEY, "no follow-up", follow_up=False)


def stored_arms(session: Session, playbook: Path | None = None) -> list[Arm]:
    """The arms to compare with no follow-up: the active playbook version (the bundled playbook
    when none is stored yet), each proposed version not yet approved, and a playbook file."""
    active = active_version(session)
    if active is None:
        arms = [Arm("active", "the bundled playbook (no version stored yet)")]
    else:
        arms = [
            Arm(
                "active",
                f"the active playbook (version {active.version})",
                playbook=active.content,
                version=active.version,
            )
        ]
    proposed = session.scalars(
        select(PlaybookVersion)
        .where(PlaybookVersion.status == "proposed")
        .order_by(PlaybookVersion.version)
    )
    for version in proposed:
        why = f": {version.rationale}" if version.rationale else ""
        arms.append(
            Arm(
                f"v{version.version}",
                f"proposed version {version.version}{why}",
                playbook=version.content,
                version=version.version,
            )
        )
    if playbook is not None:
        arms.append(
            Arm("file", f"the playbook file {playbook}", playbook=load_checked(playbook).to_json())
        )
    return arms


def seeds_from(first: int, count: int) -> list[int]:
    if not 1 <= count <= MAX_SEEDS:
        raise UserError(f"--seeds: between 1 and {MAX_SEEDS} seeds, not {count}")
    return list(range(first, first + count))


def run_bench(
    days: int,
    seeds: list[int],
    model: BehaviourModel,
    ledger: LedgerBatch,
    arms: list[Arm],
    *,
    start_day: date = SIMULATION_START,
    settings: Settings | None = None,
    workers: int = 1,
) -> Bench:
    """Every arm on every seed over `days` days from `start_day`. No follow-up is always the
    first arm (the one the others are compared with); `arms` are the others, in order."""
    if not 1 <= days <= 730:
        raise UserError(f"simulate between 1 and 730 days, not {days}")
    if not seeds:
        raise UserError("simulate at least one seed")
    keys = [arm.key for arm in arms]
    if NONE_KEY in keys or len(set(keys)) != len(keys):
        raise UserError(f"each arm needs its own name, and '{NONE_KEY}' is no follow-up's")
    everything = [NO_FOLLOW_UP, *arms]
    base = settings or load_settings(env_file=None)
    with tempfile.TemporaryDirectory(prefix="arbot-simulation-") as name:
        folder = Path(name)
        opening = folder / "opening.db"
        customers, invoices = prepare(base, opening, ledger, start_day)
        prepared: dict[str, Path] = {}
        for arm in everything:
            prepared[arm.key] = folder / f"arm-{arm.key}.db"
            shutil.copy(opening, prepared[arm.key])
            if arm.playbook is not None:
                install_playbook(base, prepared[arm.key], start_day, arm.playbook, arm.label)
        tasks = [
            (
                base,
                prepared[arm.key],
                folder / f"{arm.key}-{seed}.db",
                start_day,
                days,
                seed,
                model,
                arm.follow_up,
            )
            for arm in everything
            for seed in seeds
        ]
        if workers > 1 and len(tasks) > 1:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
                figures = list(pool.map(_run_one, *zip(*tasks, strict=True)))
        else:
            figures = [_run_one(*task) for task in tasks]
    runs: dict[str, list[RunFigures]] = {}
    for index, arm in enumerate(everything):
        runs[arm.key] = figures[index * len(seeds) : (index + 1) * len(seeds)]
    return Bench(
        start=start_day,
        end=start_day + timedelta(days=days - 1),
        days=days,
        seeds=list(seeds),
        customers=customers,
        invoices_at_start=invoices,
        model=model,
        arms=[(arm.key, arm.label) for arm in everything],
        runs=runs,
    )


def _run_one(
    base: Settings,
    prepared: Path,
    database: Path,
    start_day: date,
    days: int,
    seed: int,
    model: BehaviourModel,
    follow_up: bool,
) -> RunFigures:
    """One arm on one seed, on its own copy of the arm's prepared database (removed after)."""
    shutil.copy(prepared, database)
    try:
        return play(base, database, start_day, days, seed, model, follow_up)
    finally:
        for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            leftover.unlink(missing_ok=True)
