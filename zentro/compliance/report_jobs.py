"""Generated reports: a report job builds one registered report (``report_registry``) once and keeps its renderings
as artifacts in the artifact store (``platform.storage``), to be downloaded later.

Kinds are the @report slugs in ``KINDS`` ("incident-summary", "compliance-posture"); the job's ``params`` are that
report's query (start/end as ISO text, services/frameworks as lists), validated when the job is created, so the
worker only builds. The rules:

- ``create_job`` validates and commits a ``queued`` job (audit ``report.requested``). Who runs it depends on
  ZENTRO_REPORT_JOB_EXECUTION: ``inline`` builds it before the request answers; ``thread`` starts a daemon thread
  (own app context and session) after the commit. Whatever is left queued, the scheduler job ``report-jobs``
  picks up (``run_pending``).
- A worker claims a job with one conditional UPDATE (queued → running, attempts + 1): of two workers only the one
  whose UPDATE changed the row builds it.
- The build renders every format in ``FORMATS`` from the one Report, then puts each through the store under
  ``reports/org-<org>/<job>-<slug>.<ext>`` (size and SHA-256 from the store). Done: status done, the artifact
  list, audit ``report.generated``. Any exception: stored artifacts are deleted, status failed with the error
  text, audit ``report.failed``.
- A job running for more than ``STALE_AFTER`` (its worker died) goes back to queued; after ``MAX_ATTEMPTS``
  claims it fails instead.
- Deleting a job removes its artifacts from the store, then the row (audit ``report.deleted``).
"""
from __future__ import annotations

import datetime as dt
import logging
import threading

from flask import Flask
from sqlalchemy import select, update

from zentro.accounts.models import Org
from zentro.audit.service import Actor, record
from zentro.compliance import renderers, reporting
from zentro.compliance import report_registry as registry
from zentro.compliance.models import ReportJob
from zentro.compliance.reports.incident_summary import EARLIEST, MAX_DAYS, as_utc
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.openapi import MAX_ID
from zentro.platform.storage import get_storage
from zentro.platform.types import iso, utcnow

log = logging.getLogger("zentro.report_jobs")

KINDS = ("incident-summary", "compliance-posture")
FORMATS = {"pdf": "application/pdf", "json": "application/json", "csv": "text/csv", "html": "text/html"}
STALE_AFTER = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 3
BATCH = 10
WORKER = Actor("system", "report-jobs", "zentro report worker")
threads: list[threading.Thread] = []  # started by thread mode (tests join them)


def bad(detail: str) -> ApiError:
    return ApiError(400, detail)


# --- create --------------------------------------------------------------------------------------------------

def resolve_params(org_id: int, kind: str, *, start=None, end=None, period_days: int | None = None,
                   service_ids: list[int] | None = None, frameworks: list[str] | None = None,
                   now: dt.datetime) -> dict:
    """The job's stored parameters: [start, end) resolved against ``now`` and checked (400 on any problem)."""
    if kind not in KINDS:
        raise bad(f"Unknown report kind {kind!r}: use one of {', '.join(KINDS)}.")
    try:
        start, end = as_utc(start), as_utc(end)
    except ValueError as exc:
        raise bad(str(exc)) from None
    if start is not None and end is not None and period_days is not None:
        raise bad("Give start and end, or period_days (with start or end), not all three.")
    span = dt.timedelta(days=period_days if period_days is not None else 30)
    try:
        if end is None:
            end = start + span if start is not None and period_days is not None else now
        if start is None:
            start = end - span
    except OverflowError:
        raise bad("The range falls outside the calendar.") from None
    if end > now:
        raise bad("end must not be in the future.")
    if start >= end:
        raise bad("start must be before end.")
    if start < EARLIEST:
        raise bad("start must be on or after 1970-01-01.")
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise bad(f"The range may span at most {MAX_DAYS} days.")
    params: dict = {"start": iso(start), "end": iso(end)}
    if kind == "incident-summary":
        if frameworks:
            raise bad("frameworks apply to the compliance-posture report only.")
        ids = sorted(set(service_ids or []))
        if ids:
            from zentro.reliability.models import Service

            in_range = [i for i in ids if 0 < i <= MAX_ID]  # beyond INTEGER no row can match (and PostgreSQL refuses)
            known = set(db.session.scalars(select(Service.id).where(Service.org_id == org_id,
                                                                    Service.id.in_(in_range)))) if in_range else set()
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise bad(f"Unknown service id(s): {', '.join(map(str, unknown))}.")
        params["service_ids"] = ids
    else:
        if service_ids:
            raise bad("service_ids apply to the incident-summary report only.")
        try:
            keys = registry._framework_list(list(frameworks or []))
        except ValueError as exc:
            raise bad(str(exc)) from None
        params["frameworks"] = keys
    return params


def query_params(job: ReportJob) -> dict:
    """The job's params as the report's query fields."""
    p = dict(job.params or {})
    out = {"start": p.get("start"), "end": p.get("end")}
    if job.kind == "incident-summary":
        out["services"] = ",".join(str(i) for i in p.get("service_ids") or [])
    else:
        out["frameworks"] = ",".join(p.get("frameworks") or [])
    return out


def create_job(org_id: int, kind: str, params: dict, actor: Actor, *, user_id: int | None = None,
               now: dt.datetime | None = None) -> int:
    """Insert a queued job and commit (params from ``resolve_params``); returns its id. Nothing of the session is
    touched after the commit, so an inline worker (another session) can claim it at once on SQLite too."""
    now = now or utcnow()
    job = ReportJob(org_id=org_id, kind=kind, status="queued", params=params, requested_by_id=user_id,
                    requested_by=actor.label[:320], attempts=0, error="", artifacts=[], created_at=now, updated_at=now)
    db.session.add(job)
    db.session.flush()
    job_id = job.id
    record(org_id, "report.requested", actor, target_type="report_job", target_id=job_id,
           data={"kind": kind, "params": params}, now=now)
    db.session.commit()
    return job_id


def dispatch(app: Flask, job_id: int) -> None:
    """Run the job as ZENTRO_REPORT_JOB_EXECUTION says (inline now, or a daemon thread)."""
    mode = (app.config.get("ZENTRO_REPORT_JOB_EXECUTION") or "thread").strip().lower()
    if mode == "inline":
        execute(app, job_id)
    elif mode == "thread":
        t = threading.Thread(target=execute, args=(app, job_id), name=f"report-job-{job_id}", daemon=True)
        threads[:] = [x for x in threads if x.is_alive()] + [t]
        t.start()
    else:
        raise RuntimeError(f"ZENTRO_REPORT_JOB_EXECUTION must be thread or inline, not {mode!r}")


# --- run -----------------------------------------------------------------------------------------------------

def claim(job_id: int, now: dt.datetime) -> bool:
    """queued → running in one conditional UPDATE; True for the one worker whose UPDATE changed the row."""
    result = db.session.execute(
        update(ReportJob).where(ReportJob.id == job_id, ReportJob.status == "queued")
        .values(status="running", started_at=now, updated_at=now, attempts=ReportJob.attempts + 1),
        execution_options={"synchronize_session": False})
    db.session.commit()
    return result.rowcount == 1


def storage_key(job: ReportJob, ext: str) -> str:
    return f"reports/org-{job.org_id}/{job.id}-{job.kind}.{ext}"


def render_all(report, org_name: str) -> dict[str, bytes]:
    return {"pdf": renderers.to_pdf(report, org=org_name), "json": reporting.render(report, "json"),
            "csv": reporting.render(report, "csv"), "html": renderers.to_html_document(report, org=org_name).encode()}


def build_job(app: Flask, job_id: int, now: dt.datetime | None = None) -> None:
    """Build a job this worker claimed: render, store, mark done (or failed, with nothing stored)."""
    job = db.session.get(ReportJob, job_id)
    org = db.session.get(Org, job.org_id)
    stored: list[dict] = []
    attempted: list[str] = []  # every key written to (a put that raised may still have left its file)
    store = get_storage(app)
    try:
        d = registry.get(job.kind)
        q = d.query.model_validate(query_params(job))
        ctx = registry.ReportContext(org_id=job.org_id, now=now or utcnow(), query=q, org_slug=org.slug)
        report = d.build(ctx)
        blobs = render_all(report, org.name)
        db.session.commit()  # end the read transaction before writing files
        for fmt, data in blobs.items():
            key = storage_key(job, fmt)
            attempted.append(key)
            size, sha = store.put(key, data)
            stored.append({"format": fmt, "key": key, "media_type": FORMATS[fmt], "size": size, "sha256": sha})
        finished = utcnow() if now is None else now
        done = db.session.execute(
            update(ReportJob).where(ReportJob.id == job_id, ReportJob.status == "running")
            .values(status="done", artifacts=stored, error="", finished_at=finished, updated_at=finished),
            execution_options={"synchronize_session": False})
        if done.rowcount != 1:  # requeued (stale: another worker owns it now) or deleted meanwhile
            db.session.rollback()
            if db.session.get(ReportJob, job_id) is None:
                for key in attempted:
                    store.delete(key)
            db.session.commit()
            return
        record(job.org_id, "report.generated", WORKER, target_type="report_job", target_id=job_id,
               data={"kind": job.kind, "params": job.params, "requested_by": job.requested_by,
                     "artifacts": [{k: a[k] for k in ("format", "size", "sha256")} for a in stored]}, now=finished)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - the job records its failure; the worker carries on
        db.session.rollback()
        for key in attempted:
            try:
                store.delete(key)
            except Exception:  # noqa: BLE001 - the failure below is what matters
                log.exception("could not delete %s", key)
        log.exception("report job %s failed", job_id)
        fail(job_id, exc, now)


def fail(job_id: int, exc: BaseException, now: dt.datetime | None = None) -> None:
    message = exc.detail if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
    now = now or utcnow()
    result = db.session.execute(
        update(ReportJob).where(ReportJob.id == job_id, ReportJob.status == "running")
        .values(status="failed", error=message[:2000], artifacts=[], finished_at=now, updated_at=now),
        execution_options={"synchronize_session": False})
    if result.rowcount == 1:
        org_id, kind = db.session.execute(select(ReportJob.org_id, ReportJob.kind).where(ReportJob.id == job_id)).one()
        record(org_id, "report.failed", WORKER, target_type="report_job", target_id=job_id,
               data={"kind": kind, "error": message[:300]}, now=now)
    db.session.commit()


def execute(app: Flask, job_id: int, now: dt.datetime | None = None) -> bool:
    """Claim and build one job in its own app context and session; False when another worker had it."""
    with app.app_context():
        try:
            if not claim(job_id, now or utcnow()):
                return False
            build_job(app, job_id, now)
            return True
        finally:
            db.session.remove()


def requeue_stale(now: dt.datetime) -> int:
    """Jobs running for more than STALE_AFTER: back to queued, or failed after MAX_ATTEMPTS claims."""
    cutoff = now - STALE_AFTER
    stale = (ReportJob.status == "running", ReportJob.updated_at < cutoff)
    failed = db.session.execute(
        update(ReportJob).where(*stale, ReportJob.attempts >= MAX_ATTEMPTS)
        .values(status="failed", error=f"Abandoned: its worker stopped after {MAX_ATTEMPTS} attempts.",
                finished_at=now, updated_at=now), execution_options={"synchronize_session": False}).rowcount
    again = db.session.execute(update(ReportJob).where(*stale).values(status="queued", updated_at=now),
                               execution_options={"synchronize_session": False}).rowcount
    db.session.commit()
    return again + failed


def run_pending(app: Flask, now: dt.datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """The scheduler's pass: requeue stale jobs, then claim and build up to ``limit`` queued jobs, oldest first."""
    now = now or utcnow()
    with app.app_context():
        try:
            requeued = requeue_stale(now)
            ids = list(db.session.scalars(select(ReportJob.id).where(ReportJob.status == "queued")
                                          .order_by(ReportJob.id).limit(limit)))
            db.session.commit()
        finally:
            db.session.remove()
    built = sum(execute(app, i) for i in ids)
    return {"requeued": requeued, "built": built, "skipped": len(ids) - built}


# --- read, download, delete ----------------------------------------------------------------------------------

def get_job(org_id: int, job_id: int) -> ReportJob:
    job = db.session.scalar(select(ReportJob).where(ReportJob.org_id == org_id, ReportJob.id == job_id))
    if job is None:
        raise not_found("Report")
    return job


def jobs_query(org_id: int, *, kind: str | None = None, status: str | None = None):
    q = select(ReportJob).where(ReportJob.org_id == org_id)
    if kind:
        q = q.where(ReportJob.kind == kind)
    if status:
        q = q.where(ReportJob.status == status)
    return q


def artifact(job: ReportJob, fmt: str) -> dict:
    """The stored artifact of a done job in ``fmt``: 409 before done, 410 when the store lost it."""
    if job.status != "done":
        raise ApiError(409, f"Report #{job.id} is {job.status}" + (f": {job.error}" if job.status == "failed" else
                                                                   "; download it once it is done."))
    found = next((a for a in job.artifacts or [] if a["format"] == fmt), None)
    if found is None:
        raise ApiError(404, f"Report #{job.id} has no {fmt} artifact.")
    return found


def download_name(job: ReportJob, org_slug: str, fmt: str) -> str:
    stamp = (job.finished_at or job.created_at).strftime("%Y%m%dT%H%M%SZ")
    return f"zentro-{job.kind}-{org_slug}-{job.id}-{stamp}.{fmt}"


def read_artifact(app: Flask, job: ReportJob, fmt: str, actor: Actor, now: dt.datetime | None = None) -> tuple[bytes, dict]:
    """The bytes of the artifact (audit ``report.downloaded``)."""
    from zentro.platform.storage import StorageError

    a = artifact(job, fmt)
    try:
        data = get_storage(app).read(a["key"])
    except StorageError:
        raise ApiError(410, f"The {fmt} file of report #{job.id} is no longer stored; generate the report again.") \
            from None
    record(job.org_id, "report.downloaded", actor, target_type="report_job", target_id=job.id,
           data={"kind": job.kind, "format": fmt, "sha256": a["sha256"]}, now=now)
    db.session.commit()
    return data, a


def delete_job(app: Flask, org_id: int, job_id: int, actor: Actor, now: dt.datetime | None = None) -> None:
    """Remove a job that is not running, its artifacts first (409 while queued or running)."""
    job = get_job(org_id, job_id)
    if job.status in ("queued", "running"):
        raise ApiError(409, f"Report #{job.id} is {job.status}; delete it once it has finished.")
    store = get_storage(app)
    for a in job.artifacts or []:
        store.delete(a["key"])
    record(org_id, "report.deleted", actor, target_type="report_job", target_id=job.id,
           data={"kind": job.kind, "params": job.params, "artifacts": len(job.artifacts or [])}, now=now)
    db.session.delete(job)
    db.session.commit()


def job_json(job: ReportJob, *, base: str = "/api/v1/reports") -> dict:
    arts = [{"format": a["format"], "media_type": a["media_type"], "size": a["size"], "sha256": a["sha256"],
             "download_url": f"{base}/{job.id}/download?format={a['format']}"} for a in job.artifacts or []]
    return {"id": job.id, "kind": job.kind, "title": registry.get(job.kind).title, "status": job.status,
            "params": dict(job.params or {}), "error": job.error or "", "attempts": job.attempts,
            "requested_by": job.requested_by, "artifacts": arts, "created_at": iso(job.created_at),
            "started_at": iso(job.started_at), "finished_at": iso(job.finished_at), "url": f"{base}/{job.id}"}
