"""Audit-season checkpoints API and the consolidation play write path. Session or API key (scope
``compliance:read|write``); reads for every role; checkpoints change for owners/admins, play steps for members and
above. Ids of another organisation are 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from zentro.compliance import checkpoints as cp
from zentro.compliance.checkpoints import CheckpointIn, CheckpointPatchIn, PlayStepIn
from zentro.compliance.models import AuditCheckpoint
from zentro.compliance.registers_api import RegisterUserOut
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_checkpoints", __name__)
BASE = "/api/governance/compliance"
COMMON = {"resource": "compliance", "tags": ("Compliance registers",)}


class CheckpointOut(BaseModel):
    id: int
    name: str
    framework: str = Field(description="Catalog framework key, e.g. SOC2.")
    framework_name: str
    framework_slug: str
    owner: RegisterUserOut | None
    due_at: dt.datetime
    status: Literal["planned", "done"]
    state: Literal["planned", "overdue", "done"] = Field(description="Derived now: overdue = planned and past due.")
    days_left: int | None = Field(description="Whole days until the due date (planned ones only).")
    days_overdue: int
    done_at: dt.datetime | None = Field(description="Set by the server when the status becomes done.")
    created_at: dt.datetime


class CheckpointCountsOut(BaseModel):
    planned: int
    overdue: int
    done: int


class CheckpointListOut(BaseModel):
    generated_at: dt.datetime
    counts: CheckpointCountsOut
    total: int
    checkpoints: list[CheckpointOut]


class PlayStepStateOut(BaseModel):
    step: int
    name: str
    status: Literal["todo", "in_progress", "done", "skipped"]
    updated_at: dt.datetime | None
    updated_by: RegisterUserOut | None


class PlayOut(BaseModel):
    cluster_key: str
    state: Literal["not_started", "in_progress", "complete"]
    steps_complete: int
    progress_pct: int
    next_step: int | None
    members: list[str] = Field(description="Obligation keys of the cluster's members.")
    steps: list[PlayStepStateOut]


@api_route(bp, f"{BASE}/checkpoints", methods=("GET",), response=CheckpointListOut,
           summary="Audit-season checkpoints (kick-off, fieldwork, evidence freeze, report ...) in due order, with "
                   "their derived state and counts.", **COMMON)
def list_checkpoints():
    p = current_principal()
    return jsonify(cp.list_checkpoints(p.org.id))


@api_route(bp, f"{BASE}/checkpoints", methods=("POST",), body=CheckpointIn, response=CheckpointOut, status=201,
           min_role="admin",
           summary="Add an audit-season checkpoint (owner/admin). Unknown framework or a due date more than a year "
                   "back or two years ahead: 400; owner not in the org: 404; a viewer as owner: 409.", **COMMON)
def create_checkpoint(body: CheckpointIn):
    p = current_principal()
    row = cp.create(p.org.id, name=body.name, framework=body.framework, owner_id=body.owner_id, due_at=body.due_at,
                    actor=p.actor)
    return jsonify(cp.checkpoint_json(row, utcnow())), 201


@api_route(bp, f"{BASE}/checkpoints/<int:checkpoint_id>", methods=("GET",), response=CheckpointOut,
           tenant_model=AuditCheckpoint, summary="One audit-season checkpoint.", **COMMON)
def get_checkpoint(checkpoint_id: int):
    p = current_principal()
    return jsonify(cp.checkpoint_json(cp.get_checkpoint(p.org.id, checkpoint_id), utcnow()))


@api_route(bp, f"{BASE}/checkpoints/<int:checkpoint_id>", methods=("PATCH",), body=CheckpointPatchIn,
           response=CheckpointOut, tenant_model=AuditCheckpoint, min_role="admin",
           summary="Change the fields given (owner/admin): name, framework, owner (null for nobody), due date, status "
                   "planned|done (done sets done_at to now, planned clears it).", **COMMON)
def patch_checkpoint(checkpoint_id: int, body: CheckpointPatchIn):
    p = current_principal()
    row = cp.update(p.org.id, checkpoint_id, body.model_dump(include=body.model_fields_set), actor=p.actor)
    return jsonify(cp.checkpoint_json(row, utcnow()))


@api_route(bp, f"{BASE}/checkpoints/<int:checkpoint_id>", methods=("DELETE",), response=CheckpointOut,
           tenant_model=AuditCheckpoint, min_role="admin",
           summary="Delete a checkpoint (owner/admin); answers it as it was.", **COMMON)
def delete_checkpoint(checkpoint_id: int):
    p = current_principal()
    return jsonify(cp.delete(p.org.id, checkpoint_id, actor=p.actor))


@api_route(bp, f"{BASE}/obligation-consolidation/steps", methods=("POST",), body=PlayStepIn, response=PlayOut,
           summary="Set the status of one step (1-6) of a crossover cluster's consolidation play (member or above): "
                   "todo, in_progress, done or skipped. A cluster key that is not a current cluster of this org: "
                   "404. Answers the play with every step's status.", **COMMON)
def set_play_step(body: PlayStepIn):
    p = current_principal()
    return jsonify(cp.set_play_step(p.org.id, cluster_key=body.cluster_key, step=body.step, status=body.status,
                                    user_id=p.user.id if p.user is not None else None, actor=p.actor))
