"""Playbooks under /api/v1/playbooks: ordered steps on services (restart, scale, rollback_deploy,
toggle_flag, block_address, run_command), validated per action. Reads for every role; changes for
members and above. Ids of another organisation are 404."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify
from pydantic import BaseModel

from zentro.automations import service
from zentro.automations.api import PlaybookStepOut
from zentro.automations.models import Playbook
from zentro.automations.service import PlaybookIn, PlaybookPatchIn
from zentro.platform.auth import current_principal
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route

bp = Blueprint("automations_playbooks", __name__, url_prefix="/api/v1/playbooks")
COMMON = {"resource": "automations", "tags": ("Automations",)}
ONE = {"tenant_model": Playbook}


class PlaybookOut(BaseModel):
    id: int
    name: str
    description: str
    steps: list[PlaybookStepOut]
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class PlaybookPage(BaseModel):
    data: list[PlaybookOut]
    next_cursor: str | None


@api_route(bp, "", methods=("GET",), query=PageQuery, response=PlaybookPage,
           summary="The org's playbooks, newest first.", **COMMON)
def list_playbooks(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(service.playbooks_query(p.org.id), Playbook.id, query)
    return jsonify(data=[service.playbook_json(pb) for pb in rows], next_cursor=cursor)


@api_route(bp, "", methods=("POST",), body=PlaybookIn, response=PlaybookOut, status=201,
           summary="Create a playbook: 1–50 steps, each an action with its parameters on a service of this org "
                   "(another org's service: 404). A name already used: 409.", **COMMON)
def create_playbook(body: PlaybookIn):
    p = current_principal()
    pb = service.create_playbook(p.org.id, body, actor=p.actor, user_id=p.user.id)
    return jsonify(service.playbook_json(pb)), 201


@api_route(bp, "/<int:playbook_id>", methods=("GET",), response=PlaybookOut, summary="One playbook.", **COMMON, **ONE)
def get_playbook(playbook_id: int):
    p = current_principal()
    return jsonify(service.playbook_json(service.get_playbook(p.org.id, playbook_id)))


@api_route(bp, "/<int:playbook_id>", methods=("PATCH",), body=PlaybookPatchIn, response=PlaybookOut,
           summary="Change the fields given. Dry-runs made before a change to what the playbook plans can no longer "
                   "be executed (plan_changed).", **COMMON, **ONE)
def patch_playbook(playbook_id: int, body: PlaybookPatchIn):
    p = current_principal()
    pb = service.update_playbook(p.org.id, playbook_id, body.model_dump(include=body.model_fields_set), actor=p.actor)
    return jsonify(service.playbook_json(pb))


@api_route(bp, "/<int:playbook_id>", methods=("DELETE",), response=PlaybookOut, min_role="admin",
           summary="Delete a playbook (owner/admin); its dry-runs and executions keep their records. Answers the "
                   "playbook as it was.", **COMMON, **ONE)
def delete_playbook(playbook_id: int):
    p = current_principal()
    return jsonify(service.delete_playbook(p.org.id, playbook_id, actor=p.actor))
