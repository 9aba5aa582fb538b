"""Remediation proposals under /api/v1/remediations (the platform dialect): propose a playbook as the fix
for an incident, preview it (a stored dry-run), approve or reject it (owner/admin, not the proposer),
and apply it — a guarded remediation with the latest preview, which needs a fresh preview, an approval
where a guardrail demands one and an accepted policy covering the plan; every refusal is a policy
block (409 POLICY_BLOCKED). Ids of another organisation are 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field

from zentro.automations import service
from zentro.automations.api import DryRunOut, ExecutionOut
from zentro.automations.models import Remediation
from zentro.automations.service import RemediationIn, Text
from zentro.compliance.attestations import RequiredText
from zentro.platform.auth import current_principal
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route

bp = Blueprint("automations_remediations", __name__, url_prefix="/api/v1/remediations")
COMMON = {"resource": "automations", "tags": ("Remediations",)}
ONE = {"tenant_model": Remediation}


class RemediationOut(BaseModel):
    id: int
    title: str
    rationale: str
    source: str
    status: Literal["proposed", "approved", "rejected", "applied", "failed"]
    playbook_id: int | None
    incident_id: int | None
    approval_id: int | None
    preview: DryRunOut | None = Field(description="The latest preview (dry-run) of the playbook.")
    execution: ExecutionOut | None
    decided_by: str | None
    decision_note: str
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class RemediationPage(BaseModel):
    data: list[RemediationOut]
    next_cursor: str | None


class RemediationQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: Literal["proposed", "approved", "rejected", "applied", "failed"] | None = None


class RemediationApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text = ""


class RemediationRejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: RequiredText = Field(description="Why it is rejected (required).")


class RemediationApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approval_note: Text = Field("", description="Why (required; empty is refused as a policy block).")
    rollback_plan: Text = Field("", description="How to undo it (required; empty is refused as a policy block).")


def _out(r: Remediation):
    return jsonify(service.remediation_json(r))


@api_route(bp, "", methods=("GET",), query=RemediationQuery, response=RemediationPage,
           summary="Remediation proposals, newest first.", **COMMON)
def list_remediations(query: RemediationQuery):
    p = current_principal()
    rows, cursor = paginate(service.remediations_query(p.org.id, query.status), Remediation.id, query)
    return jsonify(data=[service.remediation_json(r) for r in rows], next_cursor=cursor)


@api_route(bp, "", methods=("POST",), body=RemediationIn, response=RemediationOut, status=201,
           summary="Propose a remediation: a playbook (and optionally the incident it fixes) of this org (else 404).",
           **COMMON)
def create_remediation(body: RemediationIn):
    p = current_principal()
    r = service.create_remediation(p.org.id, body, actor=p.actor, user_id=p.user.id)
    return _out(r), 201


@api_route(bp, "/<int:remediation_id>", methods=("GET",), response=RemediationOut, summary="One remediation.",
           **COMMON, **ONE)
def get_remediation(remediation_id: int):
    p = current_principal()
    return _out(service.get_remediation(p.org.id, remediation_id))


@api_route(bp, "/<int:remediation_id>/preview", methods=("POST",), response=RemediationOut,
           summary="Dry-run the remediation's playbook and keep it as the preview (rejected or applied: 409). A preview "
                   "of another plan than the approved one sends it back to proposed.", **COMMON, **ONE)
def preview_remediation(remediation_id: int):
    p = current_principal()
    return _out(service.preview_remediation(p.org.id, remediation_id, actor=p.actor, user_id=p.user.id))


@api_route(bp, "/<int:remediation_id>/approve", methods=("POST",), body=RemediationApproveIn,
           response=RemediationOut, min_role="admin",
           summary="Approve the previewed plan (owner/admin; the proposer: 403). Without a preview, with a blocked "
                   "preview, or when already decided: 409.", **COMMON, **ONE)
def approve_remediation(remediation_id: int, body: RemediationApproveIn):
    p = current_principal()
    return _out(service.approve_remediation(p.org.id, remediation_id, actor=p.actor, user_id=p.user.id,
                                            note=body.note, via="api"))


@api_route(bp, "/<int:remediation_id>/reject", methods=("POST",), body=RemediationRejectIn,
           response=RemediationOut, min_role="admin",
           summary="Reject the remediation with a note (owner/admin); rejected or applied already: 409.", **COMMON, **ONE)
def reject_remediation(remediation_id: int, body: RemediationRejectIn):
    p = current_principal()
    return _out(service.reject_remediation(p.org.id, remediation_id, actor=p.actor, user_id=p.user.id,
                                           note=body.note))


@api_route(bp, "/<int:remediation_id>/apply", methods=("POST",), body=RemediationApplyIn, response=RemediationOut,
           summary="Apply: a guarded remediation with the latest preview (fresh, unused, same plan), an approval where "
                   "a guardrail demands one and an accepted policy covering the plan; each refusal is a policy block "
                   "(409 POLICY_BLOCKED with its reason_code).", **COMMON, **ONE)
def apply_remediation(remediation_id: int, body: RemediationApplyIn):
    p = current_principal()
    return _out(service.apply_remediation(p.org.id, remediation_id, actor=p.actor, user_id=p.user.id,
                                          approval_note=body.approval_note, rollback_plan=body.rollback_plan))
