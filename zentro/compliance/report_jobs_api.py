"""Generated reports over JSON (``/api/v1/reports``; session or API key, resource ``reports``).

* ``POST /reports/generate`` (member and above, ``reports:write``): queue a report job → 202 with the job and a
  Location header; Idempotency-Key replays the same job. With ZENTRO_REPORT_JOB_EXECUTION=inline the answer comes
  after the build (status done or failed); with thread it is usually still queued.
* ``GET /reports`` (viewer and above, ``reports:read``): the org's jobs, newest first, cursor-paginated, filters
  kind and status. ``GET /reports/<id>``: status, params, error, artifacts (format, size, sha256, download URL).
* ``GET /reports/<id>/download?format=pdf|json|csv|html`` (viewer and above): the stored bytes as an attachment;
  409 while the job is not done, 410 when the store lost the file. Audited (report.downloaded).
* ``DELETE /reports/<id>`` (owner/admin): removes the artifacts from the store and the job (409 while it runs).
Ids of another organisation are 404. The service rules are in ``zentro.compliance.report_jobs``.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from flask import Blueprint, Response, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from zentro.compliance import report_jobs as jobs
from zentro.compliance.models import REPORT_JOB_STATUSES, ReportJob
from zentro.platform.auth import current_principal
from zentro.platform.openapi import MAX_ID
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("report_jobs_api", __name__, url_prefix="/api/v1")
COMMON = {"resource": "reports", "tags": ("Generated reports",)}

Kind = Literal[jobs.KINDS]
DateText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=40)]
FrameworkSlug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


ServiceId = Annotated[int, Field(ge=1, le=MAX_ID)]


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Kind = Field(description="incident-summary (MTTA/MTTR, counts by severity and service, SLO attainment) or "
                                   "compliance-posture (readiness per framework, gaps, trend).")
    start: DateText | None = Field(None, description="Period start: ISO date (midnight UTC) or datetime. Default: end "
                                                     "− period_days.")
    end: DateText | None = Field(None, description="Period end, exclusive, not in the future. Default: now (or start "
                                                   "+ period_days).")
    period_days: int | None = Field(None, ge=1, le=366, description="Period length in days (1-366) when start or end "
                                                                    "is missing; default 30.")
    service_ids: list[ServiceId] | None = Field(None, max_length=200, description="incident-summary only: the org's service "
                                                                           "ids to report on (default: all).")
    frameworks: list[FrameworkSlug] | None = Field(None, max_length=20,
                                                   description="compliance-posture only: framework slugs (soc2, "
                                                               "iso27001, pci-dss ...; default: all).")


class JobsQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    kind: Kind | None = Field(None, description="Only jobs of this kind.")
    status: Literal[REPORT_JOB_STATUSES] | None = Field(None, description="Only jobs in this status.")


class DownloadQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal[tuple(jobs.FORMATS)] = Field("pdf", description="pdf, json, csv or html.")


class ArtifactOut(BaseModel):
    format: str
    media_type: str
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="SHA-256 of the stored bytes (hex).")
    download_url: str


class ReportJobOut(BaseModel):
    id: int
    kind: str
    title: str
    status: Literal[REPORT_JOB_STATUSES]
    params: dict = Field(description="start/end (ISO, UTC) and service_ids or frameworks as resolved at creation.")
    error: str = Field(description="Why the build failed (failed jobs).")
    attempts: int = Field(description="Times a worker claimed the job.")
    requested_by: str
    artifacts: list[ArtifactOut]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    url: str


class ReportJobPage(BaseModel):
    data: list[ReportJobOut]
    next_cursor: str | None


@api_route(bp, "/reports/generate", methods=("POST",), body=GenerateIn, response=ReportJobOut, status=202,
           min_role="member",
           summary="Queue a report (incident-summary or compliance-posture) for a period; 202 with the job. It is "
                   "built once into PDF, JSON, CSV and HTML artifacts (member and above).", **COMMON)
def generate_report(body: GenerateIn):
    p = current_principal()
    now = utcnow()
    params = jobs.resolve_params(p.org.id, body.kind, start=body.start, end=body.end, period_days=body.period_days,
                                 service_ids=body.service_ids, frameworks=body.frameworks, now=now)
    org_id = p.org.id
    job_id = jobs.create_job(org_id, body.kind, params, p.actor, user_id=p.user.id if p.user else None, now=now)
    jobs.dispatch(current_app._get_current_object(), job_id)
    job = jobs.get_job(org_id, job_id)
    resp = jsonify(jobs.job_json(job))
    resp.status_code = 202
    resp.headers["Location"] = f"/api/v1/reports/{job_id}"
    return resp


@api_route(bp, "/reports", methods=("GET",), query=JobsQuery, response=ReportJobPage,
           summary="Generated reports of the organisation, newest first (viewer and above).", **COMMON)
def list_reports(query: JobsQuery):
    p = current_principal()
    rows, cursor = paginate(jobs.jobs_query(p.org.id, kind=query.kind, status=query.status), ReportJob.id, query)
    return jsonify(data=[jobs.job_json(j) for j in rows], next_cursor=cursor)


@api_route(bp, "/reports/<int:report_id>", methods=("GET",), response=ReportJobOut, tenant_model=ReportJob,
           summary="One generated report: status, parameters, error, artifacts with sizes and SHA-256.", **COMMON)
def get_report_job(report_id: int):
    p = current_principal()
    return jsonify(jobs.job_json(jobs.get_job(p.org.id, report_id)))


@api_route(bp, "/reports/<int:report_id>/download", methods=("GET",), query=DownloadQuery,
           response=tuple(jobs.FORMATS), tenant_model=ReportJob,
           summary="Download a generated report's artifact (format pdf, json, csv or html); 409 until it is done.",
           extra={"error_statuses": {409: "The report is not built yet (queued, running or failed) (CONFLICT)",
                                     410: "The stored file is gone from the artifact store (GONE)"}},
           **COMMON)
def download_report(report_id: int, query: DownloadQuery):
    p = current_principal()
    job = jobs.get_job(p.org.id, report_id)
    data, art = jobs.read_artifact(current_app._get_current_object(), job, query.format, p.actor)
    name = jobs.download_name(job, p.org.slug, query.format)
    return Response(data, mimetype=art["media_type"], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Content-SHA256": art["sha256"]})


@api_route(bp, "/reports/<int:report_id>", methods=("DELETE",), status=204, min_role="admin", tenant_model=ReportJob,
           summary="Delete a generated report and its stored files (owner/admin; 409 while it is queued or running).",
           **COMMON)
def delete_report(report_id: int):
    p = current_principal()
    jobs.delete_job(current_app._get_current_object(), p.org.id, report_id, p.actor)
    return "", 204
