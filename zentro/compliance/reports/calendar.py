"""GRC compliance calendar: every obligation due in the window, in date order (the exemplar report module)."""
from __future__ import annotations

import datetime as dt

from pydantic import Field

from zentro.compliance import obligations as obl
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns


class CalendarQuery(ForecastQuery):
    include_overdue: bool = Field(True, alias="includeOverdue",
                                  description="Also list open obligations already past due (true/false).")


@report("calendar", title="Compliance calendar", category="Obligations", query=CalendarQuery,
        summary="Attestations, vendor reviews and report renewals, scheduled bundles, audit-season checkpoints and "
                "evidence requests due in the coming weeks (JSON or CSV).",
        inputs="attestations, vendors, evidence bundles and the bundle cadence, audit checkpoints, evidence requests",
        window="from the start of the current ISO week for `weeks` weeks (plus open overdue items when "
               "includeOverdue)",
        definitions={
            "obligations": "Open obligations listed: due inside the horizon, plus overdue ones when includeOverdue.",
            "due_in_horizon": "Open obligations due from the start of this week to the end of the horizon.",
            "overdue": "Open obligations whose due date is before now.",
            "effort_hours": "Sum of the listed obligations' effort hours (per-kind effort from committee settings).",
            "by_kind.<kind>": "Listed obligations of each kind.",
            "weekly chart": "Obligations due per week of the horizon, one bar series per kind.",
        })
@obl.gc_paused()  # ~100k obligations and row dicts: no full collections while they are built
def build(ctx: ReportContext) -> Report:
    q: CalendarQuery = ctx.query  # type: ignore[assignment]
    weeks = obl.weeks_from(ctx.now, q.weeks)
    start = dt.datetime.combine(weeks[0], dt.time(), dt.timezone.utc)
    end = start + dt.timedelta(weeks=q.weeks)
    items = [o for o in obl.open_only(obl.load(ctx.org_id, ctx.now, until=end))
             if (start <= o.due_at < end) or (q.include_overdue and o.due_at < ctx.now)]
    overdue = sum(1 for o in items if o.overdue(ctx.now))
    buckets = obl.in_weeks(items, weeks)
    chart = Chart("weekly", "Obligations due per week", "bar", [w.isoformat() for w in weeks],
                  [Series(obl.KIND_LABELS[k], [sum(1 for o in buckets[w] if o.kind == k) for w in weeks])
                   for k in obl.KINDS], unit="obligations", stacked=True,
                  description="Stacked bars: obligations due each week by kind.")
    rows = [{"due": o.due_at.date(), "week": o.week, "kind": o.kind, "title": o.title,
             "frameworks": list(o.frameworks), "owner": o.owner, "effort_hours": o.effort_hours,
             "overdue": o.overdue(ctx.now), "key": o.key, "link": o.url} for o in items]
    return Report(
        "calendar", "Compliance calendar",
        {"weeks": q.weeks, "includeOverdue": q.include_overdue, "from": start, "to": end},
        {"obligations": len(items), "due_in_horizon": len(items) - overdue, "overdue": overdue,
         "effort_hours": round(sum(o.effort_hours for o in items), 1),
         "by_kind": obl.kind_counts(items)},
        [Section("obligations", "Obligations", columns("due", "week", "kind", "title", "frameworks", "owner",
                                                       ("effort_hours", "Effort (h)"), "overdue", "key", "link"),
                 rows)],
        ctx.now, charts=[chart])
