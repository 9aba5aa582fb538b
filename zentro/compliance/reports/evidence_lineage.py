"""Evidence lineage: where each control's evidence comes from (tagged audit events by action, accepted policies),
which evidence bundles carried it to the assessor (bundle seq, manifest hash) and whether the latest assessor
workbook covers it — with an edge list (source → control → bundle) for graphing.

Two grouped queries over the log, whatever its size: audit_events in the window grouped by (action, control_tags)
(count, first, last), and audit_tags in the window range-joined to the bundle windows grouped by (bundle, tag)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, func, select

from zentro.audit.models import AuditEvent, AuditTag
from zentro.compliance.models import EvidenceBundle, Policy
from zentro.compliance.report_registry import ReportContext, WindowQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._evidence import aware, control_title, framework_of, load_bundles
from zentro.extensions import db


def _bundle_tag_counts(org_id: int, start: dt.datetime, end: dt.datetime) -> dict[tuple[int, str], int]:
    """(bundle id, tag) → tag rows with created_at in [start, end) inside the bundle's window: ONE grouped range
    join (each bundle is an index range scan of audit_tags (org_id, created_at, tag))."""
    stmt = (select(EvidenceBundle.id, AuditTag.tag, func.count())
            .select_from(EvidenceBundle)
            .join(AuditTag, and_(AuditTag.org_id == EvidenceBundle.org_id,
                                 AuditTag.created_at >= EvidenceBundle.window_start,
                                 AuditTag.created_at <= EvidenceBundle.window_end))
            .where(EvidenceBundle.org_id == org_id, EvidenceBundle.window_end >= start,
                   EvidenceBundle.window_start < end, AuditTag.created_at >= start, AuditTag.created_at < end)
            .group_by(EvidenceBundle.id, AuditTag.tag))
    return {(bid, tag): int(n) for bid, tag, n in db.session.execute(stmt)}


@report("evidence-lineage", title="Evidence lineage", category="Evidence & testing", query=WindowQuery,
        summary="Evidence lineage — audit and policy sources through controls and evidence bundles to the assessor "
                "workbook, per control, with an edge list for graphing (JSON or CSV).",
        inputs="audit events with control tags (action, time), accepted policies, evidence bundles and workbooks "
               "(windows, seq, manifest hash)",
        window="audit events created within the `window` ending now; bundles whose window overlaps it; accepted "
               "policies of any date",
        definitions={
            "sources": "Distinct audit actions with tagged events in the window, plus accepted policies with tags.",
            "tagged_events": "Audit events in the window carrying at least one control tag.",
            "policies": "Accepted policies carrying control tags (each is evidence for exactly its tags).",
            "controls": "Distinct control tags with at least one source (tagged event in the window or accepted "
                        "policy).",
            "bundles": "Evidence bundles and workbooks whose window [window_start, window_end] overlaps the report "
                       "window.",
            "workbooks": "Of those bundles, the ones of kind workbook (the unified assessor workbook).",
            "carried": "A bundle carries a control when its audit_events.csv holds a window event tagged with it "
                       "(the event's time is inside the bundle window) or its policies.json holds an accepted policy "
                       "tagged with it (the bundle was created at or after the policy's acceptance).",
            "latest_workbook_seq": "The newest bundle of kind workbook (the unified assessor workbook), any date; "
                                   "null when none.",
            "controls_in_latest_workbook": "Controls the latest workbook carries (definition above).",
            "controls_in_no_bundle": "Controls with sources that no bundle carries yet.",
            "events / evidence_items": "events: audit events of the window tagged with the control; evidence items "
                                       "carried by a bundle count (event, control) pairs.",
            "edges section": "source → control (weight: events, or 1 for a policy) and control → bundle (weight: "
                             "evidence items carried, plus 1 per carried policy).",
        })
def build(ctx: ReportContext) -> Report:
    q: WindowQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    start = now - dt.timedelta(days=q.days)
    org_id = ctx.org_id

    combos = db.session.execute(
        select(AuditEvent.action, AuditEvent.control_tags, func.count(), func.min(AuditEvent.created_at),
               func.max(AuditEvent.created_at))
        .where(AuditEvent.org_id == org_id, AuditEvent.created_at >= start, AuditEvent.created_at < now,
               AuditEvent.control_tags != "")
        .group_by(AuditEvent.action, AuditEvent.control_tags)).all()
    policies = db.session.execute(select(Policy.id, Policy.name, Policy.control_tags, Policy.accepted_at,
                                         Policy.updated_at)
                                  .where(Policy.org_id == org_id, Policy.status == "accepted")
                                  .order_by(Policy.id)).all()
    all_bundles = load_bundles(org_id)
    bundles = [b for b in all_bundles if b.window_end >= start and b.window_start < now]
    carried_rows = _bundle_tag_counts(org_id, start, now) if bundles else {}
    workbooks = [b for b in all_bundles if b.kind == "workbook"]
    latest_wb = workbooks[-1] if workbooks else None

    # sources → controls
    ctl: dict[str, dict] = {}

    def control(tag: str) -> dict:
        c = ctl.get(tag)
        if c is None:
            c = ctl[tag] = {"events": 0, "actions": defaultdict(int), "policies": [], "first": None, "last": None,
                            "bundles": {}}
        return c

    action_rows: dict[str, dict] = {}
    edges: list[dict] = []
    tagged_events = 0
    for action, tags, n, first, last in combos:
        first, last, n = aware(first), aware(last), int(n)
        tagged_events += n
        a = action_rows.setdefault(action, {"source_kind": "audit", "source": action, "events": 0, "controls": set(),
                                            "first_at": first, "last_at": last})
        a["events"] += n
        a["first_at"], a["last_at"] = min(a["first_at"], first), max(a["last_at"], last)
        for tag in set(tags.split()):
            a["controls"].add(tag)
            c = control(tag)
            c["events"] += n
            c["actions"][action] += n
            c["first"] = min(c["first"] or first, first)
            c["last"] = max(c["last"] or last, last)
    for a in action_rows.values():
        for tag in sorted(a["controls"]):
            edges.append({"from_kind": "audit_action", "from": a["source"], "to_kind": "control", "to": tag,
                          "weight": ctl[tag]["actions"][a["source"]]})
    policy_rows = []
    for p in policies:
        at = aware(p.accepted_at or p.updated_at)
        tags = sorted(set((p.control_tags or "").split()))
        if not tags:
            continue
        policy_rows.append({"source_kind": "policy", "source": p.name, "events": 0, "controls": len(tags),
                            "first_at": at, "last_at": at})
        for tag in tags:
            c = control(tag)
            c["policies"].append((p.name, at))
            c["first"] = min(c["first"] or at, at)
            c["last"] = max(c["last"] or at, at)
            edges.append({"from_kind": "policy", "from": p.name, "to_kind": "control", "to": tag, "weight": 1})

    # controls → bundles
    by_id = {b.id: b for b in bundles}
    for (bid, tag), n in carried_rows.items():
        if tag in ctl:
            ctl[tag]["bundles"][bid] = ctl[tag]["bundles"].get(bid, 0) + n
    for tag, c in ctl.items():
        for _, accepted in c["policies"]:
            for b in bundles:
                if b.created_at >= accepted:
                    c["bundles"][b.id] = c["bundles"].get(b.id, 0) + 1
    bundle_stats = {b.id: {"controls": 0, "evidence_items": 0} for b in bundles}
    control_rows = []
    in_latest = no_bundle = 0
    for tag in sorted(ctl):
        c = ctl[tag]
        carried = sorted(c["bundles"], key=lambda i: by_id[i].seq)
        for bid in carried:
            bundle_stats[bid]["controls"] += 1
            bundle_stats[bid]["evidence_items"] += c["bundles"][bid]
            b = by_id[bid]
            edges.append({"from_kind": "control", "from": tag, "to_kind": "workbook" if b.kind == "workbook"
                          else "bundle", "to": f"#{b.seq}", "weight": c["bundles"][bid]})
        in_wb = latest_wb is not None and latest_wb.id in c["bundles"]
        in_latest += in_wb
        no_bundle += not carried
        top = max(c["actions"].items(), key=lambda kv: (kv[1], kv[0]))[0] if c["actions"] else None
        control_rows.append({
            "control": tag, "framework": framework_of(tag), "title": control_title(tag), "events": c["events"],
            "actions": len(c["actions"]), "top_action": top,
            "by_action": dict(sorted(c["actions"].items())), "policies": len(c["policies"]),
            "first_at": c["first"], "last_at": c["last"], "bundles": [by_id[i].seq for i in carried],
            "latest_bundle_seq": by_id[carried[-1]].seq if carried else None,
            "latest_bundle_manifest": by_id[carried[-1]].manifest_sha256 if carried else None,
            "in_latest_workbook": in_wb})
    bundle_rows = [{"seq": b.seq, "kind": b.kind, "window_start": b.window_start, "window_end": b.window_end,
                    "created_at": b.created_at, "manifest_sha256": b.manifest_sha256,
                    "controls": bundle_stats[b.id]["controls"], "evidence_items": bundle_stats[b.id]["evidence_items"],
                    "latest_workbook": latest_wb is not None and b.id == latest_wb.id} for b in bundles]
    source_rows = sorted(({**a, "controls": len(a["controls"])} for a in action_rows.values()),
                         key=lambda a: (-a["events"], a["source"])) + policy_rows
    summary = {"sources": len(source_rows), "tagged_events": tagged_events, "policies": len(policy_rows),
               "controls": len(control_rows), "bundles": len(bundles),
               "workbooks": sum(1 for b in bundles if b.kind == "workbook"),
               "latest_workbook_seq": latest_wb.seq if latest_wb else None,
               "controls_in_latest_workbook": in_latest, "controls_in_no_bundle": no_bundle}
    chart = Chart("carried", "Controls carried per bundle", "bar", [f"#{b.seq}" for b in bundles],
                  [Series("Controls", [float(bundle_stats[b.id]["controls"]) for b in bundles])], unit="controls",
                  description="Bars: controls whose evidence each bundle in the window carries.")
    return Report(
        "evidence-lineage", "Evidence lineage", {"window": q.window, "from": start, "to": now}, summary,
        [Section("controls", "Controls", columns("control", "framework", "title", "events", "actions", "top_action",
                                                 "by_action", "policies", "first_at", "last_at",
                                                 ("bundles", "Bundles carrying"),
                                                 ("latest_bundle_seq", "Latest bundle"),
                                                 ("latest_bundle_manifest", "Latest bundle manifest SHA-256"),
                                                 "in_latest_workbook"), control_rows),
         Section("sources", "Sources", columns("source_kind", "source", "events", "controls", "first_at", "last_at"),
                 source_rows),
         Section("bundles", "Bundles", columns("seq", "kind", "window_start", "window_end", "created_at",
                                               ("manifest_sha256", "Manifest SHA-256"), "controls", "evidence_items",
                                               "latest_workbook"), bundle_rows),
         Section("edges", "Lineage edges", columns("from_kind", "from", "to_kind", "to", "weight"), edges)],
        now, charts=[chart] if bundles else [])
