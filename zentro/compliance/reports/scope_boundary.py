"""Scope boundary mapper: the systems inside the audit boundary, the data flows that stay inside, cross or stay
outside it, and per framework how many of its controls the boundary's own audit trail evidences."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import Integer, case, cast, func, select

from zentro.audit.models import AuditEvent, AuditTag
from zentro.compliance import scope as scope_svc
from zentro.compliance.catalog import FRAMEWORKS, load_catalog
from zentro.compliance.report_registry import ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._controls import Window30Query, slug
from zentro.extensions import db
from zentro.incidents.models import Incident


def system_tags(org_id: int, service_ids: list[int], start: dt.datetime, end: dt.datetime) -> dict[int, dict[str, int]]:
    """service id → {control tag: audit rows} for audit events in [start, end) about the service itself
    (target_type "service") or about one of its incidents (target_type "incident"): two grouped queries."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    if not service_ids:
        return out
    window = (AuditEvent.org_id == org_id, AuditEvent.created_at >= start, AuditEvent.created_at < end)
    direct = (select(AuditEvent.target_id, AuditTag.tag, func.count())
              .join(AuditTag, AuditTag.event_id == AuditEvent.id)
              .where(*window, AuditEvent.target_type == "service",
                     AuditEvent.target_id.in_([str(i) for i in service_ids]))
              .group_by(AuditEvent.target_id, AuditTag.tag))
    for target, tag, n in db.session.execute(direct):
        out[int(target)][tag] = out[int(target)].get(tag, 0) + int(n)
    incident_id = cast(case((AuditEvent.target_type == "incident", AuditEvent.target_id)), Integer)
    via = (select(Incident.service_id, AuditTag.tag, func.count())
           .select_from(AuditEvent)
           .join(AuditTag, AuditTag.event_id == AuditEvent.id)
           .join(Incident, Incident.id == incident_id)
           .where(*window, AuditEvent.target_type == "incident", Incident.org_id == org_id,
                  Incident.service_id.in_(service_ids))
           .group_by(Incident.service_id, AuditTag.tag))
    for sid, tag, n in db.session.execute(via):
        out[sid][tag] = out[sid].get(tag, 0) + int(n)
    return out


@report("scope-boundary", title="Scope boundary", category="Scope & controls", query=Window30Query,
        summary="In-scope systems, their frameworks and data classes, data flows classified against the audit "
                "boundary, and per framework the controls the boundary's own audit trail evidences (JSON or CSV).",
        inputs="services and their scope mappings (the audit scope register), service dependency edges, audit "
               "events about in-scope services or their incidents",
        window="audit evidence: the `window` ending now (default 30d); scope and flows: as they stand now",
        definitions={
            "services": "Services of the org.",
            "in_scope": "Services whose scope mapping says in scope (the systems inside the boundary).",
            "out_of_scope": "Services with a mapping that says out of scope.",
            "unmapped": "Services with no scope decision at all: listed in the Unmapped services section as a gap.",
            "flows": "Service dependency edges (service → the service it depends on); data moves along them.",
            "flows_inside": "Flows with both ends in scope.",
            "flows_crossing": "Flows with exactly one end in scope: boundary crossings an assessor will ask about "
                              "(an unmapped end counts as not in scope).",
            "flows_outside": "Flows with neither end in scope.",
            "frameworks_in_scope": "Frameworks at least one in-scope system is mapped to.",
            "data_classes.<class>": "In-scope systems holding each data class (pii, phi, cardholder, credentials, "
                                    "customer-content, financial).",
            "boundary_events": "Audit rows (event × control tag) in the window about in-scope systems: events whose "
                               "target is the service itself, or one of its incidents.",
            "systems.audit_rows": "The same count for one system.",
            "systems.controls_tagged": "Distinct control tags on those audit rows for one system.",
            "frameworks.systems": "In-scope systems mapped to the framework.",
            "frameworks.controls": "Controls of the framework in the catalog.",
            "frameworks.evidenced_direct": "Framework controls whose own tag is on an audit event (in the window) "
                                           "about one of the framework's in-scope systems or their incidents.",
            "frameworks.evidenced_with_crosswalk": "Framework controls whose tag or a one-hop crosswalk equivalent "
                                                   "(catalog.equivalents, as the evidence engine counts) is on such "
                                                   "an event.",
            "frameworks.coverage_pct": "evidenced_with_crosswalk / controls × 100, one decimal: how much of the "
                                       "framework the boundary's own trail speaks to (not readiness).",
            "flows.classification": "inside | crossing | outside, as above.",
            "flows.data_classes": "Data classes held by the in-scope end(s) of the flow: what crosses.",
        })
def build(ctx: ReportContext) -> Report:
    q: Window30Query = ctx.query  # type: ignore[assignment]
    start = ctx.now - dt.timedelta(days=q.days)
    rows, flows = scope_svc.load(ctx.org_id)
    counts = scope_svc.counts(rows, flows)
    systems = [r for r in rows if r["status"] == "in_scope"]
    tags = system_tags(ctx.org_id, [r["service_id"] for r in systems], start, ctx.now)
    catalog = load_catalog()

    flow_count: dict[int, dict[str, int]] = defaultdict(lambda: {"inside": 0, "crossing": 0})
    for f in flows:
        if f["classification"] in ("inside", "crossing"):
            for sid, status in ((f["from_id"], f["from_status"]), (f["to_id"], f["to_status"])):
                if status == "in_scope":
                    flow_count[sid][f["classification"]] += 1
    system_rows = [{
        "service": r["service"], "service_id": r["service_id"], "tier": r["tier"], "environment": r["environment"],
        "internet_facing": r["internet_facing"], "frameworks": r["framework_slugs"], "data_classes": r["data_classes"],
        "flows_inside": flow_count[r["service_id"]]["inside"], "flows_crossing": flow_count[r["service_id"]]["crossing"],
        "audit_rows": sum(tags.get(r["service_id"], {}).values()),
        "controls_tagged": len(tags.get(r["service_id"], {})),
    } for r in systems]

    framework_rows = []
    for key in FRAMEWORKS:
        members = [r for r in systems if key in r["frameworks"]]
        if not members:
            continue
        seen: set[str] = set()
        for r in members:
            seen.update(tags.get(r["service_id"], {}))
        fw = catalog.framework(key)
        direct = sum(1 for c in fw.controls if c.tag in seen)
        crosswalk = sum(1 for c in fw.controls if c.tag in seen or any(t in seen for t, _ in catalog.neighbours(c.tag)))
        framework_rows.append({
            "framework": key, "slug": slug(key), "name": fw.name, "systems": len(members),
            "system_names": [r["service"] for r in members], "controls": len(fw.controls),
            "evidenced_direct": direct, "evidenced_with_crosswalk": crosswalk,
            "coverage_pct": round(100.0 * crosswalk / len(fw.controls), 1) if fw.controls else 0.0})

    flow_rows = [{"from": f["from"], "to": f["to"], "from_status": f["from_status"], "to_status": f["to_status"],
                  "classification": f["classification"], "frameworks": [slug(k) for k in f["frameworks"]],
                  "data_classes": f["data_classes"]} for f in flows]
    flow_rows.sort(key=lambda f: (("crossing", "inside", "outside").index(f["classification"]), f["from"], f["to"]))
    unmapped = [{"service": r["service"], "service_id": r["service_id"], "tier": r["tier"],
                 "environment": r["environment"], "internet_facing": r["internet_facing"],
                 "flows_to_in_scope": sum(1 for f in flows if f["classification"] == "crossing"
                                          and r["service_id"] in (f["from_id"], f["to_id"])),
                 "gap": "no scope decision recorded"} for r in rows if r["status"] == "unmapped"]
    classes = {c: sum(1 for r in systems if c in r["data_classes"]) for c in scope_svc.DATA_CLASSES}
    chart = Chart("coverage", "Framework controls evidenced by the boundary's audit trail", "bar",
                  [r["slug"] for r in framework_rows],
                  [Series("Evidenced (incl. crosswalk)", [r["evidenced_with_crosswalk"] for r in framework_rows]),
                   Series("Not evidenced", [r["controls"] - r["evidenced_with_crosswalk"] for r in framework_rows])],
                  unit="controls", stacked=True,
                  description="Per framework in scope: controls evidenced by audit events about its in-scope "
                              "systems, and the rest.")
    return Report(
        "scope-boundary", "Scope boundary",
        {"window": q.window, "from": start, "to": ctx.now},
        {"services": counts["services"], "in_scope": counts["in_scope"], "out_of_scope": counts["out_of_scope"],
         "unmapped": counts["unmapped"], "flows": counts["flows"], "flows_inside": counts["flows_inside"],
         "flows_crossing": counts["flows_crossing"], "flows_outside": counts["flows_outside"],
         "frameworks_in_scope": len(framework_rows), "boundary_events": sum(r["audit_rows"] for r in system_rows),
         "data_classes": classes},
        [Section("systems", "In-scope systems", columns(
            "service", ("service_id", "Service id"), "tier", "environment", ("internet_facing", "Internet-facing"),
            "frameworks", ("data_classes", "Data classes"), ("flows_inside", "Flows inside"),
            ("flows_crossing", "Boundary crossings"), ("audit_rows", "Audit rows"),
            ("controls_tagged", "Controls tagged")), system_rows),
         Section("flows", "Data flows", columns("from", ("to", "To (depends on)"), ("from_status", "From status"),
                                                ("to_status", "To status"), "classification", "frameworks",
                                                ("data_classes", "Data classes")), flow_rows),
         Section("frameworks", "Framework control mappings", columns(
             "framework", "slug", "name", ("systems", "In-scope systems"), ("system_names", "System names"),
             "controls", ("evidenced_direct", "Evidenced (direct)"),
             ("evidenced_with_crosswalk", "Evidenced (incl. crosswalk)"), ("coverage_pct", "Coverage %")),
                 framework_rows),
         Section("unmapped", "Unmapped services (gap)", columns(
             "service", ("service_id", "Service id"), "tier", "environment", ("internet_facing", "Internet-facing"),
             ("flows_to_in_scope", "Crossings into scope"), "gap"), unmapped)],
        ctx.now, charts=[chart] if framework_rows else [])
