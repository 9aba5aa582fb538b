"""Compliance registers API: the attestation board, control exceptions, policies and the third-party
vendor register. Session or API key (scope ``compliance:read|write``); reads for every role, changes
as each route says. Ids of another organisation are 404."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field

from zentro.compliance import attestations as att
from zentro.compliance import vendors
from zentro.compliance.attestations import (MAX_ID, AttestationAssignIn, AttestationAttestIn, AttestationRejectIn,
                                            ControlExceptionIn, PolicyCreateIn, PolicyPatchIn, PolicyTransitionIn)
from zentro.compliance.models import Attestation, ControlException, Policy, Vendor
from zentro.compliance.vendors import VendorIn, VendorPatchIn, VendorReviewIn
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_registers", __name__)
BASE = "/api/governance/compliance"
VENDORS = "/api/governance/third-party/vendors"
COMMON = {"resource": "compliance", "tags": ("Compliance registers",)}


def _who():
    p = current_principal()
    return p, (p.user.id if p.user is not None else None)


# --- response models (what the endpoints answer; /openapi.json shows them) -------------------------

class RegisterUserOut(BaseModel):
    id: int
    email: str
    name: str


class AttestationEvidenceOut(BaseModel):
    kind: Literal["audit_event", "url"]
    ref: int | str


class AttestationOut(BaseModel):
    id: int
    control: str
    framework: str
    control_title: str
    owner: RegisterUserOut | None
    status: Literal["assigned", "attested", "rejected"]
    state: Literal["assigned", "overdue", "attested", "expired", "rejected"] = Field(
        description="Derived now: overdue = not attested and due passed; expired = attested and valid_until passed.")
    due_at: dt.datetime
    days_overdue: int
    attested_at: dt.datetime | None
    attested_by: RegisterUserOut | None
    valid_until: dt.datetime | None
    validity_days: int | None = Field(description="min(catalog freshness SLA of the control, 365).")
    note: str
    evidence: list[AttestationEvidenceOut]
    evidence_refs: int
    evidence_count_90d: int = Field(description="Audit rows tagged with the control in the last 90 days.")
    created_at: dt.datetime


class AttestationCountsOut(BaseModel):
    assigned: int
    overdue: int
    attested: int
    expired: int
    rejected: int


class AttestationBoardOut(BaseModel):
    generated_at: dt.datetime
    evidence_window_days: int
    counts: AttestationCountsOut = Field(description="Over every attestation of the org, before filters.")
    total: int
    attestations: list[AttestationOut]


class BoardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["assigned", "overdue", "attested", "expired", "rejected"] | None = Field(
        None, description="Only attestations in this derived state.")
    owner: int | None = Field(None, ge=1, le=MAX_ID, description="Only attestations owned by this user id.")


class ControlExceptionOut(BaseModel):
    id: int
    control: str
    control_title: str
    reason: str
    compensating_control: str
    approver: RegisterUserOut | None
    opened_by: RegisterUserOut | None
    status: Literal["open", "closed"]
    state: Literal["open", "expired", "closed"]
    opened_at: dt.datetime
    expires_at: dt.datetime
    closed_at: dt.datetime | None
    days_left: int | None


class ExceptionCountsOut(BaseModel):
    open: int
    expired: int
    closed: int


class ExceptionRegisterOut(BaseModel):
    generated_at: dt.datetime
    counts: ExceptionCountsOut
    exceptions: list[ControlExceptionOut]


class PolicyOut(BaseModel):
    id: int
    name: str
    description: str
    status: Literal["draft", "review", "accepted", "retired"]
    control_tags: list[str]
    actions: list[str]
    source: str
    accepted_at: dt.datetime | None
    accepted_by: RegisterUserOut | None
    next: list[str] = Field(description="The states this policy may move to.")
    created_at: dt.datetime
    updated_at: dt.datetime


class PolicyCountsOut(BaseModel):
    draft: int
    review: int
    accepted: int
    retired: int


class PolicyRegisterOut(BaseModel):
    counts: PolicyCountsOut
    policies: list[PolicyOut]


class InheritedControlOut(BaseModel):
    tag: str
    title: str


class VendorOut(BaseModel):
    id: int
    name: str
    category: str
    category_label: str
    risk_tier: str
    owner: RegisterUserOut | None
    website: str
    report_type: str
    report_label: str
    report_expires_at: dt.datetime | None
    report_status: Literal["valid", "expiring", "expired", "none"] = Field(
        description="expiring = the report expires within 30 days.")
    report_days_left: int | None
    inherited_controls: list[str]
    inherited_detail: list[InheritedControlOut]
    inheritance_active: bool = Field(description="Inherited controls count as evidence (report valid or expiring).")
    review_days: int | None
    last_review_at: dt.datetime | None
    next_review_at: dt.datetime | None
    review_overdue: bool
    baa: bool
    dpa: bool
    handles_phi: bool
    handles_personal_data: bool
    baa_missing: bool = Field(description="Handles PHI without a BAA.")
    dpa_missing: bool = Field(description="Handles personal data without a DPA.")
    reused_evidence_count: int = Field(
        description="Audit events tagged with any inherited control in the last 90 days.")
    notes: str
    created_at: dt.datetime


class VendorSummaryOut(BaseModel):
    total: int
    by_tier: dict[str, int]
    by_report_status: dict[str, int]
    reviews_overdue: int
    baa_missing: int
    dpa_missing: int
    inherited_controls: int


class VendorRegisterOut(BaseModel):
    generated_at: dt.datetime
    evidence_window_days: int
    expiring_window_days: int
    summary: VendorSummaryOut
    vendors: list[VendorOut]


# --- attestations ---------------------------------------------------------------------------------

@api_route(bp, f"{BASE}/attestations", methods=("GET",), query=BoardQuery, response=AttestationBoardOut,
           summary="Control attestation board: owners, due dates, derived state and linked audit evidence counts per "
                   "control (last 90 days), with counts by state.", **COMMON)
def attestations(query: BoardQuery):
    p, _ = _who()
    return jsonify(att.board(p.org.id, state=query.state, owner_id=query.owner))


@api_route(bp, f"{BASE}/attestations", methods=("POST",), body=AttestationAssignIn, response=AttestationOut,
           status=201, min_role="admin",
           summary="Assign a control to an owner with a due date (owner/admin). Unknown control tag or a due date not "
                   "in the next two years: 400; owner not in the org: 404; owner with viewer role or a control that "
                   "already has an attestation: 409.", **COMMON)
def assign_attestation(body: AttestationAssignIn):
    p, _ = _who()
    row = att.assign(p.org.id, control=body.control, owner_id=body.owner_id, due_at=body.due_at, actor=p.actor)
    return jsonify(att.attestation_json(row, utcnow())), 201


@api_route(bp, f"{BASE}/attestations/<int:attestation_id>", methods=("GET",), response=AttestationOut,
           tenant_model=Attestation, summary="One attestation.", **COMMON)
def get_attestation(attestation_id: int):
    p, _ = _who()
    return jsonify(att.attestation_json(att.get_attestation(p.org.id, attestation_id), utcnow()))


@api_route(bp, f"{BASE}/attestations/<int:attestation_id>/attest", methods=("POST",), body=AttestationAttestIn,
           response=AttestationOut, tenant_model=Attestation,
           summary="Attest that the control operates, with a note and evidence (audit event ids of this org or https "
                   "links). Only the owner or an owner/admin (else 403). Valid for min(the control's freshness SLA, "
                   "365) days. An evidence audit event not in this org: 404.", **COMMON)
def attest_attestation(attestation_id: int, body: AttestationAttestIn):
    p, user_id = _who()
    row = att.attest(p.org.id, attestation_id, user_id=user_id, note=body.note,
                     evidence=body.model_dump()["evidence"], actor=p.actor)
    return jsonify(att.attestation_json(row, utcnow()))


@api_route(bp, f"{BASE}/attestations/<int:attestation_id>/reject", methods=("POST",), body=AttestationRejectIn,
           response=AttestationOut, tenant_model=Attestation, min_role="admin",
           summary="Reject an attested statement with a reason (owner/admin); it stops counting and the owner attests "
                   "again. Rejecting one that is not attested: 409.", **COMMON)
def reject_attestation(attestation_id: int, body: AttestationRejectIn):
    p, user_id = _who()
    row = att.reject(p.org.id, attestation_id, user_id=user_id, note=body.note, actor=p.actor)
    return jsonify(att.attestation_json(row, utcnow()))


# --- exceptions -----------------------------------------------------------------------------------

@api_route(bp, f"{BASE}/exceptions", methods=("GET",), response=ExceptionRegisterOut,
           summary="Control exceptions with their derived state (open, expired, closed).", **COMMON)
def exceptions():
    p, _ = _who()
    return jsonify(att.list_exceptions(p.org.id))


@api_route(bp, f"{BASE}/exceptions", methods=("POST",), body=ControlExceptionIn, response=ControlExceptionOut,
           status=201, min_role="admin",
           summary="Open an approved exception to a control until a date at most a year ahead (owner/admin). Unknown "
                   "control tag or expiry not in the coming year: 400; approver not in the org: 404; approver "
                   "below admin: 409.", **COMMON)
def open_exception(body: ControlExceptionIn):
    p, user_id = _who()
    row = att.open_exception(p.org.id, control=body.control, reason=body.reason,
                             compensating_control=body.compensating_control, approver_id=body.approver_id,
                             expires_at=body.expires_at, user_id=user_id, actor=p.actor)
    return jsonify(att.exception_json(row, utcnow())), 201


@api_route(bp, f"{BASE}/exceptions/<int:exception_id>/close", methods=("POST",), response=ControlExceptionOut,
           tenant_model=ControlException, min_role="admin",
           summary="Close an exception (owner/admin); closing a closed one is 409.", **COMMON)
def close_exception(exception_id: int):
    p, user_id = _who()
    row = att.close_exception(p.org.id, exception_id, user_id=user_id, actor=p.actor)
    return jsonify(att.exception_json(row, utcnow()))


# --- policies -------------------------------------------------------------------------------------

@api_route(bp, f"{BASE}/policies", methods=("GET",), response=PolicyRegisterOut,
           summary="Policies with status, control tags and covered automation actions.", **COMMON)
def policies():
    p, _ = _who()
    return jsonify(att.list_policies(p.org.id))


@api_route(bp, f"{BASE}/policies", methods=("POST",), body=PolicyCreateIn, response=PolicyOut, status=201,
           summary="Create a draft policy (member or above). A name already used in the org: 409.", **COMMON)
def create_policy(body: PolicyCreateIn):
    p, _ = _who()
    row = att.create_policy(p.org.id, name=body.name, description=body.description, control_tags=body.control_tags,
                            actions=body.actions, actor=p.actor)
    return jsonify(att.policy_json(row)), 201


@api_route(bp, f"{BASE}/policies/<int:policy_id>", methods=("PATCH",), body=PolicyPatchIn, response=PolicyOut,
           tenant_model=Policy,
           summary="Edit a draft policy's fields given (member or above); a policy in review, accepted or retired: "
                   "409.", **COMMON)
def patch_policy(policy_id: int, body: PolicyPatchIn):
    p, _ = _who()
    row = att.update_policy(p.org.id, policy_id, body.model_dump(include=body.model_fields_set), actor=p.actor)
    return jsonify(att.policy_json(row))


@api_route(bp, f"{BASE}/policies/<int:policy_id>/transition", methods=("POST",), body=PolicyTransitionIn,
           response=PolicyOut, tenant_model=Policy,
           summary="Move a policy: draft → review → accepted → retired, or review → draft (409 otherwise, with the "
                   "reason). Accepting (needs a control tag) and retiring are for owners/admins (403).", **COMMON)
def transition_policy(policy_id: int, body: PolicyTransitionIn):
    p, user_id = _who()
    row = att.transition_policy(p.org.id, policy_id, body.to, user_id=user_id, actor=p.actor)
    return jsonify(att.policy_json(row))


# --- vendors --------------------------------------------------------------------------------------

@api_route(bp, VENDORS, methods=("GET",), response=VendorRegisterOut, endpoint="vendors",
           summary="Third-party risk register: vendors with inherited controls, report status, next review, BAA/DPA "
                   "flags and reused audit evidence counts.", **COMMON)
def vendors_register():
    p, _ = _who()
    return jsonify(vendors.register(p.org.id))


@api_route(bp, VENDORS, methods=("POST",), body=VendorIn, response=VendorOut, status=201, min_role="admin",
           endpoint="add_vendor",
           summary="Add a vendor (owner/admin); it inherits SOC 2 / ISO 27001 controls from its category and report "
                   "type by the rules in vendor_rules.json, and its risk tier sets the review cadence. A name already "
                   "used: 409; a report without an expiry date (or an expiry without a report): 400.", **COMMON)
def add_vendor(body: VendorIn):
    p, _ = _who()
    row = vendors.add(p.org.id, actor=p.actor, **body.model_dump())
    return jsonify(vendors.vendor_json(row, utcnow())), 201


@api_route(bp, f"{VENDORS}/<int:vendor_id>", methods=("GET",), response=VendorOut, tenant_model=Vendor,
           summary="One vendor.", **COMMON)
def get_vendor(vendor_id: int):
    p, _ = _who()
    return jsonify(vendors.vendor_json(vendors.get_vendor(p.org.id, vendor_id), utcnow()))


@api_route(bp, f"{VENDORS}/<int:vendor_id>", methods=("PATCH",), body=VendorPatchIn, response=VendorOut,
           tenant_model=Vendor, min_role="admin",
           summary="Change the fields given (owner/admin); inherited controls and next review are recomputed.",
           **COMMON)
def patch_vendor(vendor_id: int, body: VendorPatchIn):
    p, _ = _who()
    row = vendors.update(p.org.id, vendor_id, body.model_dump(include=body.model_fields_set), actor=p.actor)
    return jsonify(vendors.vendor_json(row, utcnow()))


@api_route(bp, f"{VENDORS}/<int:vendor_id>/review", methods=("POST",), body=VendorReviewIn, response=VendorOut,
           tenant_model=Vendor, min_role="admin",
           summary="Record a vendor review now (owner/admin): next review = now + the tier's cadence.", **COMMON)
def review_vendor(vendor_id: int, body: VendorReviewIn):
    p, _ = _who()
    row = vendors.record_review(p.org.id, vendor_id, note=body.note, actor=p.actor)
    return jsonify(vendors.vendor_json(row, utcnow()))
