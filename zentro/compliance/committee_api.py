"""Committee settings and staffing actions API. Session or API key (scope ``compliance:read|write``); every
member may read the settings, owners/admins change them and the staffing actions. The tracker itself (GET
/api/governance/compliance/staffing-actions) is the ``staffing-actions`` report. Ids of another org are 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from zentro.compliance import committee as svc
from zentro.compliance.committee import CommitteeSettingsIn, StaffingActionCreateIn, StaffingActionPatchIn
from zentro.compliance.models import STAFFING_ACTION_KINDS, STAFFING_ACTION_STATUSES, StaffingAction
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_committee", __name__)
BASE = "/api/governance/compliance"
COMMON = {"resource": "compliance", "tags": ("Compliance committee",)}


def _who():
    p = current_principal()
    return p, (p.user.id if p.user is not None else None)


class EffortHoursOut(BaseModel):
    attestation: float
    vendor_review: float
    vendor_report: float
    bundle: float
    checkpoint: float
    evidence_request: float


class CommitteeDefaultsOut(BaseModel):
    capacityHoursPerWeek: float
    densityWarn: int
    densityCritical: int
    completionSlaDays: int
    bundleCadenceDays: int
    escalationEmails: list[str]
    effortHours: EffortHoursOut


class CommitteeSettingsOut(CommitteeDefaultsOut):
    stored: bool = Field(description="False while the org runs on the defaults (no settings saved).")
    defaults: CommitteeDefaultsOut = Field(description="The values used when nothing is stored.")
    updatedAt: dt.datetime | None


class ActionOwnerOut(BaseModel):
    id: int
    email: str
    name: str


class StaffingActionOut(BaseModel):
    id: int
    weekStart: dt.date = Field(description="Monday of the peak week the action relieves.")
    owner: ActionOwnerOut | None
    kind: Literal[STAFFING_ACTION_KINDS]
    status: Literal[STAFFING_ACTION_STATUSES]
    title: str
    hours: float
    note: str
    slaDueAt: dt.datetime = Field(description="weekStart 00:00 UTC + the committee's completion SLA days.")
    pastSla: bool = Field(description="Open (proposed or tracked) and now is after slaDueAt.")
    next: list[Literal[STAFFING_ACTION_STATUSES]] = Field(description="The statuses this action may move to.")
    createdAt: dt.datetime
    updatedAt: dt.datetime
    completedAt: dt.datetime | None


@api_route(bp, f"{BASE}/committee-settings", methods=("GET",), response=CommitteeSettingsOut,
           summary="Committee settings: weekly owner-hour capacity, density thresholds, completion SLA, bundle "
                   "cadence, escalation recipients and effort hours per obligation kind (the defaults while none are "
                   "saved; `stored` says which).", **COMMON)
def committee_settings():
    p, _ = _who()
    return jsonify(svc.settings_json(p.org.id))


@api_route(bp, f"{BASE}/committee-settings", methods=("PUT",), body=CommitteeSettingsIn,
           response=CommitteeSettingsOut, min_role="admin",
           summary="Save committee settings (owner/admin). Fields left out keep their current value; densityWarn must "
                   "stay below densityCritical (400). Audited (SOC2:CC1.2, ISO27001:A.5.4).", **COMMON)
def put_committee_settings(body: CommitteeSettingsIn):
    p, user_id = _who()
    return jsonify(svc.update_settings(p.org.id, body.model_dump(exclude_unset=True, exclude_none=True),
                                       user_id=user_id, actor=p.actor))


@api_route(bp, f"{BASE}/staffing-actions", methods=("POST",), body=StaffingActionCreateIn,
           response=StaffingActionOut, status=201, min_role="admin",
           summary="Propose a staffing action for a peak week (owner/admin): weekStart (any date of the week; stored "
                   "as its Monday), kind, title, hours and an optional owner (not a member: 404; a viewer: 409). "
                   "Audited (SOC2:CC1.3, ISO27001:A.5.2).", **COMMON)
def create_staffing_action(body: StaffingActionCreateIn):
    p, user_id = _who()
    row = svc.create_action(p.org.id, body.model_dump(mode="json", exclude_unset=True), user_id=user_id,
                            actor=p.actor)
    return jsonify(svc.action_json(row, now=utcnow())), 201


@api_route(bp, f"{BASE}/staffing-actions/<int:action_id>", methods=("PATCH",), body=StaffingActionPatchIn,
           response=StaffingActionOut, tenant_model=StaffingAction, min_role="admin",
           summary="Change a staffing action (owner/admin): status proposed → tracked → completed, or to dismissed "
                   "from proposed/tracked (else 409; completedAt is set by the server); owner, title, hours and note "
                   "while it is open (a closed one: 409).", **COMMON)
def patch_staffing_action(action_id: int, body: StaffingActionPatchIn):
    p, user_id = _who()
    row = svc.update_action(p.org.id, action_id, body.model_dump(mode="json", exclude_unset=True), user_id=user_id,
                            actor=p.actor)
    return jsonify(svc.action_json(row, now=utcnow()))


@api_route(bp, f"{BASE}/staffing-actions/<int:action_id>", methods=("DELETE",), status=204,
           tenant_model=StaffingAction, min_role="admin",
           summary="Delete a staffing action (owner/admin); the deletion is audited.", **COMMON)
def delete_staffing_action(action_id: int):
    p, user_id = _who()
    svc.delete_action(p.org.id, action_id, user_id=user_id, actor=p.actor)
    return "", 204
