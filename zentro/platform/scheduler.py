"""The in-process job scheduler: a registry of jobs, database-backed leadership, and APScheduler wiring.

Every process that has ``ZENTRO_SCHEDULER`` on runs an APScheduler ``BackgroundScheduler``; only the process
holding the ``scheduler`` lease runs jobs. The lease is one row of ``scheduler_leases`` taken and renewed with a
single conditional UPDATE (``holder = me OR expires_at < now``), so PostgreSQL (row lock, re-checked predicate)
and SQLite (serialised writers) both let exactly one holder win. A heartbeat renews it every third of its length;
a leader that crashes stops renewing and another process takes over once ``expires_at`` passes.

Jobs are declared with ``register_job`` (the declarations live in ``zentro.jobs``; this module knows no domain).
A job is ``func(now, org_id=None) -> str``: the string is a one-line detail kept on its ``JobRun``. A failing
job is logged and recorded as failed; it never stops the scheduler. See docs/scheduler.md.
"""
from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

import click
from sqlalchemy import case, delete, literal, or_, select, update

from zentro.extensions import db
from zentro.platform.models import JobRun, SchedulerLease
from zentro.platform.observability import count_job_run
from zentro.platform.types import UTCDateTime, utcnow

log = logging.getLogger("zentro.scheduler")
UTC = dt.timezone.utc
LEASE_NAME = "scheduler"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
DETAIL_MAX = 1000
JOB_THREADS = 4  # jobs running at once in the leader
KEEP_RUNS_PER_JOB = 500  # prune_job_runs keeps this many of each job's newest runs
EXTENSION_KEY = "zentro_scheduler"
_START_LOCK = threading.Lock()


class JobError(click.ClickException):
    """An operator asked for something that cannot run (unknown job or org, --org on a job that has no
    per-org mode). A ClickException, so the CLI prints the message and exits 1 without a traceback."""


# --- cron expressions ----------------------------------------------------------------------------------

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_ITEM = re.compile(r"(\*|\d{1,2})(?:-(\d{1,2}))?(?:/(\d{1,2}))?")


def _day_of_week(field: str) -> str:
    """Standard crontab day-of-week (0 or 7 = Sunday, 1 = Monday) as APScheduler day names.

    APScheduler 3's ``from_crontab`` passes numbers through in its own Monday-first numbering, so "0 8 * * 1"
    would fire on Tuesdays (agronholm/apscheduler#286; fixed only in 4.x). Names mean the same in both, so each
    numeric item (n, a-b, */s, a-b/s) is expanded to the names of its days; named items pass through."""
    if field == "*":
        return field
    out: list[str] = []
    for item in field.split(","):
        m = _DOW_ITEM.fullmatch(item)
        if not m:
            out.append(item.lower())  # names (mon, mon-fri) or nonsense: APScheduler judges them
            continue
        start, end, step = m.group(1), m.group(2), m.group(3)
        if start == "*":
            if end is not None:
                raise ValueError(f"Invalid day-of-week item {item!r}.")
            lo, hi = 0, 6
        else:
            lo = int(start)
            hi = int(end) if end is not None else (7 if step is not None else lo)
        stride = int(step) if step is not None else 1
        if not (0 <= lo <= 7 and 0 <= hi <= 7) or lo > hi or stride < 1:
            raise ValueError(f"Invalid day-of-week item {item!r}: days are 0-7 (0 and 7 are Sunday).")
        for n in range(lo, hi + 1, stride):
            name = _CRON_DAYS[n % 7]
            if name not in out:
                out.append(name)
    return ",".join(out)


def cron_trigger(expr: str):
    """A UTC APScheduler CronTrigger from a 5-field crontab expression (minute hour day month day-of-week, with
    the standard day-of-week numbering). ValueError with a readable message when it does not parse."""
    from apscheduler.triggers.cron import CronTrigger

    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("A cron expression is required: five fields, minute hour day month day-of-week.")
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"A cron expression has five fields (minute hour day month day-of-week); got {len(fields)}.")
    try:
        fields[4] = _day_of_week(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"Invalid cron expression {expr!r}: {exc}") from None


def next_cron_fire(expr: str, after: dt.datetime) -> dt.datetime:
    """The first time ``expr`` fires strictly after ``after`` (aware UTC)."""
    fire = cron_trigger(expr).get_next_fire_time(None, after + dt.timedelta(microseconds=1))
    if fire is None:  # a date that never comes (e.g. 30 February)
        raise ValueError(f"Cron expression {expr!r} never fires.")
    return fire.astimezone(UTC)


_WEEKDAY_NAMES = {"sun": "Sunday", "mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
                  "fri": "Friday", "sat": "Saturday"}


def describe_cron(expr: str) -> str:
    """A short English reading of the common shapes ("every Monday 08:00 UTC", "daily 07:30 UTC", "every 15
    minutes"); anything else reads "cron <expr> UTC"."""
    return _plain_cron(expr) or f"cron {expr} UTC"


def _plain_cron(expr: str) -> str | None:
    try:
        minute, hour, day, month, dow = expr.split()
        names = _day_of_week(dow)
    except ValueError:
        return None
    if minute.isdigit() and hour.isdigit():
        at = f"{int(hour):02d}:{int(minute):02d} UTC"
        if day == "*" and month == "*":
            if names == "*":
                return f"daily {at}"
            days = names.split(",")
            if days == ["mon", "tue", "wed", "thu", "fri"]:
                return f"weekdays {at}"
            if all(d in _WEEKDAY_NAMES for d in days):
                return "every " + ", ".join(_WEEKDAY_NAMES[d] for d in days) + f" {at}"
        if day.isdigit() and dow == "*":
            suffix = {1: "st", 2: "nd", 3: "rd"}.get(int(day) % 10 if int(day) not in (11, 12, 13) else 0, "th")
            if month == "*":
                return f"monthly on the {int(day)}{suffix} {at}"
            if month in ("1,4,7,10", "*/3", "1-12/3"):
                return f"quarterly on the {int(day)}{suffix} {at}"
    if hour == "*" and day == month == dow == "*":
        if minute.isdigit():
            return f"hourly at :{int(minute):02d}"
        if minute.startswith("*/") and minute[2:].isdigit():
            return f"every {int(minute[2:])} minutes"
        if minute == "*":
            return "every minute"
    return None


# --- the job registry ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[..., str]
    cron: str | None
    seconds: int | None
    description: str
    per_org: bool = False  # func accepts org_id=<int> to run for one org only (zentro jobs run NAME --org SLUG)

    @property
    def trigger_text(self) -> str:
        if self.cron:
            plain = _plain_cron(self.cron)
            return f"{plain} (cron {self.cron})" if plain else f"cron {self.cron} UTC"
        return f"every {self.seconds} s"

    def trigger(self):
        from apscheduler.triggers.interval import IntervalTrigger

        if self.cron:
            return cron_trigger(self.cron)
        return IntervalTrigger(seconds=self.seconds, timezone=UTC)


JOBS: dict[str, Job] = {}


def register_job(name: str, func: Callable[..., str], *, cron: str | None = None, seconds: int | None = None,
                 description: str, per_org: bool = False) -> Job:
    """Declare a job: exactly one of ``cron`` (5-field crontab, UTC) or ``seconds`` (interval). Registering a
    name again replaces it (declarations are re-read for each app, whose settings may differ)."""
    if (cron is None) == (seconds is None):
        raise ValueError(f"job {name}: give exactly one of cron= or seconds=")
    if cron is not None:
        cron_trigger(cron)  # fail at declaration, not at start
    if seconds is not None and seconds < 1:
        raise ValueError(f"job {name}: seconds must be at least 1")
    job = Job(name, func, cron, seconds, description, per_org)
    JOBS[name] = job
    return job


def get_job(name: str) -> Job:
    job = JOBS.get(name)
    if job is None:
        known = ", ".join(sorted(JOBS)) or "none"
        raise JobError(f"No job {name!r}. Jobs: {known}.")
    return job


# --- leadership ----------------------------------------------------------------------------------------

def new_holder_id() -> str:
    """This process's identity in the lease: host, pid and a random part (a restarted process with a
    recycled pid is still someone else)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_seconds() -> int:
    from flask import current_app

    return max(1, int(current_app.config.get("ZENTRO_SCHEDULER_LEASE_SECONDS") or 30))


def _insert_if_missing(now: dt.datetime) -> None:
    """Create the lease row once (expired, nobody's), ignoring a concurrent creator: one statement on both
    dialects (INSERT ... ON CONFLICT DO NOTHING)."""
    if db.session.scalar(select(SchedulerLease.name).where(SchedulerLease.name == LEASE_NAME)) is not None:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(SchedulerLease).values(name=LEASE_NAME, holder="", expires_at=EPOCH, acquired_at=now)
                       .on_conflict_do_nothing(index_elements=["name"]))


def acquire(holder: str, now: dt.datetime | None = None, ttl: int | float | None = None) -> bool:
    """Take or renew the lease for ``holder`` until now + ttl; True iff ``holder`` is the leader afterwards.

    One conditional UPDATE decides: it matches when ``holder`` already holds the row or the current lease has
    expired. PostgreSQL re-checks the predicate on the locked row after a concurrent winner commits, SQLite
    runs writers one at a time: either way at most one contender's UPDATE matches. Commits."""
    now = now or utcnow()
    ttl = lease_seconds() if ttl is None else ttl
    try:
        _insert_if_missing(now)
        result = db.session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == LEASE_NAME,
                   or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
            .values(holder=holder, expires_at=now + dt.timedelta(seconds=ttl),
                    acquired_at=case((SchedulerLease.holder == holder, SchedulerLease.acquired_at),
                                     else_=literal(now, UTCDateTime())))
            .execution_options(synchronize_session=False))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result.rowcount == 1


def release(holder: str) -> bool:
    """Give the lease up (clean shutdown) so another process need not wait for it to expire. The holder is
    kept for ``zentro jobs list``; only the expiry moves to the past. True when ``holder`` held it."""
    try:
        result = db.session.execute(
            update(SchedulerLease).where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder)
            .values(expires_at=EPOCH).execution_options(synchronize_session=False))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result.rowcount == 1


@dataclass(frozen=True)
class LeaseState:
    holder: str
    expires_at: dt.datetime
    acquired_at: dt.datetime
    active: bool  # expires_at is still ahead: holder is the leader


def lease_state(now: dt.datetime | None = None) -> LeaseState | None:
    """The lease row as it stands (None before any process asked for it)."""
    now = now or utcnow()
    row = db.session.execute(select(SchedulerLease.holder, SchedulerLease.expires_at, SchedulerLease.acquired_at)
                             .where(SchedulerLease.name == LEASE_NAME)).first()
    if row is None:
        return None
    return LeaseState(row.holder, row.expires_at, row.acquired_at, bool(row.holder) and row.expires_at >= now)


# --- running jobs --------------------------------------------------------------------------------------

def _resolve_org(job: Job, org_slug: str | None) -> int | None:
    if org_slug is None:
        return None
    from zentro.accounts.service import get_org

    if not job.per_org:
        raise JobError(f"Job {job.name!r} has no per-org mode; run it without --org.")
    org = get_org(org_slug)
    if org is None:
        raise JobError(f"No org {org_slug!r}.")
    return org.id


def execute(job: Job, now: dt.datetime, *, holder: str, trigger: str, org_id: int | None = None) -> JobRun:
    """Run ``job`` once and record it: a JobRun committed as running first (visible while it works), then ok
    with the job's detail or failed with the error. Exceptions are logged, never raised."""
    started = time.monotonic()
    run = JobRun(job=job.name, holder=holder[:120], trigger=trigger, status="running", started_at=now)
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    try:
        detail = job.func(now) if org_id is None else job.func(now, org_id=org_id)
        status = "ok"
        detail = "" if detail is None else str(detail)
    except Exception as exc:  # noqa: BLE001 — a failing job is recorded, never fatal
        db.session.rollback()
        log.exception("job %s failed", job.name)
        status, detail = "failed", f"{type(exc).__name__}: {exc}"
    else:
        db.session.commit()  # whatever the job left pending is its own business; it is done now
    run = db.session.get(JobRun, run_id)
    run.status = status
    run.detail = " ".join(detail.split())[:DETAIL_MAX]
    run.finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
    db.session.commit()
    count_job_run(job.name, status)
    return run


def run_job(name: str, now: dt.datetime | None = None, org_slug: str | None = None, trigger: str = "cli",
            holder: str | None = None) -> JobRun:
    """Run a registered job now, in this process, whoever leads (``zentro jobs run``). With ``org_slug`` a
    per-org job runs for that org only. Unknown job or org: JobError. Needs an app context."""
    job = get_job(name)
    org_id = _resolve_org(job, org_slug)
    return execute(job, now or utcnow(), holder=holder or new_holder_id(), trigger=trigger, org_id=org_id)


def run_if_leader(name: str, holder: str, now: dt.datetime | None = None, ttl: int | float | None = None
                  ) -> JobRun | None:
    """What each scheduled fire does: renew (or take) the lease and, as leader, run and record the job; a
    process that does not lead skips silently (None). Needs an app context; never raises."""
    try:
        now = now or utcnow()
        if not acquire(holder, now, ttl):
            return None
        return execute(get_job(name), now, holder=holder, trigger="schedule")
    except Exception:  # noqa: BLE001 — e.g. the database is down: try again at the next fire
        db.session.rollback()
        log.exception("scheduled run of %s could not start", name)
        return None


def abandon_runs(holder: str, now: dt.datetime) -> int:
    """A new leader marks the scheduled runs other holders left running as failed: their process stopped
    renewing the lease, so they are not coming back to finish them. Commits; returns how many."""
    result = db.session.execute(
        update(JobRun).where(JobRun.status == "running", JobRun.trigger == "schedule", JobRun.holder != holder)
        .values(status="failed", finished_at=now,
                detail="interrupted: the scheduler process that ran it stopped before it finished")
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount


def prune_job_runs(keep: int = KEEP_RUNS_PER_JOB) -> int:
    """Keep each job's newest ``keep`` runs (interval jobs record one every few seconds). Commits."""
    removed = 0
    for job in db.session.scalars(select(JobRun.job).distinct()).all():
        cutoff = db.session.scalar(select(JobRun.id).where(JobRun.job == job).order_by(JobRun.id.desc())
                                   .offset(keep).limit(1))
        if cutoff is not None:
            removed += db.session.execute(delete(JobRun).where(JobRun.job == job, JobRun.id <= cutoff)
                                          .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return removed


def last_runs() -> dict[str, JobRun]:
    """Each job's most recent run."""
    latest = select(JobRun.job, db.func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    rows = db.session.scalars(select(JobRun).join(latest, JobRun.id == latest.c.id)).all()
    return {r.job: r for r in rows}


# --- the APScheduler side ------------------------------------------------------------------------------

class Scheduler:
    """One process's scheduler: APScheduler in a background thread, a heartbeat that keeps (or waits for)
    the lease, and every registered job wrapped so that only the leader runs it."""

    def __init__(self, app, holder: str | None = None):
        self.app = app
        self.holder = holder or new_holder_id()
        self.lease = max(1, int(app.config.get("ZENTRO_SCHEDULER_LEASE_SECONDS") or 30))
        self.is_leader = False
        self._aps = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._aps is not None and self._aps.running

    def start(self) -> "Scheduler":
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        with self._lock:
            if self.running:
                return self
            aps_log = logging.getLogger("apscheduler")
            if aps_log.level == logging.NOTSET:  # it logs every run at INFO: several lines a second
                aps_log.setLevel(logging.WARNING)
            # jobs share a few threads (each holds a database connection while it runs); the heartbeat has its
            # own, so a long job never delays the renewal and costs the lease
            aps = BackgroundScheduler(
                timezone=UTC,
                executors={"default": ThreadPoolExecutor(JOB_THREADS), "heartbeat": ThreadPoolExecutor(1)},
                job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": max(30, self.lease)})
            beat = max(1.0, self.lease / 3)
            aps.add_job(self.heartbeat, IntervalTrigger(seconds=beat, timezone=UTC), id="_heartbeat",
                        name="scheduler heartbeat", executor="heartbeat", next_run_time=utcnow())
            for job in JOBS.values():
                aps.add_job(self._fire, job.trigger(), args=[job.name], id=job.name, name=job.name,
                            misfire_grace_time=3600 if job.cron else max(30, self.lease))
            aps.start()
            self._aps = aps
        atexit.register(self.shutdown)
        log.info("scheduler started as %s (%d jobs, lease %d s)", self.holder, len(JOBS), self.lease)
        return self

    def heartbeat(self) -> None:
        with self.app.app_context():
            try:
                now = utcnow()
                leader = acquire(self.holder, now, self.lease)
                if leader and not self.is_leader:
                    abandoned = abandon_runs(self.holder, now)
                    log.info("scheduler %s is now the leader%s", self.holder,
                             f" ({abandoned} interrupted run(s) of the previous leader marked failed)" if abandoned
                             else "")
                elif self.is_leader and not leader:
                    log.warning("scheduler %s lost the lease", self.holder)
                self.is_leader = leader
            except Exception:  # noqa: BLE001 — the database may be briefly unavailable; retry next beat
                db.session.rollback()
                self.is_leader = False
                log.exception("scheduler heartbeat failed")
            finally:
                db.session.remove()

    def _fire(self, name: str) -> None:
        with self.app.app_context():
            try:
                run_if_leader(name, self.holder, ttl=self.lease)
            finally:
                db.session.remove()

    def shutdown(self) -> None:
        """Stop firing and hand the lease over at once (clean exit); a crash instead lets the lease expire."""
        with self._lock:
            aps, self._aps = self._aps, None
        if aps is None:
            return
        try:
            aps.shutdown(wait=False)
        except Exception:  # noqa: BLE001 — already stopping at interpreter exit
            pass
        with self.app.app_context():
            try:
                if release(self.holder):
                    log.info("scheduler %s released the lease", self.holder)
            except Exception:  # noqa: BLE001 — the lease then simply expires
                log.exception("scheduler %s could not release the lease", self.holder)
            finally:
                db.session.remove()
        self.is_leader = False


def start(app, holder: str | None = None) -> Scheduler:
    """Start this process's scheduler with the jobs registered so far (once per app; zentro.jobs.start
    declares them first)."""
    with _START_LOCK:
        existing = app.extensions.get(EXTENSION_KEY)
        if existing is not None and existing.running:
            return existing
        sched = Scheduler(app, holder).start()
        app.extensions[EXTENSION_KEY] = sched
        return sched


def stop(app) -> None:
    sched = app.extensions.pop(EXTENSION_KEY, None)
    if sched is not None:
        sched.shutdown()
