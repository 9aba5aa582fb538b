"""Vulnerability findings API (session or API key with the ``findings`` scope; read-only)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field, StringConstraints

from zentro.ingest import findings as svc
from zentro.ingest.models import Finding
from zentro.platform.auth import current_principal
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route

bp = Blueprint("findings_api", __name__, url_prefix="/api/v1/findings")

Severity = Literal["critical", "high", "medium", "low", "info"]
Source = Literal["qualys", "tenable", "generic"]


class FindingsQuery(PageQuery):
    severity: Severity | None = Field(None, description="Only this severity.")
    status: Literal["open", "fixed"] | None = Field(None, description="Only open or only fixed findings.")
    source: Source | None = Field(None, description="Only findings from this scanner.")
    service_id: int | None = Field(None, ge=0, le=2_147_483_647, description="Only findings mapped to this service.")
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        None, description="Text in the title, asset, CVE or finding key (case-insensitive).")


class FindingOut(BaseModel):
    id: int
    source: Source
    finding_key: str
    title: str
    description: str
    severity: Severity
    status: Literal["open", "fixed"]
    asset: str
    cve: str
    cvss: float | None
    service_id: int | None
    incident_id: int | None
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    fixed_at: dt.datetime | None


class FindingPage(BaseModel):
    data: list[FindingOut]
    next_cursor: str | None


class SeverityCount(BaseModel):
    open: int
    total: int


class FindingSummaryOut(BaseModel):
    by_severity: dict[Severity, SeverityCount]
    open: int
    total: int


class SourceCount(BaseModel):
    source: Source
    open: int
    total: int
    open_by_severity: dict[Severity, int]


class BySourceOut(BaseModel):
    data: list[SourceCount]


@api_route(bp, "", methods=("GET",), resource="findings", query=FindingsQuery, response=FindingPage,
           tags=("Findings",), summary="List the org's vulnerability findings, newest first, with filters.")
def list_findings(query: FindingsQuery):
    p = current_principal()
    stmt = svc.findings_query(p.org.id, severity=query.severity, status=query.status, source=query.source,
                              service_id=query.service_id, q=query.q or None)
    rows, cursor = paginate(stmt, Finding.id, query)
    return jsonify(data=[svc.finding_json(f) for f in rows], next_cursor=cursor)


@api_route(bp, "/summary", methods=("GET",), resource="findings", response=FindingSummaryOut, tags=("Findings",),
           summary="Finding counts by severity: open and in total.")
def findings_summary():
    return jsonify(svc.summary(current_principal().org.id))


@api_route(bp, "/by-source", methods=("GET",), resource="findings", response=BySourceOut, tags=("Findings",),
           summary="Finding counts per scanner: open, total, and open by severity.")
def findings_by_source():
    return jsonify(data=svc.by_source(current_principal().org.id))


@api_route(bp, "/<int:finding_id>", methods=("GET",), resource="findings", response=FindingOut, tenant_model=Finding,
           tags=("Findings",), summary="One finding.")
def get_finding(finding_id: int):
    return jsonify(svc.finding_json(svc.get_finding(current_principal().org.id, finding_id)))
