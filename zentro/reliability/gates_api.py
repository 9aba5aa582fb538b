"""Deploy gates over JSON (session or API key, scope ``gates:read|write``); the rules are in
zentro.reliability.gates.

* ``GET /api/v1/gates/{service}`` (viewer and above, e.g. a CI key with ``gates:read``): the decision
  for the service named by its id or its name. Always 200 when the service exists (the pipeline reads
  ``decision``), with the header ``X-Zentro-Gate: pass|fail``. ``ref``, ``pipeline`` and
  ``environment`` are stored with the decision as change-management context. Every call is one stored
  decision and one audit event (gate.evaluated): a GET that records evidence, on purpose.
* ``GET /api/v1/services/{id}/gates``: the rules (the defaults until configured).
* ``PATCH /api/v1/services/{id}/gates`` (owner/admin): change the fields sent; audited with before/after.
* ``GET /api/v1/services/{id}/gates/decisions``: recorded decisions, newest first (cursor paginated).
Unknown services and other organisations' services are 404.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from zentro.platform.auth import current_principal
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route, no_null_defaults
from zentro.platform.types import utcnow
from zentro.reliability import gates
from zentro.reliability.models import GateDecision, Service
from zentro.reliability.service import get_service

bp = Blueprint("gates_api", __name__, url_prefix="/api/v1")
COMMON = {"resource": "gates", "tags": ("Deploy gates",)}
SVC = {"tenant_model": Service}

# Printable text: no C0/C1 control characters (these strings land in logs and audit evidence).
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"
Severity = Literal["critical", "high", "medium", "low"]
CheckName = Literal["enabled", "incidents", "dependency_incidents", "error_budget", "freeze", "maintenance_window"]


class GateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: Annotated[str, StringConstraints(max_length=200, pattern=PRINTABLE)] | None = Field(
        None, description="What is being deployed: a git SHA, tag or version (recorded with the decision).")
    pipeline: Annotated[str, StringConstraints(max_length=200, pattern=PRINTABLE)] | None = Field(
        None, description="The pipeline or job asking, e.g. a CI run URL (recorded with the decision).")
    environment: Annotated[str, StringConstraints(max_length=64, pattern=PRINTABLE)] | None = Field(
        None, description="The target environment, e.g. production (recorded with the decision).")


class GateRulesPatch(BaseModel):
    """Only the fields sent change; a refused request changes nothing."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=no_null_defaults)
    enabled: bool = Field(None, description="Off: the gate always passes (and says it is disabled).")
    block_severities: list[Severity] = Field(
        None, max_length=4, description="Active incidents of these severities block deploys (empty: none do).")
    include_dependencies: bool = Field(
        None, description="Also block on incidents and freezes of the services this one depends on (transitively).")
    error_budget: bool = Field(None, description="Block when the 30-day error budget is spent.")
    min_remaining_percent: float = Field(
        None, ge=0, le=100, description="With error_budget: block when less than this % of the 30-day budget "
                                        "remains (0: only when exhausted).")
    freeze: bool = Field(None, description="Block during an active change_freeze guardrail.")
    require_maintenance_window: bool = Field(
        None, description="Pass only inside a maintenance_window guardrail (org-wide or on this service).")


class GateRulesOut(BaseModel):
    enabled: bool
    block_severities: list[Severity]
    include_dependencies: bool
    error_budget: bool
    min_remaining_percent: float
    freeze: bool
    require_maintenance_window: bool
    configured: bool = Field(description="False: never configured, these are the defaults.")
    updated_at: dt.datetime | None


class GateCheckOut(BaseModel):
    check: CheckName
    verdict: Literal["pass", "fail", "skipped"]
    reason: str
    refs: list[dict] = Field(description="What the verdict rests on: incidents (id, ref INC-n), guardrails (id), "
                                         "the SLO window.")


class GateServiceOut(BaseModel):
    id: int | None = Field(description="None once the service has been deleted.")
    name: str


class GateContext(BaseModel):
    ref: str | None
    pipeline: str | None
    environment: str | None


class GateActor(BaseModel):
    type: str
    id: str
    label: str


class GateDecisionOut(BaseModel):
    decision_id: int
    service: GateServiceOut
    decision: Literal["pass", "fail"]
    summary: str
    checks: list[GateCheckOut]
    reasons: list[str] = Field(description="The reasons of the failing checks.")
    rules: GateRulesOut
    context: GateContext
    actor: GateActor
    audit_event_id: int | None
    evaluated_at: dt.datetime


class GateDecisionPage(BaseModel):
    data: list[GateDecisionOut]
    next_cursor: str | None


@api_route(bp, "/gates/<path:service>", methods=("GET",), query=GateQuery, response=GateDecisionOut,
           summary="Deploy gate decision for a service named by id or name: pass or fail with each check's verdict and "
                   "reasons (active incidents on it or its dependencies, error budget, change freeze, maintenance "
                   "window). Always 200 for a known service; header X-Zentro-Gate: pass|fail. Every call is recorded "
                   "and audited (gate.evaluated) with ref / pipeline / environment.", **COMMON, **SVC)
def gate_decision(service: str, query: GateQuery):
    p = current_principal()
    context = {"ref": query.ref, "pipeline": query.pipeline, "environment": query.environment}
    out = gates.decide(p.org.id, service, context, p.actor, utcnow())
    resp = jsonify(out)
    resp.headers["X-Zentro-Gate"] = out["decision"]
    return resp


@api_route(bp, "/services/<int:service_id>/gates", methods=("GET",), response=GateRulesOut,
           summary="The service's deploy-gate rules (the defaults until configured).", **COMMON, **SVC)
def get_gate_rules(service_id: int):
    p = current_principal()
    return jsonify(gates.rules_for(p.org.id, get_service(p.org.id, service_id).id))


@api_route(bp, "/services/<int:service_id>/gates", methods=("PATCH",), body=GateRulesPatch, response=GateRulesOut,
           min_role="admin", summary="Change the deploy-gate rules sent; the others stay (owner/admin; audited as "
                                     "gate.rules_updated with before and after).", **COMMON, **SVC)
def patch_gate_rules(service_id: int, body: GateRulesPatch):
    p = current_principal()
    return jsonify(gates.update_rules(p.org.id, service_id, body.model_dump(include=body.model_fields_set), p.actor,
                                      utcnow()))


@api_route(bp, "/services/<int:service_id>/gates/decisions", methods=("GET",), query=PageQuery,
           response=GateDecisionPage, summary="Recorded gate decisions of the service, newest first: change-management "
                                              "evidence for auditors.", **COMMON, **SVC)
def list_gate_decisions(service_id: int, query: PageQuery):
    p = current_principal()
    svc = get_service(p.org.id, service_id)
    rows, cursor = paginate(gates.decisions_query(p.org.id, svc.id), GateDecision.id, query)
    return jsonify(data=[gates.decision_json(r) for r in rows], next_cursor=cursor)
