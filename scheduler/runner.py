"""The scheduler inside `arbot serve`: APScheduler (3.x, in-process) fires the jobs of
`scheduler.jobs`; the leadership of `scheduler.leader` decides which of them run here.

APScheduler's 3.x job stores cannot be shared between processes, so nothing is stored in it: each
job is a stateless tick that reads what is due from the database, and the database guards every
effect (SKIP LOCKED for sends, `scheduled_runs` for the once-a-day jobs).

On PostgreSQL the leader renews its lease (`scheduler.leader.DatabaseLease`) every
ARBOT_LEADER_POLL_SECONDS (default 5), and the other replicas read it as often; one that has seen
it unchanged for ARBOT_LEADER_LEASE_SECONDS (default 15) takes it over. A replica renews its lease
again just before each leader's job, and runs the job only if that succeeded in time: a leader
that was frozen and wakes after losing the lease steps down instead. The polls run on a thread
of their own, so long jobs never delay a renewal; tests shorten both settings."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.escalations.notes import SlackOut
from bot.workspaces.registry import Workspaces
from scheduler.jobs import Job, declare_jobs, workspace_jobs
from scheduler.leader import LEASE_SECONDS, POLL_SECONDS, Leadership, leadership_for, this_instance

log = logging.getLogger(__name__)
POLL_JOB = "leadership"
MORE_JOB = "workspaces"
JOB_THREADS = 10


# A job whose last run failed, and that has not succeeded for longer than its interval and this,
# is reported as failing (/healthz is degraded): one failed run of the send worker is not news.
FAILING_AFTER_AT_LEAST = timedelta(hours=1)


@dataclass(frozen=True)
class JobResult:
    at: datetime  # the wall-clock instant the run ended, UTC
    outcome: str | None = None
    error: str | None = None
    # After a failed run: when the job last succeeded here, or its first failure since this
    # process began running it.
    failing_since: datetime | None = None


@dataclass(frozen=True)
class RunnerStatus:
    instance: str
    role: str  # "leader", "follower", "refused" (SQLite: another process leads) or "stopped"
    running: bool
    detail: str | None = None
    jobs: dict[str, JobResult] = field(default_factory=dict)
    # the jobs whose last run failed and that have not succeeded for longer than their interval
    # (FAILING_AFTER_AT_LEAST at least)
    failing: dict[str, JobResult] = field(default_factory=dict)


def leader_poll_seconds() -> float:
    return _seconds("ARBOT_LEADER_POLL_SECONDS", POLL_SECONDS)


def leader_lease_seconds(poll_seconds: float) -> float:
    lease = _seconds("ARBOT_LEADER_LEASE_SECONDS", LEASE_SECONDS)
    if lease < 2 * poll_seconds:
        raise UserError(
            f"ARBOT_LEADER_LEASE_SECONDS: {lease:g} is shorter than two polls "
            f"(ARBOT_LEADER_POLL_SECONDS is {poll_seconds:g}); the leader renews at every poll "
            "and needs a lease that outlasts one that fails: raise it, or poll more often"
        )
    return lease


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable, "")
    try:
        seconds = float(text) if text else default
    except ValueError:
        raise UserError(f"{variable}: {text!r} is not a number of seconds") from None
    if not 0 < seconds < math.inf:
        raise UserError(f"{variable}: {text!r} is not a positive number of seconds")
    return seconds


def wall_clock() -> datetime:
    """APScheduler's own time (when to fire), never business time: ARBOT_NOW does not move it."""
    return datetime.now(UTC)


class Runner:
    """Runs the jobs this process should run, and notes what each last did (for /healthz)."""

    def __init__(
        self,
        jobs: list[Job],
        leadership: Leadership,
        instance: str,
        poll_seconds: float = POLL_SECONDS,
        more_jobs: Callable[[], list[Job]] | None = None,
    ) -> None:
        self.jobs = jobs
        # Jobs that come and go while running (each installed workspace's), declared again
        # every poll: new ones start, changed ones restart, gone ones stop.
        self.more_jobs = more_jobs
        self._more: dict[str, Job] = {}
        self.leadership = leadership
        self.instance = instance
        self.poll_seconds = poll_seconds
        self.role = "stopped"
        self.detail: str | None = None
        self._results: dict[str, JobResult] = {}
        self._guard = threading.Lock()  # one thread at once asks the leadership, and acts on it
        self._stopping = False
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(JOB_THREADS),
                POLL_JOB: ThreadPoolExecutor(1),  # busy job threads never delay a renewal
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def start(self) -> None:
        """Start the jobs this process runs; on SQLite, refuse (and say why) if another leads."""
        if self.leadership.takes_over:
            self._scheduler.start()
            self.role = "follower"
            self._add([j for j in self.jobs if not j.leader_only])
            self._scheduler.add_job(
                self._poll,
                IntervalTrigger(seconds=self.poll_seconds),
                id=POLL_JOB,
                executor=POLL_JOB,
                next_run_time=wall_clock(),
            )
            self._watch_more()
            return
        if not self.leadership.acquire():
            self.role, self.detail = "refused", self._refusal()
            log.warning("scheduler not started: %s", self.detail)
            return
        self._scheduler.start()
        self.role = "leader"
        self._add(self.jobs)
        log.info("running the scheduled jobs: %s", ", ".join(j.name for j in self.jobs))
        self._watch_more()

    def _watch_more(self) -> None:
        if self.more_jobs is None:
            return
        self._scheduler.add_job(
            self._refresh_more,
            IntervalTrigger(seconds=self.poll_seconds),
            id=MORE_JOB,
            next_run_time=wall_clock(),
        )

    def _refresh_more(self) -> None:
        """Start, restart or stop the jobs `more_jobs` declares now."""
        assert self.more_jobs is not None
        declared = {job.name: job for job in self.more_jobs()}
        with self._guard:  # not while leadership changes hands, nor once stopping
            if self._stopping:
                return
            for name in [n for n in self._more if n not in declared]:
                self._more.pop(name)
                if self._scheduler.get_job(name) is not None:
                    self._scheduler.remove_job(name)
            changed = [
                job
                for name, job in declared.items()
                if name not in self._more or self._more[name].version != job.version
            ]
            self._more.update({job.name: job for job in changed})
            self._add([j for j in changed if self.role == "leader" or not j.leader_only])

    def _refusal(self) -> str:
        holder = self.leadership.holder()
        who = f"process {holder}" if holder else "another process"
        return (
            f"{who} already runs the scheduled jobs for this SQLite database and holds "
            f"{self.leadership}; SQLite allows one, so this process serves HTTP only. "
            "Stop the other process, or use PostgreSQL to run several"
        )

    def stop(self) -> None:
        """Let running jobs finish (the send worker ends its tick), then give up leadership."""
        with self._guard:  # from now on no job thread touches the scheduler: shutting it down
            self._stopping = True  # waits for them while it holds the scheduler's own locks
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        with self._guard:
            self.leadership.release()
        self.role = "stopped"

    def status(self) -> RunnerStatus:
        results = dict(self._results)
        triggers = {job.name: job.trigger for job in self._all()}
        now = wall_clock()
        failing = {
            name: result
            for name, result in results.items()
            if result.error is not None
            and result.failing_since is not None
            and now - result.failing_since > _failing_after(triggers.get(name), result.at)
        }
        return RunnerStatus(
            instance=self.instance,
            role=self.role,
            running=self._scheduler.running,
            detail=self.detail,
            jobs=results,
            failing=failing,
        )

    def _add(self, jobs: list[Job]) -> None:
        for job in jobs:  # each runs once now, then on its schedule
            self._scheduler.add_job(
                self._run,
                job.trigger,
                args=[job],
                id=job.name,
                next_run_time=wall_clock(),
                replace_existing=True,
            )

    def _all(self) -> list[Job]:
        return [*self.jobs, *self._more.values()]

    def _leads(self) -> bool:
        """Ask the leadership (on PostgreSQL: renew the lease), and follow what it says."""
        with self._guard:
            if self._stopping:
                return False
            leads = self.leadership.acquire()
            if leads and self.role != "leader":
                self.role = "leader"
                log.info("this replica (%s) now runs the scheduled jobs", self.instance)
                self._add([j for j in self._all() if j.leader_only])
            elif not leads and self.role == "leader":
                self.role = "follower"
                holder = self.leadership.holder()
                log.warning(
                    "stepping down: this replica (%s) no longer leads (%s); it runs no leader's "
                    "job until it leads again",
                    self.instance,
                    f"{holder} holds the lease"
                    if holder and holder != self.instance
                    else "its lease was not renewed in time",
                )
                for job in self._all():
                    if job.leader_only and self._scheduler.get_job(job.name) is not None:
                        self._scheduler.remove_job(job.name)
            return leads

    def _poll(self) -> None:
        self._leads()

    def _run(self, job: Job) -> None:
        if job.leader_only and not self._leads():
            log.info("%s not run here: this replica (%s) does not lead", job.name, self.instance)
            return  # lost the lead since the last poll: the leader runs it
        try:
            outcome = job.run()
        except Exception as exc:  # one failed run must not stop the scheduler; say so
            log.exception("scheduled job %s failed", job.name)
            at, before = wall_clock(), self._results.get(job.name)
            since = at if before is None else before.failing_since or before.at
            self._results[job.name] = JobResult(
                at, error=f"{type(exc).__name__}: {exc}", failing_since=since
            )
            return
        previous = self._results.get(job.name)
        self._results[job.name] = JobResult(wall_clock(), outcome=outcome)
        news = previous is None or previous.outcome != outcome  # "0 posted" every 5 min is noise
        log.log(logging.INFO if news else logging.DEBUG, "%s: %s", job.name, outcome)


def _failing_after(trigger: BaseTrigger | None, at: datetime) -> timedelta:
    """How long a job may go without succeeding before it is failing: its interval (a cron
    job's, the time between its next two firings after `at`), FAILING_AFTER_AT_LEAST at least."""
    interval = FAILING_AFTER_AT_LEAST
    if isinstance(trigger, IntervalTrigger):
        interval = trigger.interval
    elif trigger is not None:
        first = trigger.get_next_fire_time(None, at)
        second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
        if first is not None and second is not None:
            interval = second - first
    return max(interval, FAILING_AFTER_AT_LEAST)


def start_runner(
    runtime: Runtime,
    slack: SlackOut | None,
    instance: str | None = None,
    workspaces: Workspaces | None = None,
) -> Runner:
    """Declare the jobs for these settings (and each installed workspace's, as they come and
    go) and start running them (see `Runner.start`)."""
    name = instance or this_instance()
    jobs = declare_jobs(runtime, slack, name)
    more = (lambda: workspace_jobs(workspaces, name)) if workspaces is not None else None
    poll = leader_poll_seconds()
    runner = Runner(
        jobs,
        leadership_for(runtime.settings.database_url, name, leader_lease_seconds(poll), poll),
        name,
        poll,
        more_jobs=more,
    )
    runner.start()
    return runner
