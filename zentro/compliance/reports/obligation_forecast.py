"""Board obligation forecast: open obligations and owner-hours due per week of the horizon against the committee's
density thresholds, with the audit-season checkpoints as milestones."""
from __future__ import annotations

from zentro.compliance import obligations as obl
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _obligation_views as views

DEFINITIONS = {
    "weeks": "Weeks in the horizon: the current ISO week (Monday start, UTC) and the following ones.",
    "obligations": "Open obligations due inside the horizon (overdue ones from before this week are not counted; "
                   "see overdue_open).",
    "owner_hours": "Sum of those obligations' effort hours (per-kind effort from the committee settings).",
    "overdue_open": "Open obligations due before the start of the current week (overdue, so in no forecast week).",
    "peak_week": "Monday of the week with the most obligations due (ties: more owner-hours, then the earlier week).",
    "peak_count": "Obligations due in the peak week.",
    "peak_hours": "Owner-hours due in the peak week.",
    "peak_level": "Density level of the peak week (ok / warn / critical).",
    "weeks_warn": "Weeks whose count reaches density_warn but not density_critical.",
    "weeks_critical": "Weeks whose count reaches density_critical.",
    "weeks_over_capacity": "Weeks whose owner-hours exceed capacity_hours_per_week.",
    "density_warn": "Committee threshold: a week with at least this many obligations due is 'warn'.",
    "density_critical": "Committee threshold: a week with at least this many obligations due is 'critical'.",
    "capacity_hours_per_week": "Committee owner-hours capacity per week.",
    "milestones": "Audit checkpoints (planned or done) due inside the horizon.",
    "weeks.count": "Open obligations due in the week (Monday 00:00 to the next Monday, UTC).",
    "weeks.owner_hours": "Effort hours of those obligations.",
    "weeks.level": "critical when count >= density_critical, warn when count >= density_warn, else ok.",
    "weeks.capacity_pct": "owner_hours / capacity_hours_per_week x 100, rounded to a whole percent.",
    "weeks.<kind>": "Obligations of that kind due in the week.",
    "weeks.milestones": "Names of the audit checkpoints due in the week.",
    "milestones.state": "done, overdue (planned and past due) or planned.",
    "density chart": "Bars: obligations due per week; the line is the committee's warn threshold.",
    "hours chart": "Line: owner-hours due per week; the reference line is the weekly capacity.",
}


def week_section(rows: list[views.WeekRow], config: obl.CommitteeConfig) -> Section:
    cap = config.capacity_hours_per_week
    return Section(
        "weeks", "Weekly density",
        columns("week", "count", ("owner_hours", "Owner-hours"), "level", ("capacity_pct", "Capacity %"),
                *[(k, obl.KIND_LABELS[k]) for k in obl.KINDS], "milestones"),
        [{"week": r.week, "count": r.count, "owner_hours": r.hours, "level": r.level,
          "capacity_pct": round(100 * r.hours / cap) if cap else None, **r.kinds, "milestones": r.milestones}
         for r in rows])


@report("obligation-forecast", title="Obligation forecast", category="Obligations", query=ForecastQuery,
        summary="Board obligation forecast: open obligations and owner-hours due per week against the committee's "
                "density thresholds and capacity, with audit-checkpoint milestones (JSON or CSV).",
        inputs="attestations, vendors, the bundle cadence, audit checkpoints, evidence requests; committee settings "
               "(thresholds, capacity, effort per kind)",
        window="from the start of the current ISO week for `weeks` weeks", definitions=DEFINITIONS)
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    config = obl.committee_config(ctx.org_id)
    weeks, start, end = views.horizon(ctx.now, q.weeks)
    items = obl.open_only(obl.load(ctx.org_id, ctx.now, config=config, until=end))
    milestones = views.checkpoint_milestones(ctx.org_id, start, end)
    by_week: dict = {}
    for m in milestones:
        by_week.setdefault(m["week"], []).append(m["name"])
    rows = views.forecast_weeks(items, weeks, config, by_week)
    top = views.peak(rows)
    labels = [w.isoformat() for w in weeks]
    charts = [
        Chart("density", "Obligations due per week", "bar", labels, [Series("Obligations", [r.count for r in rows])],
              unit="obligations", threshold=config.density_warn,
              threshold_label=f"warn threshold ({config.density_warn})",
              description="Bars: open obligations due each week; the line marks the committee's warn threshold."),
        Chart("hours", "Owner-hours due per week", "line", labels, [Series("Owner-hours", [r.hours for r in rows])],
              unit="hours", threshold=config.capacity_hours_per_week,
              threshold_label=f"capacity ({config.capacity_hours_per_week:g} h)",
              description="Owner-hours of the obligations due each week against the weekly capacity."),
    ]
    total = sum(r.count for r in rows)
    summary = {
        "weeks": q.weeks, "obligations": total, "owner_hours": round(sum(r.hours for r in rows), 1),
        "overdue_open": sum(1 for o in items if o.overdue(ctx.now) and o.due_at < start),
        "peak_week": top.week if top and top.count else None, "peak_count": top.count if top else 0,
        "peak_hours": top.hours if top else 0.0, "peak_level": top.level if top else "ok",
        "weeks_warn": sum(1 for r in rows if r.level == "warn"),
        "weeks_critical": sum(1 for r in rows if r.level == "critical"),
        "weeks_over_capacity": sum(1 for r in rows if r.hours > config.capacity_hours_per_week),
        "density_warn": config.density_warn, "density_critical": config.density_critical,
        "capacity_hours_per_week": config.capacity_hours_per_week, "milestones": len(milestones),
    }
    ms_rows = [{"due": m["due_at"].date(), "week": m["week"], "name": m["name"], "framework": m["framework"],
                "state": "done" if m["status"] == "done" else ("overdue" if m["due_at"] < ctx.now else "planned")}
               for m in milestones]
    return Report("obligation-forecast", "Obligation forecast", {"weeks": q.weeks, "from": start, "to": end}, summary,
                  [week_section(rows, config),
                   Section("milestones", "Committee milestones (audit checkpoints)",
                           columns("due", "week", "name", "framework", "state"), ms_rows)],
                  ctx.now, charts=charts)
