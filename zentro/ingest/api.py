"""Ingest endpoints for monitoring tools and scanners, authenticated only by alert-ingest tokens
(``Authorization: Bearer zentro_it_…``). See docs/ingest.md for the formats.

Order of checks: token (401/403) and ?source= (400), by the route → signature when a signing secret is configured
(401) → plan (402, alerts only) → media type (415) → JSON (400) → format (400) → count (413) →
normalization of every item (400). Nothing is stored until all of them pass; then the request is
applied in one transaction (see zentro.ingest.service)."""
from __future__ import annotations

import json
import math
import time
from typing import Any, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, Field

from zentro.ingest import normalizers, scanners, service, signing
from zentro.ingest.normalizers import NormalizeError
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.observability import count_ingest
from zentro.ingest.normalizers.zentro import ZentroAlert
from zentro.ingest.scanners.generic import GenericFinding
from zentro.platform.routes import api_route

bp = Blueprint("ingest_api", __name__, url_prefix="/api/integrations")

SOURCE_HEADER = "X-Zentro-Source"
VULN_SOURCE_HEADER = "X-Zentro-Vuln-Source"


AlertSource = Literal["zentro", "datadog", "alertmanager", "prometheus", "grafana", "pagerduty", "newrelic", "new_relic"]


class AlertSourceQuery(BaseModel):
    source: AlertSource | None = Field(None, description="Force the payload format instead of detecting it "
                                                         "(same as the X-Zentro-Source header).")


class VulnSourceQuery(BaseModel):
    source: Literal["qualys", "tenable", "generic"] | None = Field(
        None, description="Force the scanner format for every finding (same as the X-Zentro-Vuln-Source header).")


class AlertResultOut(BaseModel):
    alert_id: int | None = Field(description="The stored alert (the earlier one for a duplicate); null when ignored.")
    incident_id: int | None
    incident_ref: str | None = Field(description="INC-<number>")
    incident_status: str | None
    outcome: Literal["created", "deduped", "resolved", "acknowledged", "no_active_incident", "duplicate", "ignored"]
    source: str
    dedupe_key: str | None
    status: Literal["firing", "resolved", "ack"] | None
    detail: str | None


class AlertIngestOut(BaseModel):
    accepted: int = Field(description="Alerts taken (all but ignored events; duplicates included).")
    results: list[AlertResultOut]


class FindingResultOut(BaseModel):
    finding_id: int
    source: Literal["qualys", "tenable", "generic"]
    finding_key: str
    severity: Literal["critical", "high", "medium", "low", "info"]
    status: Literal["open", "fixed"]
    outcome: Literal["created", "updated", "fixed", "reopened"]
    service_id: int | None
    incident_id: int | None
    incident_ref: str | None
    incident_outcome: Literal["created", "deduped", "mitigated"] | None


class FindingIngestOut(BaseModel):
    accepted: int
    results: list[FindingResultOut]


def _verified_body() -> bytes:
    raw = request.get_data(cache=True)
    secret = current_app.config.get("ZENTRO_ALERT_WEBHOOK_SIGNING_SECRET")
    if secret:
        try:
            signing.verify(secret, request.headers.get(signing.TIMESTAMP_HEADER),
                           request.headers.get(signing.SIGNATURE_HEADER), raw,
                           current_app.config["ZENTRO_ALERT_SIGNATURE_TOLERANCE_SECONDS"], now=time.time())
        except signing.SignatureError as exc:
            raise ApiError(401, str(exc)) from None
    return raw


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _json_payload(raw: bytes) -> Any:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise ApiError(415, "Send the payload as application/json.")
    if not raw.strip():
        raise ApiError(400, "The request body is empty; send the alert payload as JSON.")
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        raise ApiError(400, "Malformed JSON body: nested too deeply.") from None
    except ValueError as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None


def _override(from_query: str | None, header: str) -> str | None:
    from_header = request.headers.get(header)
    if from_query and from_header and from_query.strip().lower() != from_header.strip().lower():
        raise ApiError(400, f"?source={from_query[:40]} and {header}: {from_header[:40]} disagree; send one.")
    return from_query or from_header or None


def _cap(count: int, what: str) -> None:
    limit = current_app.config["ZENTRO_MAX_ALERTS_PER_REQUEST"]
    if count > limit:
        raise ApiError(413, f"This request carries {count} {what}; at most {limit} are accepted per request. "
                            "Split it into smaller requests.")


def _bad(exc: NormalizeError) -> ApiError:
    where = "/".join(exc.loc)
    return ApiError(400, f"{where}: {exc.msg}" if where else exc.msg, errors=exc.errors)


@api_route(bp, "/alerts", methods=("POST",), auth=("ingest_token",), resource="ingest", response=AlertIngestOut,
           doc_body=ZentroAlert,
           query=AlertSourceQuery, status=202, idempotent=False, tags=("Ingest",),
           summary="Receive alerts from Zentro's format, Datadog, Alertmanager/Grafana, PagerDuty or New Relic "
                   "(format detected, or ?source= / X-Zentro-Source); open or fold incidents. Redeliveries are "
                   "idempotent by delivery key.")
def receive_alerts(query: AlertSourceQuery):
    p = current_principal()
    raw = _verified_body()
    if current_app.config["ZENTRO_ALERT_INGEST_REQUIRE_PAID"] and p.org.plan == "free":
        raise ApiError(402, "Alert ingest needs a paid plan (pro or enterprise) for this organisation.")
    payload = _json_payload(raw)
    try:
        source = normalizers.resolve_source(payload, _override(query.source, SOURCE_HEADER))
        _cap(normalizers.count_items(payload, source), "alerts")
        alerts = normalizers.normalize(payload, source)
    except NormalizeError as exc:
        raise _bad(exc) from None
    report = service.ingest_alerts(p.org.id, alerts, p.actor, source=source,
                                   resolve_mitigates=current_app.config["ZENTRO_RESOLVE_MITIGATES_INCIDENT"])
    count_ingest("alert", report.results)
    return jsonify(report.json()), 202


@api_route(bp, "/vulnerabilities", methods=("POST",), auth=("ingest_token",), resource="ingest", doc_body=GenericFinding,
           response=FindingIngestOut, query=VulnSourceQuery, status=202, idempotent=False, tags=("Ingest",),
           summary="Receive vulnerability findings (Qualys, Tenable or generic; detected per item, or "
                   "X-Zentro-Vuln-Source); upsert them and open one incident per open high/critical finding.")
def receive_vulnerabilities(query: VulnSourceQuery):
    p = current_principal()
    raw = _verified_body()
    payload = _json_payload(raw)
    try:
        found, _ = scanners.items(payload)
        _cap(len(found), "findings")
        findings = scanners.normalize(payload, _override(query.source, VULN_SOURCE_HEADER))
    except NormalizeError as exc:
        raise _bad(exc) from None
    sources = sorted({f.source for f in findings})
    report = service.ingest_findings(p.org.id, findings, p.actor, source=",".join(sources),
                                     resolve_mitigates=current_app.config["ZENTRO_RESOLVE_MITIGATES_INCIDENT"])
    count_ingest("vulnerability", report.results)
    return jsonify(report.json()), 202
