"""Control dependency graph across frameworks: controls joined by catalog crosswalk edges, by family (thematic),
by being tagged on the same audit events, and by being named in the same accepted policy."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from itertools import combinations

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from zentro.audit.models import AuditTag
from zentro.compliance.catalog import FRAMEWORKS, load_catalog
from zentro.compliance.models import Policy
from zentro.compliance.report_registry import ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._controls import FrameworkFilter, Window30Query, slug
from zentro.extensions import db

KINDS = ("crosswalk", "thematic", "shared_audit", "shared_policy")
MAX_AUDIT_PAIRS = 2000  # the strongest co-occurring pairs kept (the self-join is grouped and limited in SQL)
HUBS = 15
CROSSWALK_WEIGHT = {"full": 1.0, "partial": 0.5}


class GraphQuery(Window30Query, FrameworkFilter):
    pass


def co_occurrence(org_id: int, start: dt.datetime, end: dt.datetime, tags: set[str] | None,
                  limit: int = MAX_AUDIT_PAIRS) -> list[tuple[str, str, int]]:
    """(tag a, tag b, events carrying both) with a < b, for audit events in [start, end), strongest first: ONE
    grouped self-join of audit_tags on event_id, limited in SQL; ``tags`` keeps pairs touching those tags."""
    a, b = aliased(AuditTag), aliased(AuditTag)
    n = func.count().label("n")
    stmt = (select(a.tag, b.tag, n).join(b, (b.event_id == a.event_id) & (b.tag > a.tag))
            .where(a.org_id == org_id, a.created_at >= start, a.created_at < end))
    if tags is not None:
        wanted = sorted(tags)
        stmt = stmt.where(a.tag.in_(wanted) | b.tag.in_(wanted))
    stmt = stmt.group_by(a.tag, b.tag).order_by(n.desc(), a.tag, b.tag).limit(limit)
    return [(x, y, int(c)) for x, y, c in db.session.execute(stmt)]


@report("control-graph", title="Control dependency graph", category="Scope & controls", query=GraphQuery,
        summary="Controls across frameworks joined by crosswalk, thematic (family), shared-audit and shared-policy "
                "edges, with each control's degree and the most connected controls (JSON or CSV).",
        inputs="the catalogs and crosswalk, audit_tags (co-occurrence on the same event), accepted policies' control "
               "tags",
        window="shared-audit edges: the `window` ending now (default 30d); the other kinds: as they stand now",
        definitions={
            "selected_controls": "Controls of the selected frameworks (all frameworks when `framework` is empty).",
            "crosswalk_full": "Crosswalk edges the catalog marks as a full mapping (weight 1.0).",
            "crosswalk_partial": "Crosswalk edges the catalog marks as a partial mapping (weight 0.5).",
            "shared_audit_truncated": "True when more shared-audit pairs existed than the strongest ones kept.",
            "nodes": "Controls of the selected frameworks (all frameworks when `framework` is empty), plus controls "
                     "of other frameworks at the far end of an edge (in_selection false).",
            "edges": "Edges with at least one end in the selection, of all four kinds.",
            "crosswalk_edges": "Catalog crosswalk edges (undirected, between two frameworks); weight 1.0 full, "
                               "0.5 partial.",
            "thematic_edges": "Within each framework family, every control is joined to the family's anchor: its "
                              "highest-weight control (first in catalog order on ties). A star instead of the full "
                              "clique: the same grouping with n−1 edges instead of n(n−1)/2. Weight 1.",
            "shared_audit_edges": "Pairs of catalog controls tagged on the same audit event in the window; weight = "
                                  f"number of such events. The {MAX_AUDIT_PAIRS} strongest pairs are kept "
                                  "(shared_audit_truncated says when more existed).",
            "shared_policy_edges": "Pairs of controls named together by an accepted policy; weight = number of "
                                   "accepted policies naming both.",
            "degree": "Edges touching the control, all kinds; by kind in the crosswalk/thematic/shared_audit/"
                      "shared_policy columns.",
            "cross_degree": "degree minus thematic edges: connections beyond the control's own family.",
            "max_degree": "Highest degree among selected controls.",
            "most_connected": "The selected control with the highest cross_degree (then degree, then catalog order); "
                              "the Most connected section lists the top 15.",
        })
def build(ctx: ReportContext) -> Report:
    q: GraphQuery = ctx.query  # type: ignore[assignment]
    catalog = load_catalog()
    keys = [k for k in FRAMEWORKS if k in q.frameworks] if q.frameworks else list(FRAMEWORKS)
    selected = [c for k in keys for c in catalog.framework(k).controls]
    sel = {c.tag for c in selected}
    filtered = bool(q.frameworks)
    start = ctx.now - dt.timedelta(days=q.days)
    edges: list[dict] = []

    def add(a: str, b: str, kind: str, weight: float, detail: str) -> None:
        if a in sel or b in sel:
            edges.append({"source": a, "target": b, "kind": kind, "weight": weight, "detail": detail})

    for e in catalog.crosswalk.edges:
        add(e.from_, e.to, "crosswalk", CROSSWALK_WEIGHT[e.strength], e.strength)
    for key in keys:
        fw = catalog.framework(key)
        for fam in fw.families:
            members = [c for c in fw.controls if c.family == fam.id]
            anchor = max(members, key=lambda c: c.weight)  # max keeps the first on ties
            for c in members:
                if c is not anchor:
                    add(anchor.tag, c.tag, "thematic", 1.0, f"{key} family {fam.id}")
    pairs = co_occurrence(ctx.org_id, start, ctx.now, sel if filtered else None, MAX_AUDIT_PAIRS + 1)
    truncated = len(pairs) > MAX_AUDIT_PAIRS
    for a, b, n in pairs[:MAX_AUDIT_PAIRS]:
        if catalog.has(a) and catalog.has(b):
            add(a, b, "shared_audit", float(n), f"{n} audit events")
    shared: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, tags in db.session.execute(select(Policy.name, Policy.control_tags).where(
            Policy.org_id == ctx.org_id, Policy.status == "accepted").order_by(Policy.name)):
        known = sorted({t for t in (tags or "").split() if catalog.has(t)})
        for a, b in combinations(known, 2):
            shared[(a, b)].append(name)
    for (a, b), names in sorted(shared.items()):
        add(a, b, "shared_policy", float(len(names)), "; ".join(names[:5]) + (" …" if len(names) > 5 else ""))

    degree: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    for e in edges:
        degree[e["source"]][e["kind"]] += 1
        degree[e["target"]][e["kind"]] += 1
    order = {t: i for i, t in enumerate(catalog.all_tags())}
    external = sorted({t for e in edges for t in (e["source"], e["target"]) if t not in sel}, key=order.__getitem__)
    node_rows = []
    for tag in [c.tag for c in selected] + external:
        c = catalog.control(tag)
        d = degree[tag]
        total = sum(d.values())
        node_rows.append({"control": tag, "framework": c.framework, "family": c.family, "title": c.title,
                          "weight": c.weight, "in_selection": tag in sel, "degree": total,
                          "cross_degree": total - d["thematic"], **d})
    ranked = sorted((r for r in node_rows if r["in_selection"]),
                    key=lambda r: (-r["cross_degree"], -r["degree"], order[r["control"]]))
    hubs = [r for r in ranked[:HUBS] if r["degree"] > 0]
    by_kind = {k: sum(1 for e in edges if e["kind"] == k) for k in KINDS}
    chart = Chart("hubs", "Most connected controls", "bar", [r["control"] for r in hubs],
                  [Series(k.replace("_", " "), [r[k] for r in hubs]) for k in KINDS], unit="edges", stacked=True,
                  description="Edges per kind for the most connected controls (ranked by connections beyond "
                              "their family).")
    return Report(
        "control-graph", "Control dependency graph",
        {"window": q.window, "framework": [slug(k) for k in keys] if filtered else "all", "from": start, "to": ctx.now},
        {"nodes": len(node_rows), "selected_controls": len(sel), "edges": len(edges),
         "crosswalk_edges": by_kind["crosswalk"],
         "crosswalk_full": sum(1 for e in edges if e["kind"] == "crosswalk" and e["detail"] == "full"),
         "crosswalk_partial": sum(1 for e in edges if e["kind"] == "crosswalk" and e["detail"] == "partial"),
         "thematic_edges": by_kind["thematic"], "shared_audit_edges": by_kind["shared_audit"],
         "shared_audit_truncated": truncated, "shared_policy_edges": by_kind["shared_policy"],
         "max_degree": max((r["degree"] for r in node_rows if r["in_selection"]), default=0),
         "most_connected": hubs[0]["control"] if hubs else None},
        [Section("hubs", "Most connected controls", columns(
            "control", "framework", "title", "degree", ("cross_degree", "Beyond family"), "crosswalk", "thematic",
            ("shared_audit", "Shared audit"), ("shared_policy", "Shared policy")), hubs),
         Section("nodes", "Nodes", columns("control", "framework", "family", "title", "weight",
                                           ("in_selection", "In selection"), "degree",
                                           ("cross_degree", "Beyond family"), "crosswalk", "thematic",
                                           ("shared_audit", "Shared audit"), ("shared_policy", "Shared policy")),
                 node_rows),
         Section("edges", "Edges", columns("source", "target", "kind", "weight", "detail"), edges)],
        ctx.now, charts=[chart] if hubs else [])
