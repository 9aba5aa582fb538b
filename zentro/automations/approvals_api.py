"""Approvals under /api/v1/approvals: request one for a dry-run, list and read them, decide once.
Deciding is for owners/admins and for members named by a required_approvers guardrail of the plan;
never for the requester. A second decision answers 200 with changed false and the decision that
stands. Ids of another organisation are 404."""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field

from zentro.automations import approvals, service
from zentro.automations.api import ApprovalOut
from zentro.automations.models import Approval
from zentro.automations.service import Id, Text
from zentro.platform.auth import current_principal
from zentro.platform.pagination import MAX_ID, PageQuery, paginate
from zentro.platform.routes import api_route

bp = Blueprint("automations_approvals", __name__, url_prefix="/api/v1/approvals")
COMMON = {"resource": "automations", "tags": ("Approvals",)}
ONE = {"tenant_model": Approval}


class ApprovalPage(BaseModel):
    data: list[ApprovalOut]
    next_cursor: str | None


class ApprovalDecisionOut(BaseModel):
    approval: ApprovalOut
    changed: bool = Field(description="false when it had already been decided (nothing changed).")
    message: str


class ApprovalQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: Literal["pending", "approved", "rejected"] | None = Field(None, description="Only approvals in this state.")
    incident_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only approvals for this incident.")


class ApprovalRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run_id: Id = Field(description="A persisted, fresh, not blocked dry-run of this organisation.")
    note: Text = Field("", description="Context for the approvers.")


class ApprovalDecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    note: Text = ""


@api_route(bp, "", methods=("GET",), query=ApprovalQuery, response=ApprovalPage,
           summary="Approvals, newest first; ?status=pending for the queue.", **COMMON)
def list_approvals(query: ApprovalQuery):
    p = current_principal()
    q = approvals.approvals_query(p.org.id, status=query.status, incident_id=query.incident_id)
    rows, cursor = paginate(q, Approval.id, query)
    return jsonify(data=[service.approval_json(a) for a in rows], next_cursor=cursor)


@api_route(bp, "", methods=("POST",), body=ApprovalRequestIn, response=ApprovalOut, status=201,
           summary="Request approval of a dry-run's plan (or get the pending/approved request it already has); posted to "
                   "Slack when configured. A blocked or expired dry-run: 409; another org's: 404.", **COMMON)
def request_approval(body: ApprovalRequestIn):
    p = current_principal()
    a = approvals.request_approval(p.org.id, dry_run_id=body.dry_run_id, actor=p.actor, user_id=p.user.id,
                                   note=body.note)
    return jsonify(service.approval_json(a)), 201


@api_route(bp, "/<int:approval_id>", methods=("GET",), response=ApprovalOut, summary="One approval.", **COMMON, **ONE)
def get_approval(approval_id: int):
    p = current_principal()
    return jsonify(service.approval_json(approvals.get_approval(p.org.id, approval_id)))


@api_route(bp, "/<int:approval_id>/decide", methods=("POST",), body=ApprovalDecideIn, response=ApprovalDecisionOut,
           summary="Approve or reject a pending approval (owner/admin or a named approver; not the requester: 403). "
                   "Decided once: a second decision changes nothing and answers changed false with the decision "
                   "that stands.", **COMMON, **ONE)
def decide(approval_id: int, body: ApprovalDecideIn):
    p = current_principal()
    a, changed = approvals.decide(p.org.id, approval_id, approve=body.decision == "approve", user_id=p.user.id,
                                  actor=p.actor, note=body.note, via="api")
    return jsonify(approval=service.approval_json(a), changed=changed, message=approvals.decision_message(a, changed))
