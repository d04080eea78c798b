"""`arbot playbook ...`: check, list, propose, activate, roll back, suggest and reject playbook versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.core.errors import UserError
from handlers.cli.app import opened_runtime, out, playbook_app


@playbook_app.command("check")
def playbook_check(
    path: Annotated[
        Path | None, typer.Argument(help="A playbook YAML file (default: the bundled one).")
    ] = None,
) -> None:
    """Render every template of every step against sample data and lint it."""
    from bot.learning.check import check_bundle
    from playbooks.loader import PlaybookError, load_bundle

    try:
        bundle = load_bundle(path)
    except PlaybookError as exc:
        raise UserError(str(exc)) from None
    results = check_bundle(bundle)
    table = Table(title=f"Playbook {bundle.playbook.name} ({bundle.label})", title_justify="left")
    for column in ("Ladder", "Step", "Template", "Result"):
        table.add_column(column)
    for check in results:
        verdict = "ok" if check.ok else f"{len(check.problems)} problems"
        table.add_row(check.ladder, check.step, check.template or "(a person)", verdict)
    out().print(table)
    problems = [f"{c.ladder} step {c.step}: {p}" for c in results for p in c.problems]
    if problems:
        raise UserError(f"{bundle.label}: the playbook has problems:\n" + "\n".join(problems))
    out().print(f"All {len(results)} steps render and pass the linter.")
    if bundle.languages:
        from bot.core.language import language_name

        names = ", ".join(language_name(tag) for tag in bundle.languages)
        out().print(f"Checked in English and in {names}.")


@playbook_app.command("list")
def playbook_list() -> None:
    """The stored playbook versions, newest first."""
    from bot.learning.versions import all_versions, ensure_active

    with opened_runtime() as runtime, runtime.writing() as session:
        ensure_active(session, runtime.clock.now())
        versions = all_versions(session)
        table = Table(title="Playbook versions", title_justify="left")
        for column in ("Version", "Status", "Name", "Proposed by", "Approved by", "Why"):
            table.add_column(column)
        for v in versions:
            table.add_row(
                str(v.version),
                v.status,
                v.name,
                v.proposed_by,
                v.approved_by or "",
                v.rationale or "",
            )
    out().print(table)


@playbook_app.command("propose")
def playbook_propose(
    path: Annotated[Path, typer.Argument(help="The new playbook YAML file.")],
    why: Annotated[str, typer.Option("--why", help="What changed and why.")] = "",
) -> None:
    """Store a new playbook version as proposed (it changes nothing until activated)."""
    from bot.learning.versions import propose

    with opened_runtime() as runtime, runtime.writing() as session:
        version = propose(session, path, "cli", why, runtime.clock.now())
        number = version.version
    out().print(
        f"Playbook version {number} proposed. Activate it with `arbot playbook activate {number}`."
    )


@playbook_app.command("activate")
def playbook_activate(version: Annotated[int, typer.Argument(help="The version number.")]) -> None:
    """Make a proposed (or earlier) version the active playbook."""
    from bot.learning.versions import activate

    with opened_runtime() as runtime, runtime.writing() as session:
        activate(session, version, "cli", runtime.clock.now())
    out().print(f"Playbook version {version} is now active.")


@playbook_app.command("rollback")
def playbook_rollback() -> None:
    """Go back to the version that was active before the current one."""
    from bot.learning.versions import rollback

    with opened_runtime() as runtime, runtime.writing() as session:
        previous = rollback(session, "cli", runtime.clock.now())
        number = previous.version
    out().print(f"Rolled back: playbook version {number} is active again.")


@playbook_app.command("suggest")
def playbook_suggest(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, store nothing.")] = False,
) -> None:
    """Propose changes the last weeks' edits and outcomes support; a person approves them."""
    from bot.learning import proposals
    from bot.learning import rules as proposal_rules

    with opened_runtime() as runtime, runtime.writing() as session:
        today, timezone = runtime.today(), runtime.settings.timezone
        if dry_run:
            lines = [p.rationale for p in proposal_rules.evaluate(session, today, timezone)]
        else:
            now = runtime.clock.now()
            lines = [
                f"version {v.version} proposed: {v.rationale}"
                for v in proposals.propose_all(session, today, now, timezone)
            ]
    for line in lines or ["Nothing to propose."]:
        out().print(line, markup=False)


@playbook_app.command("reject")
def playbook_reject(
    version: Annotated[int, typer.Argument(help="The proposed version's number.")],
) -> None:
    """Turn a proposed version down; it is not proposed again for eight weeks."""
    from bot.learning import proposals

    with opened_runtime() as runtime, runtime.writing() as session:
        decision = proposals.reject(
            session, proposals.id_of_version(session, version), "cli", runtime.clock.now()
        )
    out().print(decision.message, markup=False)
