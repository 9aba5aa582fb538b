"""Governance API: legal holds, the deployment profile (tier, data region, boundary, retention
overrides), the effective retention policy with a dry run of the next purge, and the retention cron."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from zentro.compliance import governance, retention
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route, no_null_defaults
from zentro.platform.types import utcnow

bp = Blueprint("governance", __name__, url_prefix="/api")
TAGS = ("Governance & retention",)
COMMON = {"resource": "governance", "tags": TAGS}
MAX_ID = 2_147_483_647

Tier = Literal[tuple(governance.TIERS)]
Region = Literal[tuple(governance.REGIONS)]


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 else value


RetentionDays = Annotated[int, Field(ge=governance.RETENTION_MIN_DAYS, le=governance.RETENTION_MAX_DAYS),
                          BeforeValidator(_integral)]


class DeploymentProfilePatch(BaseModel):
    """Only the fields sent change. The result must satisfy the tier: FedRAMP Moderate needs the us region,
    and no retention override may go below the tier's regulatory minimum (400 saying which rule)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=no_null_defaults)
    tier: Tier = Field(None, description="commercial, hipaa, pci or fedramp-moderate.")
    data_region: Region = Field(None, description="us, eu, uk, ca or au.")
    boundary: Annotated[str, StringConstraints(max_length=200)] = Field(
        None, description="Authorization boundary description; empty uses the tier's standard text.")
    audit_retention_days: RetentionDays | None = Field(
        None, description="Keep audit rows this many days (30–3650); null uses the tier default.")
    incident_retention_days: RetentionDays | None = Field(
        None, description="Keep closed incidents this many days after closing (30–3650); null uses the tier default.")


class ScheduledRetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    orgId: Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integral)] = Field(description="The org to purge.")
    dryRun: bool = Field(False, description="Only count what would be purged.")


# --- response models ---------------------------------------------------------------------------------------

class HeldIncidentOut(BaseModel):
    id: int
    ref: str
    title: str
    status: str
    severity: str
    closed_at: dt.datetime | None
    since: dt.datetime | None = Field(description="When the hold was last placed (its incident.legal_hold_set event).")


class LegalHoldsOut(BaseModel):
    incidents: list[HeldIncidentOut]
    held_incidents: int
    flagged_audit_events: int = Field(description="Audit rows whose target is a held incident (kept by every purge).")


class RetentionFloorOut(BaseModel):
    days: int
    basis: str


class DeploymentTierOut(BaseModel):
    tier: Tier
    label: str
    required_region: Region | None
    allowed_regions: list[Region]
    boundary_description: str
    retention_defaults: dict[str, int]
    retention_minimums: dict[str, RetentionFloorOut]
    notes: list[str]


class DeploymentProfileOut(BaseModel):
    org_id: int
    configured: bool = Field(description="False while the org runs on the defaults (no profile saved).")
    tier: Tier
    tier_label: str
    data_region: Region
    data_region_label: str
    boundary: str
    audit_retention_days: int | None
    incident_retention_days: int | None
    implies: DeploymentTierOut
    updated_at: dt.datetime | None


class RetentionRuleOut(BaseModel):
    days: int
    source: Literal["override", "tier_default"]
    tier_default: int
    minimum_days: int
    minimum_basis: str
    why: str


class LegalHoldKeptOut(BaseModel):
    audit_events: int
    incidents: int
    held_incidents: int


class PurgeCheckpointOut(BaseModel):
    id: int
    from_seq: int
    to_seq: int
    last_hash: str
    purged_events: int


class RetentionPurgeOut(BaseModel):
    org_id: int
    dry_run: bool
    now: dt.datetime
    audit_retention_days: int
    incident_retention_days: int
    audit_cutoff: dt.datetime
    incident_cutoff: dt.datetime
    audit_events: int = Field(description="Audit rows purged (dry run: that would be).")
    incidents: int = Field(description="Closed incidents purged (dry run: that would be).")
    kept_for_legal_hold: LegalHoldKeptOut
    checkpoints: list[PurgeCheckpointOut]
    audit_event_id: int | None


class RetentionPolicyOut(BaseModel):
    tier: Tier
    tier_label: str
    audit: RetentionRuleOut
    incidents: RetentionRuleOut
    next_purge: RetentionPurgeOut


def retention_json(org_id: int, now: dt.datetime | None = None) -> dict:
    policy = governance.effective_policy(org_id)
    return {"tier": policy.tier.key, "tier_label": policy.tier.label, "audit": policy.audit.as_json(),
            "incidents": policy.incidents.as_json(), "next_purge": retention.preview(org_id, now or utcnow()).as_json()}


@api_route(bp, "/governance/legal-holds", methods=("GET",), response=LegalHoldsOut,
           summary="Incidents under legal hold (since when) and how many audit rows the holds keep from purges.",
           **COMMON)
def legal_holds():
    return jsonify(governance.legal_holds(current_principal().org.id))


@api_route(bp, "/deployment/profile", methods=("GET",), response=DeploymentProfileOut,
           summary="The org's deployment tier, data region and boundary, and what the tier implies (required region, "
                   "retention defaults and minimums).", **COMMON)
def deployment_profile():
    return jsonify(governance.profile_json(governance.get_profile(current_principal().org.id)))


@api_route(bp, "/deployment/profile", methods=("PATCH",), body=DeploymentProfilePatch, response=DeploymentProfileOut, min_role="admin",
           summary="Change the deployment profile (owner/admin). Refused (400, naming the rule) when the region or a "
                   "retention override breaks the tier.", **COMMON)
def update_deployment_profile(body: DeploymentProfilePatch):
    p = current_principal()
    sent = body.model_dump(include=body.model_fields_set)
    changes = {("deployment_tier" if k == "tier" else k): v for k, v in sent.items()}
    return jsonify(governance.profile_json(governance.update_profile(p.org.id, changes, p.actor)))


@api_route(bp, "/deployment/retention", methods=("GET",), response=RetentionPolicyOut,
           summary="Effective retention for audit rows and closed incidents (tier default or override, and why) and a "
                   "dry run of the next purge: what it would remove now and what legal holds keep.", **COMMON)
def deployment_retention():
    return jsonify(retention_json(current_principal().org.id))


@api_route(bp, "/deployment/retention/scheduled", methods=("POST",), body=ScheduledRetentionIn, response=RetentionPurgeOut,
           auth=("cron",), cron_secret="ZENTRO_RETENTION_CRON_SECRET", tags=TAGS,
           summary="Cron: run the retention purge for one org (Bearer ZENTRO_RETENTION_CRON_SECRET; unset: 404). "
                   "Unknown org: 404.")
def scheduled_retention(body: ScheduledRetentionIn):
    return jsonify(retention.purge(body.orgId, utcnow(), dry_run=body.dryRun).as_json())
