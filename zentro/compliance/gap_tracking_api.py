"""Gap remediation tracking API: create a tracking row for a control gap and change it. The queue itself is the
``gap-remediations`` report (``GET /api/governance/compliance/gap-remediations``, served by the report registry).
Session or API key (scope ``compliance:write``); members and above; another org's id is 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from zentro.compliance import gap_tracking
from zentro.compliance.gap_tracking import GapRemediationIn, GapRemediationPatchIn
from zentro.compliance.models import GapRemediation
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route

bp = Blueprint("compliance_gap_tracking", __name__)
BASE = "/api/governance/compliance/gap-remediations"
COMMON = {"resource": "compliance", "tags": ("Compliance registers",)}


class GapRemediationOut(BaseModel):
    id: int
    control: str
    control_title: str
    status: Literal["open", "in_progress", "done", "wont_fix"]
    owner_id: int | None
    owner: str = Field(description="The owner's email, empty when unassigned.")
    playbook_id: int | None
    playbook: str = Field(description="The playbook's name, empty when none.")
    runbook_url: str
    due_at: dt.datetime | None
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None = Field(description="Set by the server when the status moves to done or wont_fix.")


@api_route(bp, BASE, methods=("POST",), body=GapRemediationIn, response=GapRemediationOut, status=201,
           summary="Track a control gap (member or above): status, owner, the playbook or runbook that closes it, due "
                   "date, note. Unknown control tag, a runbook that is not http(s) or a due date not in the next two "
                   "years: 400; owner not in the org or a playbook of another org: 404; owner with viewer role or a "
                   "control that already has a row: 409.", **COMMON)
def create_gap_remediation(body: GapRemediationIn):
    p = current_principal()
    row = gap_tracking.create(p.org.id, body.model_dump(exclude_unset=True), actor=p.actor)
    return jsonify(gap_tracking.remediation_json(row)), 201


@api_route(bp, f"{BASE}/<int:remediation_id>", methods=("PATCH",), body=GapRemediationPatchIn,
           response=GapRemediationOut, tenant_model=GapRemediation,
           summary="Change the fields given (member or above): status (done/wont_fix set closed_at; open/in_progress "
                   "clear it), owner, playbook, runbook, due date, note. Same checks as creating.", **COMMON)
def patch_gap_remediation(remediation_id: int, body: GapRemediationPatchIn):
    p = current_principal()
    row = gap_tracking.update(p.org.id, remediation_id, body.model_dump(include=body.model_fields_set), actor=p.actor)
    return jsonify(gap_tracking.remediation_json(row))
