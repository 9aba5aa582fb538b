"""Deployment profile (tier, data region, boundary), the retention policy it implies, and legal holds.

The profile lives in ``OrgGovernance`` (one row per org; defaults when there is none). A tier names the
regulatory regime the org runs under; it sets the default retention of audit rows and closed incidents,
the minimum any override may go down to (with the rule that sets it), and, for FedRAMP Moderate, the
data region. The org row's ``data_region`` and ``boundary`` (shown on the overview page) mirror the
profile's region and tier.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import String, cast, func, select

from zentro.accounts.models import Org
from zentro.audit.models import AuditEvent, OrgGovernance
from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso

REGIONS: dict[str, str] = {
    "us": "United States", "eu": "European Union", "uk": "United Kingdom", "ca": "Canada", "au": "Australia",
}
RETENTION_MIN_DAYS, RETENTION_MAX_DAYS = 30, 3650
PROFILE_TAGS = ("SOC2:CC8.1", "ISO27001:A.5.33")
RETENTION_TAGS = ("SOC2:CC6.5", "ISO27001:A.8.10")


@dataclass(frozen=True)
class Floor:
    days: int
    basis: str  # the rule that sets it


@dataclass(frozen=True)
class Tier:
    key: str
    label: str
    audit_default: int
    incident_default: int
    audit_min: Floor
    incident_min: Floor
    required_region: str | None
    boundary: str
    implications: tuple[str, ...]


_NO_RULE = "no regulatory minimum; the bound of the setting"
TIERS: dict[str, Tier] = {t.key: t for t in (
    Tier("commercial", "Commercial", 365, 365,
         Floor(RETENTION_MIN_DAYS, _NO_RULE), Floor(RETENTION_MIN_DAYS, _NO_RULE), None,
         "Multi-tenant commercial deployment; no regulated data is in scope of the authorization boundary.",
         ("Any data region.", "Retention may be set anywhere from 30 days to 10 years.")),
    Tier("hipaa", "HIPAA", 2190, 2190,
         Floor(2190, "HIPAA 45 CFR 164.316(b)(2)(i): security documentation, audit records included, is kept 6 years"),
         Floor(2190, "HIPAA 45 CFR 164.308(a)(6)(ii) with 164.316(b)(2)(i): security-incident records are kept 6 years"),
         None,
         "Deployment handling electronic protected health information (ePHI); a BAA covers Zentro and every "
         "vendor that touches ePHI.",
         ("Audit rows and closed incidents are kept at least 6 years (2190 days).",
          "Vendors that handle PHI need a business associate agreement (BAA).")),
    Tier("pci", "PCI DSS", 365, 365,
         Floor(365, "PCI DSS v4.0 requirement 10.5.1: audit log history is kept at least 12 months"),
         Floor(RETENTION_MIN_DAYS, _NO_RULE), None,
         "Deployment connected to the cardholder data environment (CDE); Zentro itself stores no account data.",
         ("Audit rows are kept at least 12 months (365 days), the latest 3 months immediately available.",)),
    Tier("fedramp-moderate", "FedRAMP Moderate", 1095, 1095,
         Floor(1095, "FedRAMP Moderate AU-11 (with OMB M-21-31): audit records are kept 3 years under Zentro's policy"),
         Floor(1095, "FedRAMP Moderate IR-5/IR-6: incident records are kept with the audit trail, 3 years"),
         "us",
         "FedRAMP Moderate authorization boundary: US data region only, US-person operations, FIPS 140-validated "
         "cryptography, and every interconnection listed in the system security plan.",
         ("The data region must be the United States (us).",
          "Audit rows and closed incidents are kept at least 3 years (1095 days).")),
)}


def governance_row(org_id: int) -> OrgGovernance | None:
    return db.session.get(OrgGovernance, org_id)


@dataclass(frozen=True)
class Profile:
    org_id: int
    tier: Tier
    data_region: str
    boundary: str
    audit_retention_days: int | None
    incident_retention_days: int | None
    configured: bool
    updated_at: dt.datetime | None


def get_profile(org_id: int) -> Profile:
    org = db.session.get(Org, org_id)
    if org is None:
        raise not_found("Organisation")
    row = governance_row(org_id)
    if row is None:  # defaults: the org row's mirror if it names a known tier/region
        tier = TIERS.get(org.boundary, TIERS["commercial"])
        region = org.data_region if org.data_region in REGIONS else (tier.required_region or "us")
        return Profile(org_id, tier, region, "", None, None, False, None)
    return Profile(org_id, TIERS.get(row.deployment_tier, TIERS["commercial"]),
                   row.data_region if row.data_region in REGIONS else "us", row.boundary,
                   row.audit_retention_days, row.incident_retention_days, True, row.updated_at)


def tier_json(tier: Tier) -> dict:
    return {
        "tier": tier.key, "label": tier.label,
        "required_region": tier.required_region,
        "allowed_regions": [tier.required_region] if tier.required_region else list(REGIONS),
        "boundary_description": tier.boundary,
        "retention_defaults": {"audit_retention_days": tier.audit_default, "incident_retention_days": tier.incident_default},
        "retention_minimums": {"audit_retention_days": {"days": tier.audit_min.days, "basis": tier.audit_min.basis},
                               "incident_retention_days": {"days": tier.incident_min.days, "basis": tier.incident_min.basis}},
        "notes": list(tier.implications),
    }


def profile_json(p: Profile) -> dict:
    return {
        "org_id": p.org_id, "configured": p.configured,
        "tier": p.tier.key, "tier_label": p.tier.label,
        "data_region": p.data_region, "data_region_label": REGIONS[p.data_region],
        "boundary": p.boundary or p.tier.boundary,
        "audit_retention_days": p.audit_retention_days, "incident_retention_days": p.incident_retention_days,
        "implies": tier_json(p.tier),
        "updated_at": iso(p.updated_at),
    }


PROFILE_FIELDS = ("deployment_tier", "data_region", "boundary", "audit_retention_days", "incident_retention_days")


def check_profile(tier_key: str, region: str, audit_days: int | None, incident_days: int | None) -> None:
    """Raise a 400 saying why, when the combination breaks a tier rule."""
    tier = TIERS[tier_key]
    if tier.required_region and region != tier.required_region:
        raise ApiError(400, f"{tier.label} requires the {REGIONS[tier.required_region]} data region "
                            f"({tier.required_region}); {region} is not allowed.")
    for what, days, floor in (("audit_retention_days", audit_days, tier.audit_min),
                              ("incident_retention_days", incident_days, tier.incident_min)):
        if days is not None and days < floor.days:
            raise ApiError(400, f"{what} {days} is below the {tier.label} minimum of {floor.days} days "
                                f"({floor.basis}). Raise it, or clear it to use the tier default.")


def update_profile(org_id: int, changes: dict, actor: Actor) -> Profile:
    """Apply the given fields (keys of PROFILE_FIELDS; tier/region already valid enums), check the tier's
    rules on the result, record the change, commit. Nothing changes on a refusal."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ApiError(400, f"Unknown profile field(s): {', '.join(sorted(unknown))}")
    current = get_profile(org_id)
    before = {"deployment_tier": current.tier.key, "data_region": current.data_region, "boundary": current.boundary,
              "audit_retention_days": current.audit_retention_days,
              "incident_retention_days": current.incident_retention_days}
    after = {**before, **changes}
    check_profile(after["deployment_tier"], after["data_region"], after["audit_retention_days"],
                  after["incident_retention_days"])
    diff = {k: {"from": before[k], "to": after[k]} for k in PROFILE_FIELDS if before[k] != after[k]}
    row = governance_row(org_id)
    if not diff and row is not None:
        return current
    if row is None:
        row = OrgGovernance(org_id=org_id)
        db.session.add(row)
    for k in PROFILE_FIELDS:
        setattr(row, k, after[k])
    org = db.session.get(Org, org_id)
    org.data_region, org.boundary = after["data_region"], after["deployment_tier"]
    tags = set(PROFILE_TAGS)
    if {"audit_retention_days", "incident_retention_days", "deployment_tier"} & set(diff):
        tags |= set(RETENTION_TAGS)
    record(org_id, "deployment.profile_updated", actor, target_type="org", target_id=org_id,
           control_tags=tags, data={"changes": diff})
    db.session.commit()
    return get_profile(org_id)


# --- retention policy ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetentionRule:
    days: int
    source: str  # override | tier_default
    tier_default: int
    minimum: Floor
    why: str

    def as_json(self) -> dict:
        return {"days": self.days, "source": self.source, "tier_default": self.tier_default,
                "minimum_days": self.minimum.days, "minimum_basis": self.minimum.basis, "why": self.why}


@dataclass(frozen=True)
class RetentionPolicy:
    tier: Tier
    audit: RetentionRule
    incidents: RetentionRule


def _rule(what: str, override: int | None, default: int, floor: Floor, tier: Tier) -> RetentionRule:
    if override is not None:
        return RetentionRule(override, "override", default, floor,
                             f"The org's override of {override} days applies ({tier.label} default {default}, "
                             f"minimum {floor.days}).")
    return RetentionRule(default, "tier_default", default, floor,
                         f"No override: the {tier.label} default of {default} days for {what} applies.")


def effective_policy(org_id: int) -> RetentionPolicy:
    p = get_profile(org_id)
    t = p.tier
    return RetentionPolicy(t, _rule("audit rows", p.audit_retention_days, t.audit_default, t.audit_min, t),
                           _rule("closed incidents", p.incident_retention_days, t.incident_default, t.incident_min, t))


# --- legal holds -----------------------------------------------------------------------------------------

def held_audit_filter(org_id: int):
    """SQL condition: the audit row's target is an incident of this org under legal hold."""
    return (AuditEvent.target_type == "incident") & AuditEvent.target_id.in_(
        select(cast(Incident.id, String)).where(Incident.org_id == org_id, Incident.legal_hold.is_(True)))


def flagged_audit_count(org_id: int) -> int:
    """Audit rows whose target is a held incident: one SQL count."""
    return db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.org_id == org_id, held_audit_filter(org_id))) or 0


def legal_holds(org_id: int) -> dict:
    incidents = db.session.execute(
        select(Incident.id, Incident.number, Incident.title, Incident.status, Incident.severity, Incident.closed_at)
        .where(Incident.org_id == org_id, Incident.legal_hold.is_(True)).order_by(Incident.id.desc())).all()
    since: dict[str, dt.datetime] = {}
    if incidents:
        since = dict(db.session.execute(
            select(AuditEvent.target_id, func.max(AuditEvent.created_at))
            .where(AuditEvent.org_id == org_id, AuditEvent.action == "incident.legal_hold_set",
                   held_audit_filter(org_id))
            .group_by(AuditEvent.target_id)).all())
    items = []
    for r in incidents:
        items.append({"id": r.id, "ref": f"INC-{r.number}", "title": r.title, "status": r.status,
                      "severity": r.severity, "closed_at": iso(r.closed_at),
                      "since": iso(_as_datetime(since.get(str(r.id))))})
    return {"incidents": items, "held_incidents": len(items), "flagged_audit_events": flagged_audit_count(org_id)}


def _as_datetime(value) -> dt.datetime | None:
    """An aggregate over a datetime column, as an aware UTC datetime whatever the driver returned."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
