"""The compliance reports: program views (summary, program, evidence export, crosswalk, evidence freshness,
baseline comparison) and the framework packs (SOC 2 Type II, ISO 27001, PCI DSS, HIPAA, NIST CSF, CIS v8,
CMMC L2, GDPR Art. 32, FedRAMP POA&M), each built from the evidence engine into one ``reporting.Report``.

``PACKS[slug].build(org_id, period_days, now) -> Report`` is what the API, the pages and the assessor workbook
call; ``reporting.render(report, "csv"|"json")`` turns it into bytes. ``PACKS`` holds the nine framework packs
plus ``"crosswalk"`` (``framework_key`` None) so the workbook can include the matrix.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from sqlalchemy import func, select

from zentro.accounts.models import Org, User
from zentro.audit.models import AuditEvent, OrgGovernance
from zentro.compliance import engine
from zentro.compliance.catalog import FRAMEWORK_SLUGS, load_catalog
from zentro.compliance.engine import PASSING, FrameworkResult, weighted_mean
from zentro.compliance.models import EvidenceBundle, Policy, Vendor
from zentro.compliance.reporting import Report, Section, columns, csv_value
from zentro.extensions import db
from zentro.platform.types import iso, utcnow

TREND_WEEKS = engine.DEFAULT_TREND_WEEKS
# NIST CSF 2.0 implementation tiers from readiness bands (documented in docs/compliance.md).
CSF_TIERS = ((40.0, 1, "Partial"), (60.0, 2, "Risk Informed"), (80.0, 3, "Repeatable"), (float("inf"), 4, "Adaptive"))
SPRS_MAX, SPRS_FLOOR = 110, -203
# FedRAMP remediation deadlines by risk rating (days from detection).
POAM_DAYS = {"High": 30, "Moderate": 90, "Low": 180}
POAM_COLUMNS = (
    "POAM ID", "Controls", "Weakness Name", "Weakness Description", "Weakness Detector Source",
    "Weakness Source Identifier", "Asset Identifier", "Point of Contact", "Resources Required",
    "Overall Remediation Plan", "Original Detection Date", "Scheduled Completion Date", "Planned Milestones",
    "Milestone Changes", "Status Date", "Vendor Dependency", "Last Vendor Check-in Date",
    "Vendor Dependent Product Name", "Original Risk Rating", "Adjusted Risk Rating", "Risk Adjustment",
    "False Positive", "Operational Requirement", "Deviation Rationale", "Supporting Documents", "Comments",
    "Auto-Approve", "Binding Operational Directive 22-01 tracking", "Binding Operational Directive 22-01 Due Date",
    "CVE",
)
OSCAL_VERSION = "1.1.2"
OSCAL_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://zentro.dev/oscal/poam")
FEDRAMP_NS = "https://fedramp.gov/ns/oscal"


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or utcnow()).astimezone(dt.timezone.utc)


def _window_params(period_days: int, now: dt.datetime, **extra: Any) -> dict:
    return {"period_days": period_days, "window_start": now - dt.timedelta(days=period_days), "window_end": now, **extra}


# --- shared sections ----------------------------------------------------------------------------------------

CONTROL_COLUMNS = columns(
    ("control", "Control"), ("title", "Title"), ("family", "Family"), ("weight", "Weight"), ("score", "Score"),
    ("state", "State"), ("evidence_count", "Evidence in period"), ("direct_count", "Direct"),
    ("crosswalk_count", "Via crosswalk"), ("policy_count", "Policies"), ("inherited_from", "Inherited from"),
    ("last_evidence_at", "Last evidence"), ("freshness_days", "Freshness SLA (days)"), ("fresh", "Fresh"),
    ("attestation", "Attestation"), ("open_exceptions", "Open exceptions"), ("reason", "Gap reason"))


def control_rows(fr: FrameworkResult, extra: Callable[[engine.ControlResult], dict] | None = None) -> list[dict]:
    rows = []
    for c in fr.controls:
        row = c.to_dict()
        row["inherited_from"] = "; ".join(c.inherited_from)
        row["open_exceptions"] = len(c.open_exceptions)
        row["trend"] = fr.control_trends.get(c.tag, [])
        if extra:
            row.update(extra(c))
        rows.append(row)
    return rows


def controls_section(fr: FrameworkResult, *, extra_columns=(), extra=None, with_trend: bool = True) -> Section:
    cols = CONTROL_COLUMNS[:6] + list(extra_columns) + CONTROL_COLUMNS[6:]
    if with_trend and fr.trend:
        cols = cols + columns(("trend", "Weekly score trend"))
    return Section("controls", "Controls", cols, control_rows(fr, extra))


def families_section(fr: FrameworkResult, key: str = "families", title: str = "Families",
                     family_label: str = "Family") -> Section:
    return Section(key, title, columns(("family", family_label), ("title", "Title"), ("readiness", "Readiness"),
                                       ("controls", "Controls"), ("passing", "Passing"), ("at_risk", "At risk"),
                                       ("failing", "Failing")),
                   [{"family": f.id, **f.to_dict()} for f in fr.families])


def trend_section(fr: FrameworkResult) -> Section:
    return Section("trend", "Weekly readiness trend",
                   columns(("week_start", "Week starting"), ("assessed_at", "Assessed at"), ("readiness", "Readiness"),
                           ("passing", "Passing controls"), ("evidence_events", "Tagged audit rows")),
                   [p.to_dict() for p in fr.trend])


GAP_COLUMNS = columns(("rank", "Rank"), ("control", "Control"), ("title", "Title"), ("family", "Family"),
                      ("weight", "Weight"), ("score", "Score"), ("state", "State"), ("priority", "Priority"),
                      ("reason", "Reason"))


def gap_rows(fr: FrameworkResult, limit: int | None = None) -> list[dict]:
    gaps = fr.gaps[:limit] if limit else fr.gaps
    return [{"rank": i, "control": g.tag, "framework": fr.key, "title": g.title, "family": g.family,
             "weight": g.weight, "score": g.score, "state": g.state,
             "priority": round(g.weight * (PASSING - g.score), 1), "reason": g.reason}
            for i, g in enumerate(gaps, 1)]


def gaps_section(fr: FrameworkResult, limit: int | None = None) -> Section:
    return Section("gaps", "Gaps (controls under 70, worst first)", GAP_COLUMNS, gap_rows(fr, limit))


def framework_summary(fr: FrameworkResult) -> dict:
    return {**fr.summary(), "period_days": fr.period_days, "window_start": fr.window_start, "window_end": fr.now}


def _pack_report(slug: str, title: str, fr: FrameworkResult, summary: dict, sections: list[Section]) -> Report:
    return Report(slug, title, _window_params(fr.period_days, fr.now, framework=fr.key, trend_weeks=len(fr.trend)),
                  {**framework_summary(fr), **summary}, sections, fr.now)


def _assess(org_id: int, key: str, period_days: int, now: dt.datetime | None) -> FrameworkResult:
    return engine.assess(org_id, key, period_days, _now(now), trend_weeks=TREND_WEEKS)


def _vendors(org_id: int) -> list[Vendor]:
    return list(db.session.scalars(select(Vendor).where(Vendor.org_id == org_id).order_by(Vendor.name)))


# --- framework packs ----------------------------------------------------------------------------------------

def build_type_ii(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    """SOC 2 Type II continuous monitoring: control trends, exceptions, bundle and legal-hold counts."""
    from zentro.incidents.models import Incident

    fr = _assess(org_id, "SOC2", period_days, now)
    registers = engine.load_registers(org_id)
    exc_rows = []
    for tag, items in sorted(registers.exceptions.items()):
        if not tag.startswith("SOC2:"):
            continue
        for e in items:
            ends = e.closed_at or e.expires_at
            if e.opened_at < fr.now and ends >= fr.window_start:
                exc_rows.append({"id": e.id, "control": tag, "reason": e.reason,
                                 "compensating_control": e.compensating_control,
                                 "status": "open" if e.open_at(fr.now) else "closed" if e.closed_at else "expired",
                                 "opened_at": e.opened_at, "expires_at": e.expires_at, "closed_at": e.closed_at})
    exc_rows.sort(key=lambda r: (r["opened_at"], r["id"]))
    bundles = db.session.scalar(select(func.count()).select_from(EvidenceBundle).where(
        EvidenceBundle.org_id == org_id, EvidenceBundle.created_at >= fr.window_start,
        EvidenceBundle.created_at < fr.now)) or 0
    holds = db.session.scalar(select(func.count()).select_from(Incident).where(
        Incident.org_id == org_id, Incident.legal_hold.is_(True))) or 0
    summary = {"evidence_bundles": bundles, "legal_holds": holds,
               "exceptions_in_period": len(exc_rows), "open_exceptions": sum(r["status"] == "open" for r in exc_rows)}
    return _pack_report("type-ii", "SOC 2 Type II continuous monitoring", fr, summary, [
        trend_section(fr), controls_section(fr),
        Section("exceptions", "Exceptions active in the period",
                columns(("id", "Exception"), ("control", "Control"), ("status", "Status"), ("reason", "Reason"),
                        ("compensating_control", "Compensating control"), ("opened_at", "Opened"),
                        ("expires_at", "Expires"), ("closed_at", "Closed")), exc_rows),
        gaps_section(fr), families_section(fr, title="Trust Services criteria families")])


def build_iso(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    fr = _assess(org_id, "ISO27001", period_days, now)
    return _pack_report("iso-assessment", "ISO/IEC 27001:2022 Annex A continuous assessment", fr,
                        {f"theme_{f.id}": f.readiness for f in fr.families},
                        [families_section(fr, "themes", "Readiness by theme", "Theme"), trend_section(fr),
                         gaps_section(fr), controls_section(fr)])


def build_pci(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    fr = _assess(org_id, "PCIDSS", period_days, now)
    return _pack_report("pci-dss", "PCI DSS v4.0 requirement readiness", fr,
                        {f"requirement_{f.id}": f.readiness for f in fr.families},
                        [families_section(fr, "requirements", "Readiness by requirement (1-12)", "Requirement"),
                         trend_section(fr), gaps_section(fr), controls_section(fr)])


def build_hipaa(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    fr = _assess(org_id, "HIPAA", period_days, now)
    req = [c for c in fr.controls if c.attrs.get("required")]
    addr = [c for c in fr.controls if not c.attrs.get("required")]
    kinds = [{"kind": "required", "controls": len(req), "passing": sum(c.state == "passing" for c in req),
              "readiness": weighted_mean((c.weight, c.score) for c in req)},
             {"kind": "addressable", "controls": len(addr), "passing": sum(c.state == "passing" for c in addr),
              "readiness": weighted_mean((c.weight, c.score) for c in addr)}]
    standards: dict[str, list[engine.ControlResult]] = {}
    for c in fr.controls:
        standards.setdefault(c.attrs.get("section") or c.id, []).append(c)
    std_rows = [{"section": sec, "family": items[0].family,
                 "title": next((c.title for c in items if c.id == sec or c.attrs.get("kind") == "standard"), items[0].title),
                 "controls": len(items), "readiness": weighted_mean((c.weight, c.score) for c in items),
                 "passing": sum(c.state == "passing" for c in items)} for sec, items in standards.items()]
    vendors = [v for v in _vendors(org_id) if v.handles_phi]
    vendor_rows = [{"vendor": v.name, "risk_tier": v.risk_tier, "category": v.category, "baa": v.baa,
                    "status": "BAA in place" if v.baa else "BAA missing",
                    "report_valid": bool(v.report_expires_at and v.report_expires_at > fr.now),
                    "inherited_controls": sorted(v.inherited_controls or []),
                    "hipaa_controls_inherited": sorted(t for t in (v.inherited_controls or []) if t.startswith("HIPAA:"))}
                   for v in vendors]
    summary = {"required_readiness": kinds[0]["readiness"], "addressable_readiness": kinds[1]["readiness"],
               "phi_vendors": len(vendors), "baa_missing": sum(not v.baa for v in vendors)}
    return _pack_report("hipaa", "HIPAA Security Rule safeguards", fr, summary, [
        families_section(fr, "safeguards", "Readiness by safeguard", "Safeguard"),
        Section("standards", "Readiness by standard",
                columns(("section", "Standard"), ("family", "Safeguard"), ("title", "Title"), ("controls", "Specifications"),
                        ("readiness", "Readiness"), ("passing", "Passing")), std_rows),
        Section("required_vs_addressable", "Required vs addressable",
                columns(("kind", "Kind"), ("controls", "Controls"), ("passing", "Passing"), ("readiness", "Readiness")),
                kinds),
        Section("baa_vendors", "Vendors handling PHI (BAA and inherited controls)",
                columns(("vendor", "Vendor"), ("risk_tier", "Tier"), ("category", "Category"), ("baa", "BAA"),
                        ("status", "Status"), ("report_valid", "Report valid"),
                        ("hipaa_controls_inherited", "HIPAA controls inherited"),
                        ("inherited_controls", "All inherited controls")), vendor_rows),
        trend_section(fr), gaps_section(fr),
        controls_section(fr, extra_columns=columns(("required", "Required")),
                         extra=lambda c: {"required": bool(c.attrs.get("required"))})])


def csf_tier(readiness: float) -> tuple[int, str]:
    for bound, tier, name in CSF_TIERS:
        if readiness < bound:
            return tier, name
    return 4, "Adaptive"


def build_csf(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    fr = _assess(org_id, "NISTCSF", period_days, now)
    functions = []
    for f in fr.families:
        tier, name = csf_tier(f.readiness)
        functions.append({"function": f.id, "title": f.title, "readiness": f.readiness, "tier": tier, "tier_name": name,
                          "controls": f.controls, "passing": f.passing})
    cats: dict[str, list[engine.ControlResult]] = {}
    for c in fr.controls:
        cats.setdefault(c.attrs.get("category") or c.family, []).append(c)
    cat_rows = []
    for cat, items in cats.items():
        readiness = weighted_mean((c.weight, c.score) for c in items)
        tier, name = csf_tier(readiness)
        cat_rows.append({"category": cat, "title": items[0].attrs.get("category_title", ""), "function": items[0].family,
                         "readiness": readiness, "tier": tier, "tier_name": name, "subcategories": len(items)})
    overall_tier, overall_name = csf_tier(fr.readiness)
    return _pack_report("nist-csf", "NIST CSF 2.0 alignment", fr,
                        {"tier": overall_tier, "tier_name": overall_name,
                         **{f"function_{r['function']}_tier": r["tier"] for r in functions}},
                        [Section("functions", "Function maturity tiers",
                                 columns(("function", "Function"), ("title", "Title"), ("readiness", "Readiness"),
                                         ("tier", "Tier"), ("tier_name", "Tier name"), ("controls", "Subcategories"),
                                         ("passing", "Passing")), functions),
                         Section("categories", "Categories",
                                 columns(("category", "Category"), ("title", "Title"), ("function", "Function"),
                                         ("readiness", "Readiness"), ("tier", "Tier"), ("tier_name", "Tier name"),
                                         ("subcategories", "Subcategories")), cat_rows),
                         trend_section(fr), gaps_section(fr), controls_section(fr)])


def build_cis(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    fr = _assess(org_id, "CISV8", period_days, now)
    groups = []
    for ig in (1, 2, 3):
        members = [c for c in fr.controls if ig in (c.attrs.get("ig") or [])]
        groups.append({"group": f"IG{ig}", "safeguards": len(members),
                       "passing": sum(c.state == "passing" for c in members),
                       "readiness": weighted_mean((c.weight, c.score) for c in members)})
    return _pack_report("cis-v8", "CIS Controls v8 implementation groups", fr,
                        {f"{g['group'].lower()}_readiness": g["readiness"] for g in groups},
                        [Section("implementation_groups", "Readiness by implementation group",
                                 columns(("group", "Implementation group"), ("safeguards", "Safeguards"),
                                         ("passing", "Passing"), ("readiness", "Readiness")), groups),
                         families_section(fr, "controls_by_family", "Readiness by CIS control", "CIS control"),
                         trend_section(fr), gaps_section(fr),
                         controls_section(fr, extra_columns=columns(("ig", "Implementation groups")),
                                          extra=lambda c: {"ig": [f"IG{i}" for i in c.attrs.get("ig") or []]})])


def sprs_score(fr: FrameworkResult) -> tuple[int, int]:
    """(score, points lost): 110 minus the points of every 800-171 requirement not passing, floored at -203."""
    lost = sum(int(c.attrs.get("points", 1)) for c in fr.controls if c.state != "passing")
    return max(SPRS_FLOOR, SPRS_MAX - lost), lost


def build_cmmc(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    fr = _assess(org_id, "NIST800171", period_days, now)
    score, lost = sprs_score(fr)
    return _pack_report("cmmc-l2", "CMMC 2.0 Level 2 (NIST SP 800-171 r2) with SPRS-style score", fr,
                        {"sprs_score": score, "sprs_max": SPRS_MAX, "sprs_floor": SPRS_FLOOR, "points_lost": lost,
                         "requirements_met": sum(c.state == "passing" for c in fr.controls)},
                        [families_section(fr, title="Readiness by requirement family"), trend_section(fr),
                         gaps_section(fr),
                         controls_section(fr, extra_columns=columns(("points", "SPRS points"),
                                                                    ("points_deducted", "Points deducted")),
                                          extra=lambda c: {"points": int(c.attrs.get("points", 1)),
                                                           "points_deducted": 0 if c.state == "passing"
                                                           else int(c.attrs.get("points", 1))})])


def build_gdpr(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    fr = _assess(org_id, "GDPR", period_days, now)
    vendors = [v for v in _vendors(org_id) if v.handles_personal_data]
    bands = [{"band": "DPA present", "vendors": sum(v.dpa for v in vendors), "names": [v.name for v in vendors if v.dpa]},
             {"band": "DPA missing", "vendors": sum(not v.dpa for v in vendors),
              "names": [v.name for v in vendors if not v.dpa]}]
    return _pack_report("gdpr-art32", "GDPR Article 32 technical and organisational measures", fr,
                        {"processors": len(vendors), "dpa_missing": bands[1]["vendors"],
                         **{f"domain_{f.id}": f.readiness for f in fr.families}},
                        [families_section(fr, "domains", "Readiness by domain", "Domain"),
                         Section("dpa_bands", "Processors by DPA status",
                                 columns(("band", "Band"), ("vendors", "Vendors"), ("names", "Names")), bands),
                         trend_section(fr), gaps_section(fr), controls_section(fr)])


# --- FedRAMP POA&M --------------------------------------------------------------------------------------------

def _poam_rating(c: engine.ControlResult) -> str:
    """Original risk rating of a gap: High for a failing control of weight >= 1.5, Moderate for other
    failing controls, Low for at-risk ones."""
    if c.state == "failing":
        return "High" if c.weight >= 1.5 else "Moderate"
    return "Low"


def _detected_at(c: engine.ControlResult, registers: engine.Registers, org_created: dt.datetime,
                 now: dt.datetime) -> dt.datetime:
    """When continuous assessment first saw the weakness: the moment evidence went stale, an attestation fell
    due or lapsed, an exception opened; for a control never evidenced, when the org started on Zentro."""
    moments = []
    if c.evidence_level == "stale" and c.last_evidence_at:
        moments.append(c.last_evidence_at + dt.timedelta(days=c.freshness_days))
    elif c.evidence_level == "none":
        moments.append(org_created)
    for a in registers.attestations.get(c.tag, ()):
        state = a.state_at(now)
        if state == "overdue":
            moments.append(a.due_at)
        elif state == "expired" and a.valid_until:
            moments.append(a.valid_until)
    for e in c.open_exceptions:
        moments.append(e["opened_at"])
    moments = [m for m in moments if m is not None and m <= now]
    return min(moments) if moments else now


def _remediation_plan(c: engine.ControlResult) -> str:
    steps = []
    if c.evidence_level in ("none", "stale"):
        steps.append(f"Produce evidence tagged {c.tag} (or a full crosswalk equivalent) at least every "
                     f"{c.freshness_days} days")
    elif c.evidence_level == "partial":
        steps.append(f"Add direct evidence tagged {c.tag}; today only indirect evidence covers it")
    if c.attestation in ("none", "overdue", "expired"):
        steps.append("assign the control owner and record an attestation")
    elif c.attestation == "assigned":
        steps.append("complete the assigned attestation")
    if c.open_exceptions:
        steps.append("close the open exception once the control operates")
    text = "; ".join(steps) or "Review the control"
    return text[0].upper() + text[1:] + "."


@dataclass
class PoamItem:
    control: engine.ControlResult
    row: dict


def poam_items(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> tuple[FrameworkResult, list[PoamItem]]:
    now = _now(now)
    fr = engine.assess(org_id, "NIST80053", period_days, now)
    registers = engine.load_registers(org_id)
    org = db.session.get(Org, org_id)
    gov = db.session.get(OrgGovernance, org_id)
    asset = (gov.boundary if gov and gov.boundary else "") or f"{org.name} (Zentro org {org.slug})"
    owners = {}
    owner_ids = {a.owner_id for items in registers.attestations.values() for a in items if a.owner_id}
    if owner_ids:
        owners = dict(db.session.execute(select(User.id, User.email).where(User.id.in_(owner_ids))).all())
    vendors_by_tag = registers.vendors_by_tag
    exc_by_id = {e.id: e for items in registers.exceptions.values() for e in items}
    items = []
    for c in fr.controls:
        if c.state == "passing":
            continue
        rating = _poam_rating(c)
        detected = _detected_at(c, registers, org.created_at, now)
        due = detected + dt.timedelta(days=POAM_DAYS[rating])
        contact = sorted({owners[a.owner_id] for a in registers.attestations.get(c.tag, ()) if a.owner_id in owners})
        vendors = sorted(v.name for v in vendors_by_tag.get(c.tag, ()))
        exc = [exc_by_id[e["id"]] for e in c.open_exceptions]
        milestones = [f"(1) {due:%Y-%m-%d}: {_remediation_plan(c)}"]
        row = {
            "POAM ID": f"ZEN-{c.id}", "Controls": c.id, "Weakness Name": f"{c.id} {c.title}: {c.state.replace('_', ' ')}",
            "Weakness Description": c.reason, "Weakness Detector Source": "Zentro continuous control assessment",
            "Weakness Source Identifier": c.tag, "Asset Identifier": asset,
            "Point of Contact": ", ".join(contact) or "Unassigned", "Resources Required": "",
            "Overall Remediation Plan": _remediation_plan(c), "Original Detection Date": detected.date(),
            "Scheduled Completion Date": due.date(), "Planned Milestones": " ".join(milestones), "Milestone Changes": "",
            "Status Date": now.date(), "Vendor Dependency": "Yes" if vendors else "No",
            "Last Vendor Check-in Date": "", "Vendor Dependent Product Name": ", ".join(vendors),
            "Original Risk Rating": rating, "Adjusted Risk Rating": rating, "Risk Adjustment": "No",
            "False Positive": "No", "Operational Requirement": "Yes" if exc else "No",
            "Deviation Rationale": "; ".join(f"Exception #{e.id}: {e.reason} (compensating control: "
                                             f"{e.compensating_control or 'none recorded'})" for e in exc),
            "Supporting Documents": "", "Comments": f"Score {c.score:g}/100 over the last {period_days} days; "
                                                   f"evidence {c.evidence_level}, attestation {c.attestation}.",
            "Auto-Approve": "No", "Binding Operational Directive 22-01 tracking": "No",
            "Binding Operational Directive 22-01 Due Date": "", "CVE": "",
        }
        items.append(PoamItem(c, row))
    return fr, items


def build_poam(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    now = _now(now)
    fr, items = poam_items(org_id, period_days, now)
    ratings = [i.row["Original Risk Rating"] for i in items]
    cols = columns(*[(name, name) for name in POAM_COLUMNS])
    return Report("fedramp-poam", "FedRAMP POA&M (NIST SP 800-53 r5 moderate baseline)",
                  _window_params(period_days, now, framework="NIST80053"),
                  {**framework_summary(fr), "open_items": len(items), "high": ratings.count("High"),
                   "moderate": ratings.count("Moderate"), "low": ratings.count("Low")},
                  [Section("poam", "Open POA&M items", cols, [i.row for i in items])], now, csv_layout="table")


def _uuid(org_id: int, *parts: str) -> str:
    return str(uuid.uuid5(OSCAL_NS, ":".join([f"org-{org_id}", *parts])))


def oscal_poam(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> dict:
    """An OSCAL 1.1 plan-of-action-and-milestones document for the same items. Every id is a uuid5 of the org and
    the control, so a re-export names the same observations, risks and items (the document uuid changes only
    when the set of open items or their states does)."""
    now = _now(now)
    fr, items = poam_items(org_id, period_days, now)
    org = db.session.get(Org, org_id)
    party = _uuid(org_id, "party")
    observations, risks, findings, poam = [], [], [], []
    for item in items:
        c, row = item.control, item.row
        obs, risk, finding, entry = (_uuid(org_id, kind, c.tag) for kind in ("observation", "risk", "finding", "poam-item"))
        observations.append({
            "uuid": obs, "title": f"Continuous assessment of {c.id}", "description": c.reason,
            "methods": ["TEST"], "types": ["finding"], "collected": iso(now),
            "props": [{"name": "score", "ns": "https://zentro.dev/ns/oscal", "value": f"{c.score:g}"}],
        })
        risks.append({
            "uuid": risk, "title": row["Weakness Name"], "description": c.reason,
            "statement": row["Overall Remediation Plan"], "status": "open",
            "deadline": iso(dt.datetime.combine(row["Scheduled Completion Date"], dt.time(), dt.timezone.utc)),
            "props": [{"name": "risk-level", "ns": FEDRAMP_NS, "value": row["Original Risk Rating"].lower()}],
            "related-observations": [{"observation-uuid": obs}],
        })
        findings.append({
            "uuid": finding, "title": f"{c.id} not satisfied", "description": c.reason,
            "target": {"type": "objective-id", "target-id": f"{c.id.lower()}_obj",
                       "status": {"state": "not-satisfied"}},
            "related-observations": [{"observation-uuid": obs}], "related-risks": [{"risk-uuid": risk}],
        })
        poam.append({
            "uuid": entry, "title": row["Weakness Name"], "description": c.reason,
            "props": [{"name": "POAM-ID", "ns": FEDRAMP_NS, "value": row["POAM ID"]}],
            "related-observations": [{"observation-uuid": obs}], "related-risks": [{"risk-uuid": risk}],
        })
    state_key = ",".join(f"{i.control.tag}={i.control.state}" for i in items)
    return {"plan-of-action-and-milestones": {
        "uuid": _uuid(org_id, "poam", uuid.uuid5(OSCAL_NS, state_key).hex),
        "metadata": {
            "title": f"{org.name}: Plan of Action and Milestones (NIST SP 800-53 r5 moderate)",
            "last-modified": iso(now), "version": now.strftime("%Y.%m.%d"), "oscal-version": OSCAL_VERSION,
            "parties": [{"uuid": party, "type": "organization", "name": org.name}],
        },
        "system-id": {"identifier-type": "https://ietf.org/rfc/rfc4122", "id": _uuid(org_id, "system")},
        "observations": observations, "risks": risks, "findings": findings, "poam-items": poam,
    }}


# --- program reports ------------------------------------------------------------------------------------------

def build_summary(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    """SOC 2 / ISO 27001 coverage: controls with evidence in the window over all controls, readiness, top gaps."""
    now = _now(now)
    snap = engine.snapshot(org_id, period_days, now)
    rows, gaps, summary = [], [], {}
    for key in ("SOC2", "ISO27001"):
        fr = snap.assess(key)
        coverage = round(100.0 * fr.with_evidence / len(fr.controls), 1)
        rows.append({"framework": key, "name": fr.name, "controls": len(fr.controls), "with_evidence": fr.with_evidence,
                     "coverage_pct": coverage, "readiness": fr.readiness, **fr.counts})
        gaps += gap_rows(fr, 5)
        summary[f"{key.lower()}_coverage_pct"] = coverage
        summary[f"{key.lower()}_readiness"] = fr.readiness
    return Report("summary", "SOC 2 / ISO 27001 control coverage", _window_params(period_days, now), summary, [
        Section("frameworks", "Coverage by framework",
                columns(("framework", "Framework"), ("name", "Name"), ("controls", "Controls"),
                        ("with_evidence", "With evidence"), ("coverage_pct", "Coverage %"), ("readiness", "Readiness"),
                        ("passing", "Passing"), ("at_risk", "At risk"), ("failing", "Failing")), rows),
        Section("gaps", "Top gaps", columns(("framework", "Framework"), *[(c.key, c.title) for c in GAP_COLUMNS]), gaps),
    ], now)


def vendor_rollup(org_id: int, now: dt.datetime) -> dict:
    vendors = _vendors(org_id)
    soon = now + dt.timedelta(days=30)
    return {
        "total": len(vendors),
        "by_tier": {t: sum(v.risk_tier == t for v in vendors) for t in ("critical", "high", "medium", "low")},
        "reports_expiring_30d": sorted(v.name for v in vendors if v.report_expires_at and now <= v.report_expires_at < soon),
        "reports_expired": sorted(v.name for v in vendors if v.report_expires_at and v.report_expires_at < now),
        "reviews_overdue": sorted(v.name for v in vendors if v.next_review_at and v.next_review_at < now),
        "baa_missing": sorted(v.name for v in vendors if v.handles_phi and not v.baa),
        "dpa_missing": sorted(v.name for v in vendors if v.handles_personal_data and not v.dpa),
    }


def build_program(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    """Weighted readiness for every framework, gaps, attestation rollup and vendor rollup."""
    now = _now(now)
    snap = engine.snapshot(org_id, period_days, now)
    results = {key: snap.assess(key) for key in snap.catalog.frameworks}
    fw_rows, gaps = [], []
    for key, fr in results.items():
        top = fr.gaps[0] if fr.gaps else None
        fw_rows.append({"framework": key, "slug": fr.slug, "name": fr.name, "readiness": fr.readiness,
                        "controls": len(fr.controls), **fr.counts, "gaps": len(fr.gaps),
                        "top_gap": top.tag if top else ""})
        gaps += gap_rows(fr, 5)
    gaps.sort(key=lambda g: (-g["priority"], g["framework"], g["rank"]))
    attest = engine.attestation_rollup(org_id, now, snap.registers)
    vendors = vendor_rollup(org_id, now)
    vendor_rows = [{"metric": f"tier_{t}", "value": n} for t, n in vendors["by_tier"].items()]
    vendor_rows += [{"metric": k, "value": len(vendors[k]), "vendors": vendors[k]}
                    for k in ("reports_expiring_30d", "reports_expired", "reviews_overdue", "baa_missing", "dpa_missing")]
    summary = {"readiness": round(sum(r["readiness"] for r in fw_rows) / len(fw_rows), 1),
               "frameworks": len(fw_rows), "gaps": sum(r["gaps"] for r in fw_rows),
               **{f"attestations_{k}": v for k, v in attest.items()},
               "vendors": vendors["total"], **{f"vendors_{k}": len(vendors[k]) for k in
                                               ("reports_expiring_30d", "reviews_overdue", "baa_missing", "dpa_missing")}}
    return Report("program", "Compliance program", _window_params(period_days, now), summary, [
        Section("frameworks", "Readiness by framework",
                columns(("framework", "Framework"), ("name", "Name"), ("readiness", "Readiness"), ("controls", "Controls"),
                        ("passing", "Passing"), ("at_risk", "At risk"), ("failing", "Failing"), ("gaps", "Gaps"),
                        ("top_gap", "Top gap")), fw_rows),
        Section("gaps", "Top gaps across frameworks", columns(("framework", "Framework"),
                                                              *[(c.key, c.title) for c in GAP_COLUMNS]), gaps[:25]),
        Section("attestations", "Attestations by state", columns(("state", "State"), ("count", "Count")),
                [{"state": k, "count": v} for k, v in attest.items()]),
        Section("vendors", "Vendor risk", columns(("metric", "Metric"), ("value", "Value"), ("vendors", "Vendors")),
                vendor_rows),
    ], now)


def _framework_tags(framework_key: str | None) -> set[str] | None:
    """Every tag that counts as evidence for the framework: its controls' equivalents."""
    if framework_key is None:
        return None
    cat = load_catalog()
    tags: set[str] = set()
    for tag in cat.tags_for(framework_key):
        tags |= cat.equivalents(tag)
    return tags


EXPORT_COLUMNS = columns(("kind", "Kind"), ("id", "Id"), ("seq", "Seq"), ("occurred_at", "Occurred at"),
                         ("actor_type", "Actor type"), ("actor", "Actor"), ("action", "Action"),
                         ("target_type", "Target type"), ("target_id", "Target id"), ("name", "Name"),
                         ("control_tags", "Control tags"), ("request_id", "Request id"), ("hash", "Hash"),
                         ("prev_hash", "Previous hash"))


def export_rows(org_id: int, start: dt.datetime, end: dt.datetime, tags: set[str] | None) -> Iterator[dict]:
    """Tagged audit rows in the window (oldest first, streamed with yield_per), then accepted policies with tags."""
    stmt = (select(AuditEvent.id, AuditEvent.seq, AuditEvent.created_at, AuditEvent.actor_type, AuditEvent.actor_label,
                   AuditEvent.action, AuditEvent.target_type, AuditEvent.target_id, AuditEvent.control_tags,
                   AuditEvent.request_id, AuditEvent.hash, AuditEvent.prev_hash)
            .where(AuditEvent.org_id == org_id, AuditEvent.created_at >= start, AuditEvent.created_at < end,
                   AuditEvent.control_tags != "")
            .order_by(AuditEvent.seq).execution_options(yield_per=1000, stream_results=True))
    for r in db.session.execute(stmt):
        if tags is not None and tags.isdisjoint(r.control_tags.split()):
            continue
        yield {"kind": "audit_event", "id": r.id, "seq": r.seq, "occurred_at": r.created_at, "actor_type": r.actor_type,
               "actor": r.actor_label, "action": r.action, "target_type": r.target_type, "target_id": r.target_id,
               "name": "", "control_tags": r.control_tags, "request_id": r.request_id, "hash": r.hash,
               "prev_hash": r.prev_hash}
    yield from _policy_rows(org_id, tags)


def _policy_rows(org_id: int, tags: set[str] | None) -> Iterator[dict]:
    pol = (select(Policy).where(Policy.org_id == org_id, Policy.status == "accepted", Policy.control_tags != "")
           .order_by(Policy.id))
    for p in db.session.scalars(pol):
        if tags is not None and tags.isdisjoint(p.control_tags.split()):
            continue
        yield {"kind": "policy", "id": p.id, "seq": None, "occurred_at": p.accepted_at or p.updated_at,
               "actor_type": "user" if p.accepted_by_id else "", "actor": "", "action": "policy.accepted",
               "target_type": "policy", "target_id": str(p.id), "name": p.name,
               "control_tags": " ".join(sorted(set(p.control_tags.split()))), "request_id": "", "hash": "",
               "prev_hash": ""}


# The export's audit rows rendered by PostgreSQL itself (COPY … TO STDOUT WITH CSV), formatted exactly as
# reporting.iter_csv writes them: timestamps as iso() does (…Z, microseconds only when non-zero), empty text
# as NULL (COPY writes NULL unquoted, as Python writes ""), and "\r\n" line ends.
_PG_ISO = ("to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
           "(date_part('microseconds', created_at)::bigint %% 1000000) = 0 THEN '' ELSE "
           "to_char(created_at AT TIME ZONE 'UTC', '.US') END || 'Z'")
_PG_EXPORT = ("COPY (SELECT 'audit_event', id, seq, " + _PG_ISO + ", NULLIF(actor_type, ''), NULLIF(actor_label, ''), "
              "NULLIF(action, ''), NULLIF(target_type, ''), NULLIF(target_id, ''), NULL, NULLIF(control_tags, ''), "
              "NULLIF(request_id, ''), NULLIF(hash, ''), NULLIF(prev_hash, '') FROM audit_events "
              "WHERE org_id = %(org)s AND created_at >= %(start)s AND created_at < %(end)s AND control_tags <> '' {tags}"
              "ORDER BY seq) TO STDOUT WITH (FORMAT csv)")


def export_csv_text(org_id: int, start: dt.datetime, end: dt.datetime, tags: set[str] | None) -> Iterator[str] | None:
    """The evidence export's CSV body on PostgreSQL (audit rows by COPY, then the policies as Python writes
    them); None elsewhere (the caller writes the rows itself)."""
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        return None
    raw = conn.connection.driver_connection  # psycopg 3, inside the request's transaction
    sql = _PG_EXPORT.format(tags="AND string_to_array(control_tags, ' ') && %(tags)s::text[] " if tags is not None else "")
    params = {"org": org_id, "start": start, "end": end, "tags": sorted(tags) if tags is not None else None}

    def chunks() -> Iterator[str]:
        pending, size = [], 0
        with raw.cursor() as cur, cur.copy(sql, params) as copy:
            for block in copy:  # about one row per block: gather ~64 KiB per chunk sent
                pending.append(bytes(block))
                size += len(block)
                if size >= 65536:
                    yield b"".join(pending).replace(b"\n", b"\r\n").decode("utf-8")
                    pending, size = [], 0
        if pending:
            yield b"".join(pending).replace(b"\n", b"\r\n").decode("utf-8")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        for row in _policy_rows(org_id, tags):
            writer.writerow([csv_value(row.get(c.key)) for c in EXPORT_COLUMNS])
        yield buf.getvalue()

    return chunks()


def build_export(org_id: int, period_days: int = 30, now: dt.datetime | None = None,
                 framework_key: str | None = None) -> Report:
    now = _now(now)
    start = now - dt.timedelta(days=period_days)
    tags = _framework_tags(framework_key)
    org = db.session.get(Org, org_id)
    return Report("export", "Compliance evidence pack: tagged audit events and accepted policies",
                  _window_params(period_days, now, framework=framework_key),
                  {"org": org.slug, "period_days": period_days, "window_start": start, "window_end": now,
                   "framework": framework_key},
                  [Section("evidence", "Evidence", EXPORT_COLUMNS, lambda: export_rows(org_id, start, now, tags),
                           csv_text=lambda: export_csv_text(org_id, start, now, tags))],
                  now, csv_layout="table")


def build_crosswalk(org_id: int, period_days: int = 30, now: dt.datetime | None = None,
                    framework_key: str | None = None) -> Report:
    """The mapping matrix: one row per crosswalk edge between the left framework and the right one(s), with each
    side's direct evidence in the period; left controls without an edge appear once as unmapped."""
    now = _now(now)
    cat = load_catalog()
    left = framework_key or "SOC2"
    right = {"SOC2": ("ISO27001",), "ISO27001": ("SOC2",)}.get(left, ("SOC2", "ISO27001"))
    start = now - dt.timedelta(days=period_days)
    (window,) = engine.tag_window_aggregates(org_id, [(start, now)])
    rows = []
    mapped = full = partial = 0
    for c in cat.framework(left).controls:
        la = window.get(c.tag)
        base = {"left_framework": left, "left_control": c.tag, "left_title": c.title,
                "left_evidence": la.count if la else 0, "left_last_evidence": la.last if la else None}
        edges = [(t, s) for t, s in cat.neighbours(c.tag) if t.split(":", 1)[0] in right]
        if edges:
            mapped += 1
        for tag, strength in edges:
            ra = window.get(tag)
            full += strength == "full"
            partial += strength == "partial"
            rows.append({**base, "strength": strength, "right_framework": tag.split(":", 1)[0], "right_control": tag,
                         "right_title": cat.control(tag).title, "right_evidence": ra.count if ra else 0,
                         "right_last_evidence": ra.last if ra else None,
                         "evidence_flows": bool(la or ra)})
        if not edges:
            rows.append({**base, "strength": "unmapped", "right_framework": "", "right_control": "", "right_title": "",
                         "right_evidence": None, "right_last_evidence": None, "evidence_flows": False})
    left_total = len(cat.framework(left).controls)
    return Report("crosswalk", f"Crosswalk: {cat.framework(left).name} vs {' and '.join(cat.framework(r).name for r in right)}",
                  _window_params(period_days, now, framework=left, right=list(right)),
                  {"left": left, "right": " ".join(right), "edges": full + partial, "full": full, "partial": partial,
                   "left_controls": left_total, "left_mapped": mapped,
                   "left_with_evidence": sum(1 for c in cat.framework(left).controls if c.tag in window),
                   "right_with_evidence": sum(1 for r in right for t in cat.tags_for(r) if t in window)},
                  [Section("matrix", "Mapping matrix with evidence overlay",
                           columns(("left_framework", "Framework"), ("left_control", "Control"), ("left_title", "Title"),
                                   ("left_evidence", "Evidence in period"), ("left_last_evidence", "Last evidence"),
                                   ("strength", "Strength"), ("right_framework", "Mapped framework"),
                                   ("right_control", "Mapped control"), ("right_title", "Mapped title"),
                                   ("right_evidence", "Mapped evidence in period"),
                                   ("right_last_evidence", "Mapped last evidence"), ("evidence_flows", "Evidence flows")),
                           rows)], now, csv_layout="table")


FRESHNESS_COLUMNS = columns(("framework", "Framework"), ("control", "Control"), ("title", "Title"),
                            ("status", "Status"), ("last_evidence_at", "Last evidence"), ("age_days", "Age (days)"),
                            ("freshness_days", "SLA (days)"), ("overdue_days", "Overdue (days)"),
                            ("inherited_from", "Inherited from"), ("evidence_count", "Evidence in period"))


def build_freshness(org_id: int, period_days: int = 30, now: dt.datetime | None = None,
                    framework_key: str | None = None) -> Report:
    """Per control: last evidence, its age against the freshness SLA; the stale queue worst first."""
    now = _now(now)
    snap = engine.snapshot(org_id, period_days, now)
    keys = [framework_key] if framework_key else list(snap.catalog.frameworks)
    rows = []
    for key in keys:
        for c in snap.assess(key, with_trend=False).controls:
            age = (now - c.last_evidence_at).days if c.last_evidence_at else None
            if c.fresh:
                status = "fresh" if c.last_evidence_at and age is not None and age <= c.freshness_days else "inherited"
            else:
                status = "stale" if c.last_evidence_at else "missing"
            rows.append({"framework": key, "control": c.tag, "title": c.title, "status": status,
                         "last_evidence_at": c.last_evidence_at, "age_days": age, "freshness_days": c.freshness_days,
                         "overdue_days": age - c.freshness_days if status == "stale" else None,
                         "inherited_from": "; ".join(c.inherited_from), "evidence_count": c.evidence_count})
    queue = sorted([r for r in rows if r["status"] == "stale"], key=lambda r: (-r["overdue_days"], r["control"]))
    queue += [r for r in rows if r["status"] == "missing"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("fresh", "inherited", "stale", "missing")}
    return Report("evidence-freshness", "Evidence freshness", _window_params(period_days, now, framework=framework_key),
                  {"controls": len(rows), **counts}, [
                      Section("controls", "Controls", FRESHNESS_COLUMNS, rows),
                      Section("stale_queue", "Stale queue (most overdue first, then never evidenced)",
                              FRESHNESS_COLUMNS, queue)], now, csv_layout="table")


def build_baseline(org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
    now = _now(now)
    rows = []
    for b in engine.baseline_comparison(org_id, period_days, now):
        rows.append({"framework": b.key, "name": b.name, "readiness": b.current.readiness,
                     "prior_readiness": b.prior.readiness, "delta": b.delta,
                     "passing": b.current.counts["passing"], "prior_passing": b.prior.counts["passing"],
                     "controls": len(b.current.controls)})
    improved = sum(r["delta"] > 0 for r in rows)
    declined = sum(r["delta"] < 0 for r in rows)
    return Report("baseline-comparison", "Baseline comparison: live readiness vs the prior period",
                  _window_params(period_days, now, prior_end=now - dt.timedelta(days=period_days)),
                  {"frameworks": len(rows), "improved": improved, "declined": declined,
                   "unchanged": len(rows) - improved - declined}, [
                      Section("frameworks", "Frameworks",
                              columns(("framework", "Framework"), ("name", "Name"), ("readiness", "Readiness"),
                                      ("prior_readiness", "Prior readiness"), ("delta", "Delta"),
                                      ("passing", "Passing"), ("prior_passing", "Prior passing"),
                                      ("controls", "Controls")), rows)], now, csv_layout="table")


# --- registry ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pack:
    slug: str
    framework_key: str | None
    title: str
    builder: Callable[..., Report]

    def build(self, org_id: int, period_days: int = 30, now: dt.datetime | None = None) -> Report:
        return self.builder(org_id, period_days, now)

    @property
    def framework_slug(self) -> str | None:
        return FRAMEWORK_SLUGS.get(self.framework_key) if self.framework_key else None


PACKS: dict[str, Pack] = {p.slug: p for p in (
    Pack("type-ii", "SOC2", "SOC 2 Type II continuous monitoring", build_type_ii),
    Pack("iso-assessment", "ISO27001", "ISO 27001 Annex A assessment", build_iso),
    Pack("pci-dss", "PCIDSS", "PCI DSS v4 requirements", build_pci),
    Pack("hipaa", "HIPAA", "HIPAA Security Rule safeguards", build_hipaa),
    Pack("nist-csf", "NISTCSF", "NIST CSF 2.0 function tiers", build_csf),
    Pack("cis-v8", "CISV8", "CIS Controls v8 implementation groups", build_cis),
    Pack("cmmc-l2", "NIST800171", "CMMC L2 (NIST 800-171) SPRS", build_cmmc),
    Pack("gdpr-art32", "GDPR", "GDPR Article 32", build_gdpr),
    Pack("fedramp-poam", "NIST80053", "FedRAMP POA&M (NIST 800-53)", build_poam),
    Pack("crosswalk", None, "SOC 2 / ISO 27001 crosswalk", build_crosswalk),
)}
PACK_BY_FRAMEWORK: dict[str, Pack] = {p.framework_key: p for p in PACKS.values() if p.framework_key}
