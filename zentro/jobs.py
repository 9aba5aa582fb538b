"""The scheduled jobs, declared for ``zentro.platform.scheduler`` (which runs them on the leader only).

- ``outbox``      every 5 s: deliver due customer webhook messages (retries with backoff live in the outbox).
- ``retention``   daily 03:15 UTC: the retention purge of every org (``--org``: one org).
- ``bundles``     daily 03:45 UTC: the scheduled evidence bundle of each org whose committee bundle cadence says
                  one is due (the same schedule the obligations calendar shows; ``--org``: one org).
- ``digest:<slug>`` one per digest, every ``ZENTRO_SCHEDULER_TICK_SECONDS`` (60): deliver it to every org whose
                  schedule is due (``--org``: deliver to that org now, once per period unless already sent).
- ``report-jobs`` every 5 s: build queued generated reports (and requeue ones whose worker died).
- ``job-runs``    hourly: keep each job's newest runs only.

Domain code is imported inside the job functions, so declaring (and listing) jobs stays cheap. Each job returns
a one-line detail for its JobRun and raises when it failed.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging

from zentro.platform import scheduler
from zentro.platform.scheduler import register_job

log = logging.getLogger("zentro.jobs")
OUTBOX_SECONDS = 5
# one run drains everything due when it started, batch after batch, for up to this long (a run still going when
# the next is due makes APScheduler skip that one, so a backlog is worked off continuously)
OUTBOX_BUDGET_SECONDS = 20
BUNDLE_WINDOW_MAX_DAYS = 730
CLI_ACTOR_LABEL = "zentro jobs run (cli)"


def _counts(result) -> str:
    if isinstance(result, dict):
        return ", ".join(f"{k} {v}" for k, v in result.items()) or "nothing to do"
    return str(result)


# --- outbox --------------------------------------------------------------------------------------------

def outbox_job(now: dt.datetime) -> str:
    from zentro.notify.outbox import drain_outbox

    return "outbox: " + _counts(drain_outbox(now, budget_seconds=OUTBOX_BUDGET_SECONDS))


# --- retention -----------------------------------------------------------------------------------------

def retention_job(now: dt.datetime, org_id: int | None = None) -> str:
    """Purge what retention no longer requires (legal holds kept). One org's failure does not stop the others,
    but fails the run, naming it."""
    from zentro.compliance import retention

    if org_id is not None:
        results = [retention.purge(org_id, now).as_json()]
    else:
        results = retention.run_retention_all(now)
    failed = [r for r in results if "error" in r]
    purged_audit = sum(r.get("audit_events", 0) for r in results if "error" not in r)
    purged_incidents = sum(r.get("incidents", 0) for r in results if "error" not in r)
    detail = (f"{len(results)} org(s): purged {purged_audit} audit rows and {purged_incidents} closed incidents"
              + ("; FAILED: " + "; ".join(retention.describe(r) for r in failed) if failed else ""))
    if failed:
        raise RuntimeError(detail)
    return detail


# --- scheduled evidence bundles ------------------------------------------------------------------------

BUNDLE_ACTOR_LABEL = "scheduled bundle (scheduler)"


def bundle_due(org_id: int, now: dt.datetime) -> dt.datetime | None:
    """When the org's next scheduled evidence bundle is (was) due, by its committee bundle cadence: the same
    derivation as the obligations calendar (last evidence bundle + cadence; now when it never made one).
    None when the cadence is 0 (no scheduled bundles)."""
    from zentro.compliance import obligations as obl

    config = obl.committee_config(org_id)
    if config.bundle_cadence_days <= 0:
        return None
    upcoming = obl._bundles(org_id, now, config, False, until=now + dt.timedelta(days=config.bundle_cadence_days))
    return min((o.due_at for o in upcoming), default=None)


def bundles_job(now: dt.datetime, org_id: int | None = None) -> str:
    """Create the scheduled evidence bundle of every org (or ``org_id``) whose bundle is due, over the cadence's
    window. A failing org is rolled back, named, and fails the run; the others still get theirs."""
    from sqlalchemy import select

    from zentro.accounts.models import Org
    from zentro.audit.service import Actor
    from zentro.compliance.bundles import create_bundle
    from zentro.compliance.obligations import committee_config
    from zentro.extensions import db

    actor = Actor("system", "", BUNDLE_ACTOR_LABEL)
    orgs = [org_id] if org_id is not None else list(db.session.scalars(select(Org.id).order_by(Org.id)))
    made, waiting, off, failed = [], [], 0, []
    for oid in orgs:
        try:
            due = bundle_due(oid, now)
            if due is None:
                off += 1
                continue
            if due > now:
                waiting.append(f"org {oid} due {due.date().isoformat()}")
                continue
            days = min(BUNDLE_WINDOW_MAX_DAYS, committee_config(oid).bundle_cadence_days)
            row = create_bundle(oid, actor, days, now=now)
            made.append(f"org {oid} #{row.seq}")
        except Exception as exc:  # noqa: BLE001 — keep going for the other orgs
            db.session.rollback()
            log.exception("scheduled bundle failed for org %s", oid)
            failed.append(f"org {oid}: {type(exc).__name__}: {exc}")
    detail = (f"{len(made)} bundle(s) created" + (f" ({', '.join(made)})" if made else "")
              + f"; {len(waiting)} not due yet" + (f" ({waiting[0]})" if len(waiting) == 1 else "")
              + (f"; {off} without scheduled bundles" if off else "")
              + (f"; FAILED: {'; '.join(failed)}" if failed else ""))
    if failed:
        raise RuntimeError(detail)
    return detail


# --- digests -------------------------------------------------------------------------------------------

def _summary(results) -> str:
    if not results:
        return "no org due"
    tally: dict[str, int] = {}
    for r in results:
        tally[r.outcome] = tally.get(r.outcome, 0) + 1
    return f"{len(results)} org(s): " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items()))


def digest_job(slug: str, now: dt.datetime, org_id: int | None = None) -> str:
    """Scheduled: deliver ``slug`` to every org whose schedule is due. With ``org_id`` (``zentro jobs run
    digest:<slug> --org SLUG``): deliver to that org now, not forced, so a period already delivered is not sent
    again (the detail says so)."""
    from zentro.audit.service import Actor
    from zentro.compliance import digests

    if org_id is None:
        return _summary(digests.run_due(slug, now))
    result = digests.deliver(slug, org_id, now=now, trigger="cli", actor=Actor("system", "", CLI_ACTOR_LABEL),
                             force=False)
    if result.outcome == "failed":
        raise RuntimeError(result.detail)
    return f"{result.outcome}: {result.detail}"


# --- generated reports ---------------------------------------------------------------------------------

REPORT_JOBS_SECONDS = 5


def report_jobs_job(now: dt.datetime) -> str:
    from flask import current_app

    from zentro.compliance.report_jobs import run_pending

    return "report jobs: " + _counts(run_pending(current_app._get_current_object(), now))


# --- housekeeping --------------------------------------------------------------------------------------

def job_runs_job(now: dt.datetime) -> str:
    return f"removed {scheduler.prune_job_runs()} old job run(s)"


def load(app) -> dict[str, scheduler.Job]:
    """(Re)declare every job, with this app's settings (the digest tick). Returns the registry."""
    from zentro.compliance.digests import discover

    tick = max(1, int(app.config.get("ZENTRO_SCHEDULER_TICK_SECONDS") or 60))
    scheduler.JOBS.clear()
    register_job("outbox", outbox_job, seconds=OUTBOX_SECONDS,
                 description="Deliver due customer webhook messages from the outbox (retries with backoff).")
    register_job("retention", retention_job, cron="15 3 * * *", per_org=True,
                 description="Retention purge of closed incidents and audit rows past policy; legal holds kept.")
    register_job("bundles", bundles_job, cron="45 3 * * *", per_org=True,
                 description="Scheduled evidence bundle of each org whose committee bundle cadence says one is due.")
    for slug, d in sorted(discover().items()):
        register_job(f"digest:{slug}", functools.partial(digest_job, slug), seconds=tick, per_org=True,
                     description=f"{d.title}: deliver to every org whose schedule is due (default {d.schedule} "
                                 f"UTC, once per {d.period}).")
    register_job("report-jobs", report_jobs_job, seconds=REPORT_JOBS_SECONDS,
                 description="Build queued generated reports (POST /api/v1/reports/generate); requeue stalled ones.")
    register_job("job-runs", job_runs_job, cron="5 * * * *",
                 description="Prune the job run history (each job keeps its newest runs).")
    return scheduler.JOBS


def start(app, holder: str | None = None) -> scheduler.Scheduler:
    """Declare the jobs and start this process's scheduler (``create_app`` and ``zentro run`` call this)."""
    with app.app_context():
        load(app)
    return scheduler.start(app, holder)
