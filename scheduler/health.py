"""The health document behind GET /healthz: the database, the scheduler, the last sync, the last
morning plan, the send backlog and each installed workspace. Unhealthy (503) when the database
does not answer or when a scheduler that should run has stopped; everything else is reported for
a person to read (a workspace that cannot be opened is named with the reason, but does not make
the replica unhealthy: a load balancer would then take it away from every other workspace).

Degraded (still 200, and "ok" to anyone without the token, since the replica serves as it
should): a scheduled job keeps failing (its last run failed and it has not succeeded for longer
than its interval, an hour at least): `scheduler.failing` names it, its error and since when; or
a source's (or a CRM's) sync failure is being told to the finance channel: `last_sync.failing`
names it, since when and why; or part of today's plan is not in Slack because Slack refused it
or could not be reached;
`plan_in_slack` says how much is missing, Slack's last answer and when the sweep tries again;
or Slack said the app was uninstalled or its token revoked: `slack` says to reinstall, and
nothing is posted until then; or Slack keeps refusing a redraw, a history, a thread note, an
escalation or a Stripe notice owed to it for a reason no retry changes (the bot out of the channel, the channel archived or gone, a
token Slack does not take): `slack_refused` names each one and what to do; or the mailbox
provider refused arbot's OAuth sign-in, so email waits: `mailbox` says since when and what to
run; or today's plan failed before it was stored: `plan_failed` says the error, how many tries
of how many, and when the sweep tries again (null once no try is left)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.core import slack_access, slack_refusals
from bot.core.models import MailboxGrant, Reminder, ScheduledRun, SourceToken, SyncState
from bot.core.runtime import Runtime
from bot.core.vocabulary import CHANNELS
from bot.ledger.sync_failures import FAILING
from bot.planning import plan_posts
from bot.reminders.outbox import due_now
from bot.workspaces.registry import Workspaces
from scheduler import plan_claim
from scheduler.daily import MORNING_PLAN
from scheduler.runner import Runner


def health(
    runtime: Runtime, runner: Runner | None, workspaces: Workspaces | None = None
) -> tuple[bool, dict[str, Any]]:
    """(healthy, document). Reads the database; call it off the event loop."""
    scheduler_ok, scheduler = _scheduler(runner)
    try:
        with runtime.sessions() as session:
            found: dict[str, Any] = {
                "last_sync": _last_sync(session),
                "last_plan": _last_plan(session),
                "send_backlog": _backlog(session, runtime.clock.now()),
                "plan_in_slack": _plan_in_slack(session, runtime),
                "plan_failed": _plan_failed(session, runtime),
                "mailbox": _mailbox(session),
                "slack": _slack(session, runtime),
                "slack_refused": _slack_refused(session),
            }
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        return False, {
            "status": "unhealthy",
            "database": f"error: {reason}",
            "scheduler": scheduler,
        }
    ok = scheduler_ok
    status = "ok" if ok else "unhealthy"
    mailbox_refused = bool(found["mailbox"] and found["mailbox"]["refused"])
    slack_refused = found["slack"] not in (None, "ok") or bool(found["slack_refused"])
    failing = bool(scheduler.get("failing")) or bool(found["last_sync"]["failing"])
    if ok and (found["plan_in_slack"] is not None or mailbox_refused or slack_refused or failing):
        status = "degraded"
    if ok and found["plan_failed"] is not None:
        status = "degraded"
    doc = {"status": status, "database": "ok", "scheduler": scheduler, **found}
    if workspaces is not None:
        doc["workspaces"] = _workspaces(workspaces)
    return ok, doc


def _workspaces(workspaces: Workspaces) -> dict[str, str]:
    """Each installed workspace: "ok", or why it cannot be served."""
    found = {}
    for workspace in workspaces.installed():
        try:
            with workspaces.runtime(workspace.team_id).sessions() as session:
                session.execute(select(1))
            found[workspace.team_id] = "ok"
        except Exception as exc:
            found[workspace.team_id] = f"error: {str(exc).splitlines()[0][:200]}"
    return found


def _scheduler(runner: Runner | None) -> tuple[bool, dict[str, Any]]:
    if runner is None:
        return True, {"role": "off"}
    status = runner.status()
    doc: dict[str, Any] = {
        "instance": status.instance,
        "role": status.role,
        "running": status.running,
        "jobs": {
            name: {"at": _iso(result.at), "outcome": result.outcome, "error": result.error}
            for name, result in sorted(status.jobs.items())
        },
        "failing": {
            name: {"error": result.error, "failing_since": _iso(result.failing_since)}
            for name, result in sorted(status.failing.items())
        },
    }
    if status.detail:
        doc["detail"] = status.detail
    # Refused: another process has the SQLite database's jobs, and this one serves HTTP as meant.
    return status.running or status.role == "refused", doc


def _last_sync(session: Session) -> dict[str, Any]:
    connected = list(session.scalars(select(SourceToken.provider).order_by(SourceToken.provider)))
    synced = dict(session.execute(select(SyncState.source, SyncState.synced_at)).all())
    times = [t for t in synced.values() if t is not None]
    return {
        "at": _iso(max(times)) if times else None,
        "connected": connected,
        "sources": {name: _iso(at) for name, at in sorted(synced.items())},
        "failing": _sync_failing(session),
    }


def _sync_failing(session: Session) -> dict[str, Any]:
    """Each source (or CRM) whose sync failure is being told to the finance channel: since when
    it fails, and why (bot/ledger/sync_failures.py)."""
    found = {}
    for source, summary in session.execute(select(SyncState.source, SyncState.summary)):
        failing = (summary or {}).get(FAILING) or {}
        if failing.get("told"):
            found[source] = {"since": failing.get("since"), "reason": failing.get("reason")}
    return dict(sorted(found.items()))


def _last_plan(session: Session) -> dict[str, Any] | None:
    run = session.scalars(
        select(ScheduledRun)
        .where(ScheduledRun.job == MORNING_PLAN)
        .order_by(ScheduledRun.day.desc())
        .limit(1)
    ).first()
    if run is None:
        return None
    return {
        "day": run.day.isoformat(),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "outcome": run.outcome,
        "instance": run.instance,
    }


def _slack(session: Session, runtime: Runtime) -> str | None:
    """What to do when Slack said the app was uninstalled or its token revoked; else "ok" (None
    without Slack)."""
    token = runtime.settings.slack_bot_token
    if not token:
        return None
    revoked = slack_access.revocation(session, token.get_secret_value())
    return slack_access.describe(revoked) if revoked is not None else "ok"


def _slack_refused(session: Session) -> list[dict[str, Any]]:
    """What Slack is owed and keeps refusing until a person acts: which message (or which post:
    an escalation, a Stripe notice), Slack's answer, how many tries, the next one, and what to do
    (bot/core/slack_refusals.py)."""
    return [
        {
            "what": refused.what,
            "channel": refused.channel,
            "ts": refused.ts,
            "error": refused.error,
            "attempts": refused.attempts,
            "next_try_at": _iso(refused.next_try_at),
            "to_do": refused.to_do,
        }
        for refused in slack_refusals.waiting(session)
    ]


def _plan_in_slack(session: Session, runtime: Runtime) -> dict[str, Any] | None:
    """What of today's plan Slack does not have, when Slack is set up; None when it has it all
    (or a process is posting it right now)."""
    settings = runtime.settings
    if not settings.slack_bot_token or not settings.finance_channel:
        return None
    gap = plan_posts.missing(session, runtime.today(), runtime.clock.now())
    if gap is None or gap.posting:
        return None
    return {
        "day": gap.day.isoformat(),
        "missing": gap.cards,
        "of": gap.of,
        "refused": gap.failures,
        "last_error": gap.last_error,
        "next_try_at": _iso(gap.next_try_at),
    }


def _plan_failed(session: Session, runtime: Runtime) -> dict[str, Any] | None:
    """Today's plan when it failed before it was stored (the sweep tries it again); None when
    it did not."""
    run = session.get(ScheduledRun, (MORNING_PLAN, runtime.today()))
    failure = plan_claim.failed(run) if run is not None else None
    if failure is None or plan_claim.plan_stored(session, failure.day):
        return None
    return {
        "day": failure.day.isoformat(),
        "tries": failure.tries,
        "of": plan_claim.PLAN_TRIES,
        "error": failure.error,
        "next_try_at": _iso(failure.next_try_at),
    }


def _mailbox(session: Session) -> dict[str, Any]:
    """The mailboxes signed in by OAuth, and each grant the provider refused: since when, why."""
    rows = session.execute(
        select(MailboxGrant.provider, MailboxGrant.refused_at, MailboxGrant.refusal).order_by(
            MailboxGrant.provider
        )
    ).all()
    return {
        "connected": [provider for provider, _, _ in rows],
        "refused": {
            provider: {"at": _iso(at), "reason": reason}
            for provider, at, reason in rows
            if at is not None
        },
    }


def _backlog(session: Session, now: datetime) -> dict[str, Any]:
    due, oldest = session.execute(
        select(func.count(), func.min(Reminder.send_after)).where(due_now(now, set(CHANNELS)))
    ).one()
    sending = session.scalar(
        select(func.count()).select_from(Reminder).where(Reminder.state == "sending")
    )
    return {"due": due, "oldest_due_since": _iso(oldest), "sending": sending or 0}


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None
