"""The third-party risk register: vendors, the controls they let us inherit, report expiry, review
cadence and BAA/DPA flags.

Inheritance rules are data (``vendor_rules.json``, loaded and schema-checked here, every tag checked
against the catalog): a vendor inherits the controls its *category* lists under each scope
(physical / hosting / service) that its *report type* unlocks (SOC 2 Type II: all three; ISO 27001
certificate: physical and hosting; SOC 2 Type I or no report: nothing). The *risk tier* sets the
review cadence (critical 90 d, high 180 d, medium 365 d, low 730 d):
``next_review_at = (last_review_at, else the moment the vendor was added) + cadence``.

Report status at ``now``: none (no report type or no expiry date), expired (expiry <= now),
expiring (within 30 days), valid. Inherited controls count as evidence only while the report is
valid or expiring (the evidence engine checks ``report_expires_at``).

Reused evidence count: the org's audit events tagged with any of the vendor's inherited controls in
the last 90 days, each event counted once per vendor: ONE aggregate query over audit_tags for the
whole register (a ``count(DISTINCT CASE WHEN tag IN (...) THEN event_id END)`` column per vendor).

Audit tags: SOC2:CC9.2 / ISO27001:A.5.19 on every change; a review adds ISO27001:A.5.22.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, ValidationError
from sqlalchemy import case, distinct, func, literal, select

from zentro.accounts.models import Role, User
from zentro.audit.models import AuditTag
from zentro.audit.service import Actor, lock_org, record
from zentro.compliance.attestations import (_NAME, EVIDENCE_WINDOW, Id, Text, UtcDatetime, _commit, _users, bad_input,
                                            check_member, flush_or_conflict, user_json, validated)
from zentro.compliance.catalog import Catalog, load_catalog
from zentro.compliance.models import VENDOR_TIERS, Vendor
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow

RULES_FILE = Path(__file__).resolve().with_name("vendor_rules.json")
CATEGORIES = ("cloud-infrastructure", "saas-productivity", "payment-processor", "identity-provider", "monitoring",
              "communications", "data-processor", "professional-services")
REPORT_TYPES = ("soc2-type-ii", "iso27001", "soc2-type-i", "none")
SCOPES = ("physical", "hosting", "service")
VENDOR_TAGS = ("SOC2:CC9.2", "ISO27001:A.5.19")
REVIEW_TAGS = (*VENDOR_TAGS, "ISO27001:A.5.22")
EXPIRING_WINDOW = dt.timedelta(days=30)
MAX_REPORT_AHEAD = dt.timedelta(days=5 * 365)
REPORT_STATUSES = ("valid", "expiring", "expired", "none")
VENDORS_PER_QUERY = 200  # one CASE column per vendor; wider registers take one more query per 200 vendors

Category = Literal["cloud-infrastructure", "saas-productivity", "payment-processor", "identity-provider", "monitoring",
                   "communications", "data-processor", "professional-services"]
RiskTier = Literal["critical", "high", "medium", "low"]
ReportType = Literal["soc2-type-ii", "iso27001", "soc2-type-i", "none"]
assert VENDOR_TIERS == ("critical", "high", "medium", "low")

VendorName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NAME)]
Website = Annotated[str, StringConstraints(max_length=300, pattern=(
    r"^(?:https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][!-~]*)?)?$"))]

VENDOR_HELP = {
    "name": "Name: 1–200 characters, not starting or ending with a space.",
    "category": "Category: one of " + ", ".join(CATEGORIES) + ".",
    "risk_tier": "Risk tier: critical, high, medium or low.",
    "owner_id": "Owner: a member of this organisation (member role or above), or none.",
    "website": "Website: an http:// or https:// address (or empty), at most 300 characters.",
    "report_type": "Report: " + ", ".join(REPORT_TYPES) + ".",
    "report_expires_at": "Report expiry: a date, required with a report (not with none), at most five years ahead.",
    "notes": "Notes: at most 4000 characters.",
    "note": "Note: at most 4000 characters.",
    **{f: f"{f.replace('_', ' ').capitalize()}: true or false." for f in ("baa", "dpa", "handles_phi",
                                                                         "handles_personal_data")},
}


# --- rules ----------------------------------------------------------------------------------------

class RulesError(ValueError):
    """vendor_rules.json is missing, malformed, or names something the catalog does not have."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ReportRule(_Strict):
    label: str = Field(min_length=1)
    unlocks: tuple[Literal["physical", "hosting", "service"], ...]


class _TierRule(_Strict):
    label: str = Field(min_length=1)
    review_days: int = Field(gt=0, le=3650)


class _ScopeControls(_Strict):
    physical: tuple[str, ...]
    hosting: tuple[str, ...]
    service: tuple[str, ...]


class _CategoryRule(_Strict):
    label: str = Field(min_length=1)
    controls: _ScopeControls


class _RulesDoc(_Strict):
    about: tuple[str, ...] = Field(min_length=1)
    version: int = Field(ge=1)
    report_types: dict[str, _ReportRule]
    risk_tiers: dict[str, _TierRule]
    categories: dict[str, _CategoryRule]


@dataclass(frozen=True)
class Rules:
    version: int
    report_types: dict[str, _ReportRule]
    risk_tiers: dict[str, _TierRule]
    categories: dict[str, _CategoryRule]

    def inherited(self, category: str, report_type: str) -> list[str]:
        """The tags a vendor of ``category`` with a ``report_type`` report inherits, in file order."""
        unlocked = self.report_types[report_type].unlocks
        controls = self.categories[category].controls
        return list(dict.fromkeys(tag for scope in SCOPES if scope in unlocked for tag in getattr(controls, scope)))

    def review_days(self, tier: str) -> int:
        return self.risk_tiers[tier].review_days

    def category_label(self, category: str) -> str:
        rule = self.categories.get(category)
        return rule.label if rule else category

    def report_label(self, report_type: str) -> str:
        rule = self.report_types.get(report_type or "none")
        return rule.label if rule else report_type


def read_rules(path: str | Path | None = None, catalog: Catalog | None = None) -> Rules:
    """Read and check the rules: exactly the known categories, tiers and report types, and every tag
    in the catalog. Any defect raises RulesError naming the item."""
    path = Path(path) if path is not None else RULES_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"{path.name}: missing") from None
    except (OSError, ValueError) as exc:
        raise RulesError(f"{path.name}: cannot be read as JSON ({exc})") from None
    try:
        parsed = _RulesDoc.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RulesError(f"{path.name}: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from None
    for section, expected in (("categories", CATEGORIES), ("risk_tiers", VENDOR_TIERS), ("report_types", REPORT_TYPES)):
        got = tuple(getattr(parsed, section))
        if set(got) != set(expected):
            missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            raise RulesError(f"{path.name}: {section} must be exactly {', '.join(expected)}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unexpected {', '.join(extra)}" if extra else ""))
    catalog = catalog or load_catalog()
    for name, rule in parsed.categories.items():
        for scope in SCOPES:
            tags = getattr(rule.controls, scope)
            if len(set(tags)) != len(tags):
                raise RulesError(f"{path.name}: categories.{name}.controls.{scope} lists a tag twice")
            unknown = catalog.unknown_tags(tags)
            if unknown:
                raise RulesError(f"{path.name}: categories.{name}.controls.{scope}: unknown control tag(s) "
                                 + ", ".join(unknown))
    return Rules(parsed.version, dict(parsed.report_types), dict(parsed.risk_tiers), dict(parsed.categories))


@functools.cache
def load_rules() -> Rules:
    return read_rules()


# --- input ----------------------------------------------------------------------------------------

class VendorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: VendorName = Field(description="Unique in the org, case-insensitively (a clash is 409).")
    category: Category = Field(description="Decides which controls can be inherited (vendor_rules.json).")
    risk_tier: RiskTier = Field(description="Review cadence: critical 90 d, high 180 d, medium 365 d, low 730 d.")
    owner_id: Id | None = Field(None, description="A member of the org (else 404) with member role or above (a viewer: "
                                                  "409).")
    website: Website = ""
    report_type: ReportType = Field("none", description=(
        "soc2-type-ii unlocks physical, hosting and service controls; iso27001 physical and hosting; soc2-type-i "
        "and none nothing."))
    report_expires_at: UtcDatetime | None = Field(None, description=(
        "Required with a report, absent with none (else 400); at most five years ahead."))
    baa: StrictBool = Field(False, description="A HIPAA business associate agreement is signed.")
    dpa: StrictBool = Field(False, description="A data processing agreement is signed.")
    handles_phi: StrictBool = False
    handles_personal_data: StrictBool = False
    notes: Text = ""


class VendorPatchIn(BaseModel):
    """Only the fields present change; the inherited controls and next review are recomputed."""

    model_config = ConfigDict(extra="forbid")
    name: VendorName = None
    category: Category = None
    risk_tier: RiskTier = None
    owner_id: Id | None = None
    website: Website = None
    report_type: ReportType = None
    report_expires_at: UtcDatetime | None = None
    baa: StrictBool = None
    dpa: StrictBool = None
    handles_phi: StrictBool = None
    handles_personal_data: StrictBool = None
    notes: Text = None


class VendorReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text = Field("", description="What the review found (kept in the audit log).")


FIELDS = tuple(VendorIn.model_fields)
NOT_NULL = tuple(f for f in FIELDS if f not in ("owner_id", "report_expires_at"))


def _vendor_values(vendor: Vendor) -> dict:
    return {f: getattr(vendor, f) for f in FIELDS}


def _check(org_id: int, data: VendorIn, now: dt.datetime) -> None:
    if data.owner_id is not None:
        check_member(org_id, data.owner_id, "owner_id", Role.member, "Owner")
    if data.report_type != "none" and data.report_expires_at is None:
        raise bad_input(f"Report expiry: required with a {data.report_type} report.", "report_expires_at")
    if data.report_type == "none" and data.report_expires_at is not None:
        raise bad_input("Report expiry: leave it empty when there is no report.", "report_expires_at")
    if data.report_expires_at is not None and data.report_expires_at > now + MAX_REPORT_AHEAD:
        raise bad_input("Report expiry: at most five years ahead.", "report_expires_at")


def _name_taken(org_id: int, name: str, exclude_id: int | None = None) -> bool:
    q = select(Vendor.id).where(Vendor.org_id == org_id, func.lower(Vendor.name) == func.lower(literal(name)))
    if exclude_id is not None:
        q = q.where(Vendor.id != exclude_id)
    return db.session.scalar(q.limit(1)) is not None


def _conflict(name: str) -> ApiError:
    return ApiError(409, f"A vendor named {name!r} already exists in this organisation.")


def _apply(vendor: Vendor, data: VendorIn) -> None:
    rules = load_rules()
    for f in FIELDS:
        value = getattr(data, f)
        if f == "report_expires_at" and value is not None:
            value = value.astimezone(dt.timezone.utc)
        setattr(vendor, f, value)
    vendor.inherited_controls = rules.inherited(data.category, data.report_type)
    base = vendor.last_review_at or vendor.created_at
    vendor.next_review_at = base + dt.timedelta(days=rules.review_days(data.risk_tier))


def get_vendor(org_id: int, vendor_id: int) -> Vendor:
    vendor = db.session.scalar(select(Vendor).where(Vendor.org_id == org_id, Vendor.id == vendor_id))
    if vendor is None:
        raise not_found("Vendor")
    return vendor


def _audit_values(values: dict) -> dict:
    return {k: iso(v) if isinstance(v, dt.datetime) else v for k, v in values.items()}


def add(org_id: int, *, actor: Actor, now: dt.datetime | None = None, **fields) -> Vendor:
    """Add a vendor (fields as VendorIn); inherited controls and next review come from the rules."""
    now = now or utcnow()
    data = validated(VendorIn, fields, VENDOR_HELP)
    _check(org_id, data, now)
    lock_org(org_id)
    if _name_taken(org_id, data.name):
        raise _conflict(data.name)
    vendor = Vendor(org_id=org_id, created_at=now)
    _apply(vendor, data)
    db.session.add(vendor)
    flush_or_conflict(_conflict(data.name))
    record(org_id, "vendor.added", actor, target_type="vendor", target_id=vendor.id, control_tags=VENDOR_TAGS, now=now,
           data={**_audit_values(_vendor_values(vendor)), "inherited_controls": vendor.inherited_controls,
                 "next_review_at": iso(vendor.next_review_at)})
    _commit(_conflict(data.name))
    return vendor


def update(org_id: int, vendor_id: int, changes: dict, *, actor: Actor, now: dt.datetime | None = None) -> Vendor:
    """Change the fields given (VendorPatchIn), recompute inherited controls and next review; a no-op
    records nothing."""
    now = now or utcnow()
    vendor = get_vendor(org_id, vendor_id)
    patch = validated(VendorPatchIn, changes, VENDOR_HELP)
    given = {k: getattr(patch, k) for k in patch.model_fields_set}
    nulls = [k for k in given if k in NOT_NULL and given[k] is None]
    if nulls:
        raise bad_input(f"{nulls[0]}: may not be null.", nulls[0])
    current = _vendor_values(vendor)
    merged = {**current, **given}
    if given.get("report_type") == "none" and "report_expires_at" not in given:
        merged["report_expires_at"] = None  # dropping the report drops its expiry
    data = validated(VendorIn, merged, VENDOR_HELP)
    _check(org_id, data, now)
    new = data.model_dump()
    if new.get("report_expires_at") is not None:
        new["report_expires_at"] = new["report_expires_at"].astimezone(dt.timezone.utc)
    changed = {k: v for k, v in new.items() if current[k] != v}
    if not changed:
        return vendor
    if "name" in changed:
        lock_org(org_id)
        if _name_taken(org_id, data.name, exclude_id=vendor.id):
            raise _conflict(data.name)
    before_inherited = list(vendor.inherited_controls or [])
    _apply(vendor, data)
    flush_or_conflict(_conflict(data.name))
    record(org_id, "vendor.updated", actor, target_type="vendor", target_id=vendor.id, control_tags=VENDOR_TAGS,
           now=now, data={"name": vendor.name, "from": _audit_values({k: current[k] for k in changed}),
                          "to": _audit_values(changed), "inherited_before": before_inherited,
                          "inherited_after": vendor.inherited_controls, "next_review_at": iso(vendor.next_review_at)})
    _commit(_conflict(data.name))
    return vendor


def record_review(org_id: int, vendor_id: int, *, actor: Actor, note: str = "",
                  now: dt.datetime | None = None) -> Vendor:
    now = now or utcnow()
    vendor = get_vendor(org_id, vendor_id)
    data = validated(VendorReviewIn, {"note": note}, VENDOR_HELP)
    previous = vendor.next_review_at
    vendor.last_review_at = now
    vendor.next_review_at = now + dt.timedelta(days=load_rules().review_days(vendor.risk_tier))
    record(org_id, "vendor.reviewed", actor, target_type="vendor", target_id=vendor.id, control_tags=REVIEW_TAGS,
           now=now, data={"name": vendor.name, "note": data.note, "was_due": iso(previous),
                          "overdue": bool(previous and previous <= now), "next_review_at": iso(vendor.next_review_at)})
    _commit()
    return vendor


# --- the register ---------------------------------------------------------------------------------

def report_status(vendor: Vendor, now: dt.datetime) -> str:
    if (vendor.report_type or "none") == "none" or vendor.report_expires_at is None:
        return "none"
    if vendor.report_expires_at <= now:
        return "expired"
    if vendor.report_expires_at <= now + EXPIRING_WINDOW:
        return "expiring"
    return "valid"


def reused_evidence_counts(org_id: int, vendors: list[Vendor], now: dt.datetime,
                           window: dt.timedelta = EVIDENCE_WINDOW) -> dict[int, int]:
    """Per vendor: audit events in (now - window, now] tagged with any of its inherited controls,
    each event counted once. One aggregate query (per 200 vendors) over audit_tags."""
    wanted = [(v.id, sorted(set(v.inherited_controls or []))) for v in vendors if v.inherited_controls]
    out = {v.id: 0 for v in vendors}
    for start in range(0, len(wanted), VENDORS_PER_QUERY):
        chunk = wanted[start:start + VENDORS_PER_QUERY]
        all_tags = sorted({t for _, tags in chunk for t in tags})
        columns = [func.count(distinct(case((AuditTag.tag.in_(tags), AuditTag.event_id)))).label(f"v{vid}")
                   for vid, tags in chunk]
        row = db.session.execute(select(*columns).where(
            AuditTag.org_id == org_id, AuditTag.tag.in_(all_tags), AuditTag.created_at > now - window,
            AuditTag.created_at <= now)).one()
        for (vid, _), n in zip(chunk, row):
            out[vid] = int(n or 0)
    return out


_TIER_ORDER = {t: i for i, t in enumerate(VENDOR_TIERS)}


def vendor_json(vendor: Vendor, now: dt.datetime, users: dict[int, User] | None = None,
                reused: int | None = None) -> dict:
    rules = load_rules()
    users = users if users is not None else _users([vendor.owner_id])
    status = report_status(vendor, now)
    catalog = load_catalog()
    inherited = list(vendor.inherited_controls or [])
    return {
        "id": vendor.id, "name": vendor.name, "category": vendor.category,
        "category_label": rules.category_label(vendor.category), "risk_tier": vendor.risk_tier,
        "owner": user_json(users.get(vendor.owner_id)), "website": vendor.website,
        "report_type": vendor.report_type or "none", "report_label": rules.report_label(vendor.report_type),
        "report_expires_at": iso(vendor.report_expires_at), "report_status": status,
        "report_days_left": (vendor.report_expires_at - now).days if status in ("valid", "expiring") else None,
        "inherited_controls": inherited,
        "inherited_detail": [{"tag": t, "title": catalog.control(t).title if catalog.has(t) else ""}
                             for t in inherited],
        "inheritance_active": bool(inherited) and status in ("valid", "expiring"),
        "review_days": rules.review_days(vendor.risk_tier) if vendor.risk_tier in rules.risk_tiers else None,
        "last_review_at": iso(vendor.last_review_at), "next_review_at": iso(vendor.next_review_at),
        "review_overdue": bool(vendor.next_review_at and vendor.next_review_at <= now),
        "baa": vendor.baa, "dpa": vendor.dpa, "handles_phi": vendor.handles_phi,
        "handles_personal_data": vendor.handles_personal_data,
        "baa_missing": vendor.handles_phi and not vendor.baa,
        "dpa_missing": vendor.handles_personal_data and not vendor.dpa,
        "reused_evidence_count": reused if reused is not None
        else reused_evidence_counts(vendor.org_id, [vendor], now)[vendor.id],
        "notes": vendor.notes, "created_at": iso(vendor.created_at),
    }


def register(org_id: int, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    vendors = list(db.session.scalars(select(Vendor).where(Vendor.org_id == org_id)))
    users = _users([v.owner_id for v in vendors])
    reused = reused_evidence_counts(org_id, vendors, now)
    rows = [vendor_json(v, now, users, reused[v.id]) for v in vendors]
    rows.sort(key=lambda r: (_TIER_ORDER.get(r["risk_tier"], 9), r["name"].lower()))
    summary = {
        "total": len(rows),
        "by_tier": {t: sum(1 for r in rows if r["risk_tier"] == t) for t in VENDOR_TIERS},
        "by_report_status": {s: sum(1 for r in rows if r["report_status"] == s) for s in REPORT_STATUSES},
        "reviews_overdue": sum(1 for r in rows if r["review_overdue"]),
        "baa_missing": sum(1 for r in rows if r["baa_missing"]),
        "dpa_missing": sum(1 for r in rows if r["dpa_missing"]),
        "inherited_controls": len({t for r in rows if r["inheritance_active"] for t in r["inherited_controls"]}),
    }
    return {"generated_at": iso(now), "evidence_window_days": EVIDENCE_WINDOW.days,
            "expiring_window_days": EXPIRING_WINDOW.days, "summary": summary, "vendors": rows}
