"""`arbot simulate` and `arbot report`: what follow-up would change, and what it did."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from handlers.cli.app import Json, app, opened_runtime, out, print_json


@app.command("simulate")
def simulate_command(
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 90,
    seed: Annotated[
        int, typer.Option("--seed", help="The first random seed (same seeds, same figures).")
    ] = 7,
    seeds: Annotated[
        int, typer.Option("--seeds", help="How many seeds each arm runs on (1-500).")
    ] = 20,
    model: Annotated[
        Path | None, typer.Option("--model", help="A YAML file of behaviour probabilities.")
    ] = None,
    fit: Annotated[
        bool, typer.Option("--fit", help="Fit the behaviour model to the ledger's own history.")
    ] = False,
    customers: Annotated[int, typer.Option("--customers", help="Sample customers.")] = 90,
    playbook: Annotated[
        Path | None,
        typer.Option("--playbook", help="A playbook file to compare too, as one more arm."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Processes to run seeds in (default: the CPUs).")
    ] = 0,
    as_json: Json = False,
) -> None:
    """What following up is worth on the sample ledger: no follow-up, the active playbook and
    each proposed version on the same seeds, with the spread over seeds. From a stated (or
    fitted) model of customer behaviour, not from real customers."""
    import os
    import tempfile

    from bot.core.clock import local_date
    from bot.ledger.sample import write_csv
    from bot.simulation.bench import run_bench, seeds_from, stored_arms
    from bot.simulation.fit import fit_model, read_history
    from bot.simulation.fit_report import describe_fit, fit_json
    from bot.simulation.model import BehaviourModel, load_model
    from bot.simulation.report import as_json as bench_json
    from bot.simulation.report import describe
    from bot.simulation.run import sample_ledger
    from integrations.csv_ledger import read_ledger_csv

    chosen = seeds_from(seed, seeds)
    defaults = load_model(model) if model else BehaviourModel()
    fitted = None
    with opened_runtime() as runtime:  # ARBOT_WORKSPACE's business rules, when it names one
        settings = runtime.settings
        with runtime.sessions() as session:
            arms = stored_arms(session, playbook)
            if fit:
                today = runtime.today()
                history = read_history(session, today, settings.timezone)
                fitted = fit_model(history, today, settings.weekday_numbers(), defaults)
    start_day = local_date(settings.clock(), settings.timezone)
    with tempfile.TemporaryDirectory(prefix="arbot-simulation-") as folder:
        rows = sample_ledger(start_day, customers)
        ledger = read_ledger_csv(
            write_csv(Path(folder) / "ledger.csv", rows),
            settings.phone_region,
            today=start_day,
            timezone=settings.timezone,  # its paid days, from their start there
        )
    if fitted is not None and not as_json:
        out().print(describe_fit(fitted, defaults) + "\n", markup=False, soft_wrap=True)
    bench = run_bench(
        days,
        chosen,
        fitted.model if fitted is not None else defaults,
        ledger,
        arms,
        start_day=start_day,
        settings=settings,
        workers=workers or min(os.cpu_count() or 1, 4),
    )
    if as_json:
        doc = bench_json(bench)
        doc["fit"] = fit_json(fitted, defaults) if fitted is not None else None
        print_json(doc)
    else:
        out().print(describe(bench), markup=False, soft_wrap=True)


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
