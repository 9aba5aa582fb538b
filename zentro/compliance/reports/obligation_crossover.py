"""Multi-framework obligation crossover: clusters of open obligations due in the same window that share evidence
through the crosswalk or share a framework, with the effort one consolidated evidence pull would save."""
from __future__ import annotations

from pydantic import Field

from zentro.compliance import obligations as obl
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _obligation_views as views


class CrossoverQuery(ForecastQuery):
    window_days: int = Field(14, ge=1, le=views.WINDOW_DAYS_MAX, alias="windowDays",
                             description="Due window of a cluster in days, from its earliest member (1-60).")


CLUSTER_DEFINITIONS = {
    "cluster_key": "Stable cluster id: '<anchor obligation key>~<windowDays>d'; the anchor is the earliest member "
                   "(due date, then key).",
    "window_start": "Due date of the anchor; the window runs windowDays from it.",
    "window_end": "window_start + windowDays.",
    "members": "Open obligations in the cluster (2 or more). Two obligations link when a control of one is the same "
               "control as, or a direct crosswalk neighbour of, a control of the other, or when they share a "
               "framework; members are taken greedily in due order within the anchor's window (see "
               "zentro/compliance/reports/_obligation_views.py).",
    "frameworks": "Union of the members' frameworks.",
    "framework_count": "Number of those frameworks.",
    "shared_frameworks": "Frameworks carried by at least two members.",
    "shared_controls": "Member controls that another member also carries, directly or as a crosswalk neighbour "
                       "(evidence collected once speaks to both).",
    "link": "crosswalk (only shared/equivalent controls), framework (only a shared framework) or crosswalk+framework.",
    "overdue_members": "Members already past due.",
    "effort_hours": "Sum of the members' effort hours.",
    "largest_effort": "The largest single member's effort hours.",
    "hours_saved": "Potential hours saved = effort_hours - largest_effort: one consolidated evidence pull, costed as "
                   "the largest member, instead of one pull per member.",
}


def selected(ctx: ReportContext, window_days: int, weeks: int):
    """(horizon start, end, clusters whose anchor is due before the end of the horizon, open obligations, every
    cluster of the clustering horizon)."""
    _, start, end = views.horizon(ctx.now, weeks)
    items = obl.open_only(obl.load(ctx.org_id, ctx.now, until=views.horizon(ctx.now, views.CLUSTER_HORIZON_WEEKS)[2]))
    every = views.clusters(items, ctx.now, window_days)
    return start, end, [c for c in every if c.anchor.due_at < end], items, every


@report("obligation-crossover", title="Obligation crossover", category="Obligations", query=CrossoverQuery,
        summary="Multi-framework obligation crossover: clusters of open obligations due in the same window that "
                "share crosswalk-linked evidence or a framework, with the hours one consolidated evidence pull "
                "would save (JSON or CSV).",
        inputs="the open obligations with their controls and frameworks; the catalog crosswalk",
        window="clusters whose anchor (earliest member) is due before the end of the `weeks`-week horizon, overdue "
               "anchors included; members lie within windowDays of their anchor",
        definitions={
            "clusters": "Crossover clusters listed.",
            "multi_framework_clusters": "Clusters whose members span two or more frameworks.",
            "crosswalk_clusters": "Clusters with at least one shared control (link crosswalk or crosswalk+framework).",
            "clustered_obligations": "Obligations that belong to a listed cluster.",
            "candidate_obligations": "Open obligations due before the end of the horizon that carry a framework or a "
                                     "control (bundles carry neither and never cluster).",
            "effort_hours": "Sum of the listed clusters' effort hours.",
            "hours_saved": "Sum of the listed clusters' potential hours saved.",
            "largest_cluster": "Key of the cluster with the most hours saved (ties: more members, then earlier).",
            "window_days": "The due window used (windowDays).",
            **CLUSTER_DEFINITIONS,
            "member rows": "One row per cluster member: the obligation with its cluster key.",
            "hours chart": "Bars: effort hours and potential hours saved per cluster.",
        })
@obl.gc_paused()  # ~100k obligations and row dicts: no full collections while they are built
def build(ctx: ReportContext) -> Report:
    q: CrossoverQuery = ctx.query  # type: ignore[assignment]
    start, end, found, items, _ = selected(ctx, q.window_days, q.weeks)
    rows = views.cluster_rows(found, ctx.now)
    members = [{"cluster_key": c.key, "key": o.key, "due": o.due_at.date(), "kind": o.kind, "title": o.title,
                "frameworks": list(o.frameworks), "controls": list(o.controls), "owner": o.owner,
                "effort_hours": o.effort_hours, "overdue": o.overdue(ctx.now), "link": o.url}
               for c in found for o in c.members]
    best = max(found, key=lambda c: (c.hours_saved, len(c.members), -c.anchor.due_at.timestamp()), default=None)
    summary = {
        "clusters": len(found), "multi_framework_clusters": sum(1 for c in found if len(c.frameworks) > 1),
        "crosswalk_clusters": sum(1 for c in found if c.shared_controls),
        "clustered_obligations": len(members),
        "candidate_obligations": sum(1 for o in items if o.due_at < end and (o.frameworks or o.controls)),
        "effort_hours": round(sum(c.effort_hours for c in found), 1),
        "hours_saved": round(sum(c.hours_saved for c in found), 1),
        "largest_cluster": best.key if best else "", "window_days": q.window_days,
    }
    charts = []
    if found:
        charts.append(Chart("hours", "Effort and potential hours saved per cluster", "bar", [c.key for c in found],
                            [Series("Effort (h)", [c.effort_hours for c in found]),
                             Series("Hours saved", [c.hours_saved for c in found])], unit="hours",
                            description="Per cluster: the members' effort hours and what one consolidated pull "
                                        "would save."))
    return Report("obligation-crossover", "Obligation crossover",
                  {"weeks": q.weeks, "windowDays": q.window_days, "from": start, "to": end}, summary,
                  [Section("clusters", "Crossover clusters",
                           columns("cluster_key", "window_start", "window_end", "members", "frameworks",
                                   "framework_count", "shared_frameworks", "shared_controls", "link", "kinds",
                                   "owners", "overdue_members", ("effort_hours", "Effort (h)"),
                                   ("largest_effort", "Largest effort (h)"), ("hours_saved", "Hours saved"),
                                   "member_keys"), rows),
                   Section("members", "Cluster members",
                           columns("cluster_key", "key", "due", "kind", "title", "frameworks", "controls", "owner",
                                   ("effort_hours", "Effort (h)"), "overdue", "link"), members)],
                  ctx.now, charts=charts)
