"""Audit scope API: every service with its scope decision (or "unmapped") and the classified data flows; an
owner/admin sets one service's decision. Another organisation's service id is 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from zentro.compliance import scope
from zentro.compliance.scope import ScopeIn
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.reliability.models import Service

bp = Blueprint("compliance_scope", __name__)
BASE = "/api/governance/compliance/scope"
COMMON = {"resource": "compliance", "tags": ("Compliance scope",)}


class ScopeServiceOut(BaseModel):
    service_id: int
    service: str
    tier: int
    environment: str
    internet_facing: bool
    owner: str
    status: Literal["in_scope", "out_of_scope", "unmapped"] = Field(
        description="unmapped = no scope decision recorded yet (a gap for the assessor).")
    in_scope: bool | None
    frameworks: list[str] = Field(description="Catalog framework keys.")
    framework_slugs: list[str]
    data_classes: list[str]
    note: str
    updated_at: dt.datetime | None


class ScopeFlowOut(BaseModel):
    id: int
    from_id: int
    from_: str = Field(alias="from")
    from_status: Literal["in_scope", "out_of_scope", "unmapped"]
    to_id: int
    to: str
    to_status: Literal["in_scope", "out_of_scope", "unmapped"]
    classification: Literal["inside", "crossing", "outside"] = Field(
        description="inside: both ends in scope; crossing: exactly one; outside: neither.")
    frameworks: list[str]
    data_classes: list[str]
    unmapped_end: bool


class ScopeCountsOut(BaseModel):
    services: int
    in_scope: int
    out_of_scope: int
    unmapped: int
    flows: int
    flows_inside: int
    flows_crossing: int
    flows_outside: int


class ScopeRegisterOut(BaseModel):
    generated_at: dt.datetime
    counts: ScopeCountsOut
    data_classes: list[str]
    services: list[ScopeServiceOut]
    flows: list[ScopeFlowOut]


@api_route(bp, BASE, methods=("GET",), response=ScopeRegisterOut,
           summary="Audit scope: every service with its scope decision (in scope, out of scope or unmapped), "
                   "frameworks and data classes, and every data flow (dependency edge) classified as inside the "
                   "boundary, crossing it, or outside.", **COMMON)
def scope_register():
    p = current_principal()
    return jsonify(scope.register(p.org.id))


@api_route(bp, f"{BASE}/<int:service_id>", methods=("PUT",), body=ScopeIn, response=ScopeServiceOut,
           tenant_model=Service, min_role="admin",
           summary="Set one service's scope decision (owner/admin): inScope, frameworks (slugs or keys), dataClasses "
                   "and a note; the whole mapping is replaced. Audited on the service with the scope-definition "
                   "controls (PCI DSS 12.5, ISO 27001 A.5.9/A.5.12, SOC 2 CC3.1, NIST CSF ID.AM-07); no change, no "
                   "event. Unknown service: 404.", **COMMON)
def put_scope(service_id: int, body: ScopeIn):
    p = current_principal()
    return jsonify(scope.put(p.org.id, service_id, body, actor=p.actor))
