"""`arbot simulate` and `arbot report`: what follow-up would change, and what it did."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from handlers.cli.app import app, opened_runtime, out


@app.command("simulate")
def simulate_command(
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 90,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same run).")] = 7,
    model: Annotated[
        Path | None, typer.Option("--model", help="A YAML file of behaviour probabilities.")
    ] = None,
    customers: Annotated[int, typer.Option("--customers", help="Sample customers.")] = 90,
    playbook: Annotated[
        Path | None, typer.Option("--playbook", help="A playbook file (default: the bundled one).")
    ] = None,
) -> None:
    """What following up is worth on the sample ledger, against no follow-up: from a stated
    model of customer behaviour, not from real customers."""
    import tempfile

    from bot.core.clock import local_date
    from bot.ledger.sample import write_csv
    from bot.simulation.model import BehaviourModel, load_model
    from bot.simulation.report import describe
    from bot.simulation.run import sample_ledger, simulate
    from integrations.csv_ledger import read_ledger_csv

    with opened_runtime() as runtime:  # ARBOT_WORKSPACE's business rules, when it names one
        settings = runtime.settings
    start_day = local_date(settings.clock(), settings.timezone)
    with tempfile.TemporaryDirectory(prefix="arbot-simulation-") as folder:
        rows = sample_ledger(start_day, customers)
        ledger = read_ledger_csv(
            write_csv(Path(folder) / "ledger.csv", rows), settings.phone_region
        )
    result = simulate(
        days,
        seed,
        load_model(model) if model else BehaviourModel(),
        ledger,
        start_day=start_day,
        playbook=playbook,
        settings=settings,
    )
    out().print(describe(result), markup=False)


@app.command()
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the charts and index.html.")],
    weeks: Annotated[int, typer.Option("--weeks", help="How many weeks back (1-104).")] = 12,
) -> None:
    """Outcomes per step and tier, DSO, aging and cash collected by week, and the followed-up
    customers against the control group or the observed segment: charts and an HTML page."""
    from bot.learning.comparison import pilot_of
    from bot.learning.report import write_report

    with opened_runtime() as runtime, runtime.sessions() as session:
        paths = write_report(
            session,
            runtime.today(),
            out_dir,
            timezone=runtime.settings.timezone,
            weeks=weeks,
            pilot=pilot_of(runtime.settings),
        )
    for path in paths:
        out().print(str(path), markup=False)
