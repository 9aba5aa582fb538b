"""Assessor evidence requests API. The collection GET (``/api/governance/compliance/evidence-requests``) is the
``evidence-requests`` report (zentro.compliance.reports.evidence_requests, served by reports_api); this module adds
the writes and the one-request read. Session or API key (scope ``compliance:read|write``); ids of another
organisation are 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from zentro.compliance import evidence_requests as svc
from zentro.compliance.evidence_requests import CancelIn, EvidenceRequestIn, EvidenceRequestPatchIn, FulfilIn
from zentro.compliance.models import EvidenceRequest
from zentro.compliance.registers_api import RegisterUserOut
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_evidence_requests", __name__)
BASE = "/api/governance/compliance/evidence-requests"
COMMON = {"resource": "compliance", "tags": ("Evidence requests",)}


class RequestBundleOut(BaseModel):
    id: int
    seq: int
    kind: str


class EvidenceRequestOut(BaseModel):
    id: int
    title: str
    controls: list[str]
    control_titles: dict[str, str]
    frameworks: list[str]
    requested_by: str
    owner: RegisterUserOut | None
    requested_at: dt.datetime
    due_at: dt.datetime
    status: Literal["open", "fulfilled", "cancelled"]
    state: Literal["open", "overdue", "fulfilled", "cancelled"] = Field(
        description="overdue = open and the due date has passed.")
    days_to_due: int | None = Field(description="Whole days from now to the due date (negative when overdue); "
                                                "null unless open.")
    fulfilled_at: dt.datetime | None
    bundle: RequestBundleOut | None
    file_ref: str
    note: str
    created_at: dt.datetime
    url: str


def _who():
    p = current_principal()
    return p, (p.user.id if p.user is not None else None)


@api_route(bp, BASE, methods=("POST",), body=EvidenceRequestIn, response=EvidenceRequestOut, status=201,
           min_role="admin", endpoint="create_evidence_request",
           summary="Log an assessor's evidence request (owner/admin): title, 1-50 catalog control tags, requestedBy, "
                   "ownerId (a member; not in the org: 404, viewer: 409), dueAt after the request date (at most two "
                   "years ahead), note. Unknown tag or bad date: 400.", **COMMON)
def create_request(body: EvidenceRequestIn):
    p, user_id = _who()
    row = svc.create(p.org.id, body.model_dump(by_alias=True, exclude_unset=True), user_id=user_id, actor=p.actor)
    return jsonify(svc.request_json(row, utcnow())), 201


@api_route(bp, f"{BASE}/<int:request_id>", methods=("GET",), response=EvidenceRequestOut,
           tenant_model=EvidenceRequest, summary="One evidence request with its derived state.", **COMMON)
def get_request(request_id: int):
    p, _ = _who()
    return jsonify(svc.request_json(svc.get_request(p.org.id, request_id), utcnow()))


@api_route(bp, f"{BASE}/<int:request_id>", methods=("PATCH",), body=EvidenceRequestPatchIn,
           response=EvidenceRequestOut, tenant_model=EvidenceRequest, min_role="admin",
           summary="Change the fields given (owner/admin): title, controls, requestedBy, ownerId (null unassigns), "
                   "dueAt, note. Only an open request can be edited (409).", **COMMON)
def patch_request(request_id: int, body: EvidenceRequestPatchIn):
    p, user_id = _who()
    row = svc.update(p.org.id, request_id, body.model_dump(by_alias=True, exclude_unset=True), user_id=user_id,
                     actor=p.actor)
    return jsonify(svc.request_json(row, utcnow()))


@api_route(bp, f"{BASE}/<int:request_id>/fulfil", methods=("POST",), body=FulfilIn, response=EvidenceRequestOut,
           tenant_model=EvidenceRequest,
           summary="Fulfil an open request (member or above) with bundleId (one of the org's evidence bundles, else "
                   "404) and/or fileRef (an http(s) address); neither: 400. The server records fulfilled_at. Not open: "
                   "409.", **COMMON)
def fulfil_request(request_id: int, body: FulfilIn):
    p, user_id = _who()
    row = svc.fulfil(p.org.id, request_id, body.model_dump(by_alias=True, exclude_unset=True), user_id=user_id,
                     actor=p.actor)
    return jsonify(svc.request_json(row, utcnow()))


@api_route(bp, f"{BASE}/<int:request_id>/cancel", methods=("POST",), body=CancelIn, response=EvidenceRequestOut,
           tenant_model=EvidenceRequest, min_role="admin",
           summary="Cancel an open request (owner/admin), with an optional reason. Not open: 409.", **COMMON)
def cancel_request(request_id: int, body: CancelIn):
    p, user_id = _who()
    row = svc.cancel(p.org.id, request_id, body.model_dump(by_alias=True, exclude_unset=True), user_id=user_id,
                     actor=p.actor)
    return jsonify(svc.request_json(row, utcnow()))
