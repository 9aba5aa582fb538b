"""Inherited control coverage gaps: for every vendor, the controls its category says it provides, and whether a
valid assurance report, the org's own evidence or an attestation actually covers each of them."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.compliance import engine, vendors as vendor_rules
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import VENDOR_TIERS, Attestation, Vendor
from zentro.compliance.obligations import _aware
from zentro.compliance.report_registry import ReportContext, WindowQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.extensions import db


@report("inherited-control-gaps", title="Inherited control gaps", category="Scope & controls", query=WindowQuery,
        summary="Vendors missing evidence on the controls their category says they provide: assurance report "
                "validity and type, the org's own evidence and attestations per inherited control (JSON or CSV).",
        inputs="vendors (category, tier, report type and expiry, stored inherited controls), vendor_rules.json, "
               "audit_tags, attestations",
        window="own evidence: the `window` ending now (default 90d); reports and attestations: as of now",
        definitions={
            "vendors": "Vendors in the register.",
            "inherited_controls": "(vendor, control) pairs the vendor is supposed to provide: every control its "
                                  "category lists in vendor_rules.json (physical, hosting and service scopes), plus "
                                  "any stored inherited control not in that list (scope 'recorded').",
            "report_valid": "The vendor has an assurance report type other than none whose expiry is after now "
                            "(expiring within 30 days still counts).",
            "type_covers": "The report type unlocks the control's scope (SOC 2 Type II: physical, hosting and "
                           "service; ISO 27001 certificate: physical and hosting; SOC 2 Type I or none: nothing); "
                           "for a 'recorded' control, the control is in the vendor's stored inherited controls.",
            "covered_by_report": "Pairs with report_valid and type_covers.",
            "own_evidence": "Audit rows in the window tagged with the control or a one-hop crosswalk equivalent (as "
                            "the evidence engine counts); pairs with at least one.",
            "attested": "The control has an attestation attested and still valid now; pairs with one.",
            "gaps": "Pairs not covered by the report, with no own evidence in the window and no valid attestation: "
                    "nothing shows the control operates.",
            "vendors_with_gaps": "Vendors with at least one gap.",
            "gaps_by_tier.<tier>": "Gaps per vendor risk tier (critical, high, medium, low).",
        })
def build(ctx: ReportContext) -> Report:
    q: WindowQuery = ctx.query  # type: ignore[assignment]
    org, now = ctx.org_id, ctx.now
    start = now - dt.timedelta(days=q.days)
    catalog = load_catalog()
    rules = vendor_rules.load_rules()
    tier_rank = {t: i for i, t in enumerate(VENDOR_TIERS)}
    rows = sorted(db.session.execute(select(Vendor.id, Vendor.name, Vendor.category, Vendor.risk_tier,
                                            Vendor.report_type, Vendor.report_expires_at, Vendor.inherited_controls)
                                     .where(Vendor.org_id == org)).all(),
                  key=lambda v: (tier_rank.get(v.risk_tier, 9), v.name.lower(), v.id))
    (window,) = engine.tag_window_aggregates(org, [(start, now)])
    attested: set[str] = set()
    for control, status, attested_at, valid_until in db.session.execute(
            select(Attestation.control, Attestation.status, Attestation.attested_at, Attestation.valid_until)
            .where(Attestation.org_id == org, Attestation.status == "attested")):
        if attested_at is not None and _aware(attested_at) <= now and (valid_until is None or _aware(valid_until) > now):
            attested.add(control)
    evidence_cache: dict[str, int] = {}

    def own_evidence(tag: str) -> int:
        if tag not in evidence_cache:
            tags = catalog.equivalents(tag) if catalog.has(tag) else {tag}
            evidence_cache[tag] = sum(window[t].count for t in tags if t in window)
        return evidence_cache[tag]

    control_rows, vendor_rows = [], []
    for v in rows:
        report_type = v.report_type or "none"
        expires = _aware(v.report_expires_at) if v.report_expires_at else None
        if report_type == "none" or expires is None:
            status = "none"
        elif expires <= now:
            status = "expired"
        elif expires <= now + vendor_rules.EXPIRING_WINDOW:
            status = "expiring"
        else:
            status = "valid"
        report_valid = status in ("valid", "expiring")
        rule = rules.report_types.get(report_type)
        unlocks = set(rule.unlocks) if rule else set()
        supposed: dict[str, str] = {}
        category = rules.categories.get(v.category)
        if category is not None:
            for scope in vendor_rules.SCOPES:
                for tag in getattr(category.controls, scope):
                    supposed.setdefault(tag, scope)
        stored = list(v.inherited_controls or [])
        for tag in stored:
            supposed.setdefault(tag, "recorded")
        mine = []
        for tag, scope in supposed.items():
            covers = (scope in unlocks) if scope != "recorded" else tag in stored
            by_report = report_valid and covers
            ev = own_evidence(tag)
            att = tag in attested
            gap = not by_report and ev == 0 and not att
            if by_report:
                why = f"covered by the {rules.report_label(report_type)} until {expires.date().isoformat()}"
            elif not report_valid:
                why = (f"report expired on {expires.date().isoformat()}" if status == "expired"
                       else "no assurance report")
            else:
                why = f"the {rules.report_label(report_type)} does not cover {scope} controls"
            if not by_report:
                why += ("; own evidence in the window" if ev else "") + ("; attested" if att else "")
                if gap:
                    why += "; no own evidence and no attestation"
            mine.append({"vendor": v.name, "vendor_id": v.id, "tier": v.risk_tier, "category": v.category,
                         "control": tag, "title": catalog.control(tag).title if catalog.has(tag) else "",
                         "scope": scope, "report_type": report_type, "report_status": status,
                         "report_expires_at": expires, "report_valid": report_valid, "type_covers": covers,
                         "covered_by_report": by_report, "own_evidence": ev, "attested": att, "gap": gap,
                         "reason": why})
        control_rows.extend(mine)
        vendor_rows.append({"vendor": v.name, "vendor_id": v.id, "tier": v.risk_tier, "category": v.category,
                            "report_type": report_type, "report_status": status, "report_expires_at": expires,
                            "inherited_controls": len(mine),
                            "covered_by_report": sum(1 for r in mine if r["covered_by_report"]),
                            "own_evidence": sum(1 for r in mine if r["own_evidence"]),
                            "attested": sum(1 for r in mine if r["attested"]),
                            "gaps": sum(1 for r in mine if r["gap"])})
    gaps = [r for r in control_rows if r["gap"]]
    by_tier = {t: sum(1 for r in gaps if r["tier"] == t) for t in VENDOR_TIERS}
    chart = Chart("tiers", "Inherited controls by vendor tier", "bar", list(VENDOR_TIERS),
                  [Series("Covered by report", [sum(1 for r in control_rows if r["tier"] == t and r["covered_by_report"])
                                                for t in VENDOR_TIERS]),
                   Series("Covered by own evidence or attestation",
                          [sum(1 for r in control_rows if r["tier"] == t and not r["covered_by_report"] and not r["gap"])
                           for t in VENDOR_TIERS]),
                   Series("Gap", [by_tier[t] for t in VENDOR_TIERS])], unit="controls", stacked=True,
                  description="Per vendor tier: inherited (vendor, control) pairs covered by a valid report, by the "
                              "org's own evidence or attestation, and gaps.")
    cols = ("vendor", ("vendor_id", "Vendor id"), "tier", "category", "control", "title", "scope",
            ("report_type", "Report"), ("report_status", "Report status"), ("report_expires_at", "Report expires"),
            ("report_valid", "Report valid"), ("type_covers", "Type covers"), ("covered_by_report", "Covered by report"),
            ("own_evidence", "Own evidence (rows)"), "attested", "gap", "reason")
    return Report(
        "inherited-control-gaps", "Inherited control gaps",
        {"window": q.window, "from": start, "to": now},
        {"vendors": len(vendor_rows), "inherited_controls": len(control_rows),
         "covered_by_report": sum(1 for r in control_rows if r["covered_by_report"]),
         "own_evidence": sum(1 for r in control_rows if r["own_evidence"]),
         "attested": sum(1 for r in control_rows if r["attested"]), "gaps": len(gaps),
         "vendors_with_gaps": sum(1 for r in vendor_rows if r["gaps"]), "gaps_by_tier": by_tier},
        [Section("gaps", "Gaps", columns(*cols), gaps),
         Section("vendors", "Vendors", columns(
             "vendor", ("vendor_id", "Vendor id"), "tier", "category", ("report_type", "Report"),
             ("report_status", "Report status"), ("report_expires_at", "Report expires"),
             ("inherited_controls", "Inherited controls"), ("covered_by_report", "Covered by report"),
             ("own_evidence", "With own evidence"), "attested", "gaps"), vendor_rows),
         Section("controls", "Inherited controls", columns(*cols), control_rows)],
        now, charts=[chart] if control_rows else [])
