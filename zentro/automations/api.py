"""Automations API: dry-run a playbook (or ad-hoc steps), execute a checked plan, remediate under an
accepted policy. Session or API key (scope ``automations:read|write``); member or above. Refusals are
409 POLICY_BLOCKED with ``errors[0].reason_code`` after the policy block is recorded. This module also
holds the response models the other automations API modules share."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field, StrictBool, StringConstraints

from zentro.automations import service
from zentro.automations.service import Id, Steps, Text
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route

bp = Blueprint("automations_api", __name__, url_prefix="/api/automations")
COMMON = {"resource": "automations", "tags": ("Automations",)}
Verdict = Literal["pass", "needs_approval", "blocked"]


# --- response models ------------------------------------------------------------------------------

class PlaybookStepOut(BaseModel):
    action: Literal["restart", "scale", "rollback_deploy", "toggle_flag", "block_address", "run_command"]
    service_id: int
    params: dict


class PlanStepOut(PlaybookStepOut):
    service: str = Field(description="The service's name when planned.")


class BlastRadiusServiceOut(BaseModel):
    service_id: int
    name: str
    tier: int
    depth: int = Field(description="0 = touched; n = an n-th degree downstream dependent.")
    role: Literal["touched", "dependent"]


class BlastRadiusOut(BaseModel):
    services: list[BlastRadiusServiceOut]
    touched: int
    dependents: int
    total: int
    by_tier: dict[str, int]
    most_critical_tier: int


class SloImpactOut(BaseModel):
    service_id: int
    name: str
    tier: int
    role: Literal["touched", "dependent"]
    slo_target: float
    budget_source: Literal["sli", "derived_from_incidents", "no_data"]
    remaining_ratio_30d: float = Field(description="Share of the 30-day error budget left now (1 with no data).")
    risk_minutes: float = Field(description="Assumed fully-bad minutes the plan costs this service.")
    predicted_budget_cost: float = Field(description="risk_minutes as a share of the 30-day error budget.")
    predicted_remaining_ratio: float
    status: Literal["ok", "at_risk", "exhausted"]
    assumption: str


class GuardrailCheckOut(BaseModel):
    guardrail_id: int
    name: str
    kind: Literal["maintenance_window", "tier_protection", "max_blast_radius", "required_approvers", "change_freeze"]
    service_id: int | None
    verdict: Verdict
    reason: str
    approvers: list[str] | None = None


class DryRunOut(BaseModel):
    id: int | None = Field(description="null when not persisted (such a dry-run cannot be executed).")
    persisted: bool
    playbook_id: int | None
    incident_id: int | None
    plan: list[PlanStepOut]
    plan_hash: str = Field(description="SHA-256 of the plan's canonical JSON; send it to execute.")
    action_key: str
    summary: str
    blast_radius: BlastRadiusOut
    slo_impact: list[SloImpactOut]
    checks: list[GuardrailCheckOut]
    verdict: Verdict
    created_at: dt.datetime
    expires_at: dt.datetime
    fresh: bool


class ExecutionOut(BaseModel):
    id: int
    kind: Literal["execute", "remediate"]
    dry_run_id: int | None
    playbook_id: int | None
    incident_id: int | None
    approval_id: int | None
    policy_id: int | None
    plan_hash: str
    approval_note: str
    rollback_plan: str
    mode: Literal["robot", "manual"]
    status: Literal["recorded", "succeeded", "failed"]
    robot_status: int | None = Field(description="The robot backend's HTTP status (robot mode).")
    detail: str = Field(description="What happened: the robot's answer, or that it was recorded for a person.")
    created_by: str | None
    created_at: dt.datetime


class ApprovalOut(BaseModel):
    id: int
    dry_run_id: int | None
    playbook_id: int | None
    incident_id: int | None
    plan_hash: str
    action_key: str
    summary: str
    reason: str
    status: Literal["pending", "approved", "rejected"]
    requested_by: str | None
    decided_by: str | None
    decided_via: Literal["app", "api", "slack"] | None
    decision_note: str
    decided_at: dt.datetime | None
    slack_status: str
    created_at: dt.datetime


# --- request models -------------------------------------------------------------------------------

PlanHash = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


class DryRunIn(BaseModel):
    model_config = {"extra": "forbid"}
    playbook_id: Id | None = Field(None, description="The playbook to plan; or give steps (exactly one of the two).")
    steps: Steps | None = Field(None, description="Ad-hoc steps instead of a playbook.")
    incident_id: Id | None = Field(None, description="The incident it is for: the dry-run lands on its timeline.")
    persist: StrictBool = Field(True, description="Store (201; executable) or only compute (200).")


class ExecuteIn(BaseModel):
    model_config = {"extra": "forbid"}
    dry_run_id: Id
    plan_hash: PlanHash = Field(description="The dry-run's plan_hash: proves you run the plan that was checked.")
    approval_note: Text = Field("", description="Why (required; an empty note is refused as a policy block).")
    rollback_plan: Text = Field("", description="How to undo it (required; empty is refused as a policy block).")
    approval_id: Id | None = Field(None, description="The approval to use; default: an approved one for this plan.")


def _run(operation):
    p = current_principal()

    def call(body: ExecuteIn):
        ex = operation(p.org.id, actor=p.actor, user_id=p.user.id, dry_run_id=body.dry_run_id, plan_hash=body.plan_hash,
                       approval_note=body.approval_note, rollback_plan=body.rollback_plan,
                       approval_id=body.approval_id)
        return jsonify(service.execution_json(ex)), 201
    return call


@api_route(bp, "/dry-run", methods=("POST",), body=DryRunIn, response=DryRunOut, status=201,
           extra={"also_statuses": {200: "Computed without storing (persist false)."}},
           summary="Dry-run a playbook or ad-hoc steps: the resolved plan and its hash, the blast radius (touched "
                   "services and every downstream dependent), the predicted SLO impact with its assumptions, and every "
                   "guardrail check with its verdict and reason. Persisted (201) it is audited, lands on the incident's "
                   "timeline and can be executed until it expires; persist false answers 200. Exactly one of "
                   "playbook_id or steps (else 400); a playbook, service or incident of another org: 404.", **COMMON)
def dry_run(body: DryRunIn):
    p = current_principal()
    row = service.dry_run(p.org.id, actor=p.actor, user_id=p.user.id, playbook_id=body.playbook_id,
                          steps=body.steps, incident_id=body.incident_id, persist=body.persist)
    return jsonify(service.dry_run_json(row)), 201 if body.persist else 200


@api_route(bp, "/execute", methods=("POST",), body=ExecuteIn, response=ExecutionOut, status=201,
           summary="Execute a dry-run's plan: it must not be blocked, have the same plan hash (and its playbook still "
                   "plan the same), be fresh and unused, carry an approval note and a rollback plan, and have an "
                   "approved approval where a guardrail requires one. Each refusal is recorded as a policy block and "
                   "answered 409 POLICY_BLOCKED with its reason_code. With ZENTRO_ROBOT_API_URL the execution is sent "
                   "to the robot backend and its answer recorded; otherwise it is recorded as manual and says so.",
           **COMMON)
def execute(body: ExecuteIn):
    return _run(service.execute)(body)


@api_route(bp, "/remediate", methods=("POST",), body=ExecuteIn, response=ExecutionOut, status=201,
           summary="Guarded remediation: every execute rule, and an accepted policy must cover every action of the plan "
                   "(else a no_accepted_policy policy block).", **COMMON)
def remediate(body: ExecuteIn):
    return _run(service.remediate)(body)
