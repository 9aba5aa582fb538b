"""Developers › Generated reports (/reports/generated): the org's report jobs, newest first, with status, kind,
range and download links for each stored format, and (members and above) a form to generate one.

The form posts normally and redirects back (no JavaScript needed); refused input (400) re-renders the form with
the reason and creates nothing. A queued or running row polls its own partial every 2 s over HTMX until the job is
done or failed. Downloads go through the API endpoint (GET /api/v1/reports/<id>/download, session accepted).
The dates of the form are whole UTC days: "From" is inclusive from midnight, "To" is inclusive through the end of
that day (or now, for today)."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from zentro.compliance import report_jobs as jobs
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import ReportJob
from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow
from zentro.reliability.service import all_services

bp = Blueprint("report_jobs_pages", __name__)
PAGE_SIZE = 50
KIND_LABELS = {"incident-summary": "Incident summary", "compliance-posture": "Compliance posture"}


def _page(form: dict | None = None, error: str = "", status: int = 200):
    p = current_principal()
    rows = list(db.session.scalars(jobs.jobs_query(p.org.id).order_by(ReportJob.id.desc()).limit(PAGE_SIZE)))
    catalog = load_catalog()
    today = utcnow().date()
    return render_template(
        "compliance/report_jobs.html", rows=rows, kinds=KIND_LABELS, formats=list(jobs.FORMATS),
        services=all_services(p.org.id), frameworks=[(fw.slug, fw.name) for fw in catalog.frameworks.values()],
        form=form or {"kind": "incident-summary", "start": (today - dt.timedelta(days=29)).isoformat(),
                      "end": today.isoformat(), "service_ids": [], "frameworks": []},
        error=error, can_generate=p.role.at_least("member")), status


@page_route(bp, "/reports/generated", summary="Generated reports of the organisation, with a form to generate one.")
def reports_page():
    return _page()


def _day(text: str) -> dt.date | None:
    text = (text or "").strip()[:10]
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{text!r} is not a date (YYYY-MM-DD).") from None


@page_route(bp, "/reports/generated", methods=("POST",), min_role="member", endpoint="generate_page",
            summary="Generate a report from the form (member and above).")
def generate_page():
    p = current_principal()
    form = {"kind": request.form.get("kind", "")[:40], "start": request.form.get("start", "")[:20],
            "end": request.form.get("end", "")[:20],
            "service_ids": [s[:12] for s in request.form.getlist("service_ids")[:200]],
            "frameworks": [f[:40] for f in request.form.getlist("frameworks")[:20]]}
    now = utcnow()
    try:
        if form["kind"] not in jobs.KINDS:
            raise ApiError(400, "Choose a report kind.")
        start, last = _day(form["start"]), _day(form["end"])
        end = None
        if last is not None:
            end = min(now, dt.datetime(last.year, last.month, last.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1))
        if not all(s.isdigit() for s in form["service_ids"]):
            raise ApiError(400, "Unknown service.")
        incident = form["kind"] == "incident-summary"
        params = jobs.resolve_params(
            p.org.id, form["kind"], start=start.isoformat() if start else None, end=end, now=now,
            service_ids=[int(s) for s in form["service_ids"]] if incident else None,
            frameworks=None if incident else form["frameworks"])
    except ApiError as exc:
        if exc.status != 400:
            raise
        db.session.rollback()
        return _page(form=form, error=exc.detail, status=400)
    job_id = jobs.create_job(p.org.id, form["kind"], params, p.actor, user_id=p.user.id, now=now)
    jobs.dispatch(current_app._get_current_object(), job_id)
    flash(f"Report #{job_id} ({KIND_LABELS[form['kind']]}) queued: it appears below when it is built.", "success")
    return redirect(url_for("report_jobs_pages.reports_page"))


@page_route(bp, "/reports/generated/<int:job_id>/row", tenant_model=ReportJob,
            summary="One generated report's row (HTMX polling while it is queued or running).")
def report_row(job_id: int):
    p = current_principal()
    return render_template("compliance/report_jobs_row.html", job=jobs.get_job(p.org.id, job_id), kinds=KIND_LABELS,
                           formats=list(jobs.FORMATS))
