"""Guardrails under /api/v1/guardrails: custom rules on one service or the whole org (maintenance
window, tier protection, max blast radius, required approvers, change freeze) that every dry-run
evaluates. Reads for every role; changes for owners and admins (a member cannot loosen the rules that
guard the member's own changes). Ids of another organisation are 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel

from zentro.automations import service
from zentro.automations.models import Guardrail
from zentro.automations.service import GuardrailIn, GuardrailPatchIn
from zentro.platform.auth import current_principal
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route

bp = Blueprint("automations_guardrails", __name__, url_prefix="/api/v1/guardrails")
COMMON = {"resource": "automations", "tags": ("Automations",)}
ONE = {"tenant_model": Guardrail}


class GuardrailOut(BaseModel):
    id: int
    name: str
    kind: Literal["maintenance_window", "tier_protection", "max_blast_radius", "required_approvers", "change_freeze"]
    service_id: int | None
    scope: Literal["service", "org"]
    params: dict
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class GuardrailPage(BaseModel):
    data: list[GuardrailOut]
    next_cursor: str | None


@api_route(bp, "", methods=("GET",), query=PageQuery, response=GuardrailPage,
           summary="The org's guardrails, newest first.", **COMMON)
def list_guardrails(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(service.guardrails_query(p.org.id), Guardrail.id, query)
    return jsonify(data=[service.guardrail_json(g) for g in rows], next_cursor=cursor)


@api_route(bp, "", methods=("POST",), body=GuardrailIn, response=GuardrailOut, status=201, min_role="admin",
           summary="Create a guardrail (owner/admin); params by kind. A service or approver not in the org: 404; a "
                   "viewer as approver or a name already used: 409; a freeze ending before it starts: 400.", **COMMON)
def create_guardrail(body: GuardrailIn):
    p = current_principal()
    g = service.create_guardrail(p.org.id, body, actor=p.actor, user_id=p.user.id)
    return jsonify(service.guardrail_json(g)), 201


@api_route(bp, "/<int:guardrail_id>", methods=("GET",), response=GuardrailOut, summary="One guardrail.",
           **COMMON, **ONE)
def get_guardrail(guardrail_id: int):
    p = current_principal()
    return jsonify(service.guardrail_json(service.get_guardrail(p.org.id, guardrail_id)))


@api_route(bp, "/<int:guardrail_id>", methods=("PATCH",), body=GuardrailPatchIn, response=GuardrailOut,
           min_role="admin",
           summary="Change the fields given (owner/admin); params are validated against the guardrail's kind (400).",
           **COMMON, **ONE)
def patch_guardrail(guardrail_id: int, body: GuardrailPatchIn):
    p = current_principal()
    g = service.update_guardrail(p.org.id, guardrail_id, body.model_dump(include=body.model_fields_set), actor=p.actor)
    return jsonify(service.guardrail_json(g))


@api_route(bp, "/<int:guardrail_id>", methods=("DELETE",), response=GuardrailOut, min_role="admin",
           summary="Delete a guardrail (owner/admin). Answers it as it was.", **COMMON, **ONE)
def delete_guardrail(guardrail_id: int):
    p = current_principal()
    return jsonify(service.delete_guardrail(p.org.id, guardrail_id, actor=p.actor))
