"""Committee capacity budget: owner-hours the forecast's obligations need each week against the committee's
weekly capacity, with utilisation, shortfall flags and the relief already planned in staffing actions."""
from __future__ import annotations

from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _committee as cm


@report("committee-capacity-budget", title="Committee capacity budget", category="Committee & staffing",
        query=ForecastQuery,
        summary="Weekly owner-hours needed by open obligations against the committee's owner-hour capacity, with "
                "utilisation, shortfall flags, the peak week and relief planned in staffing actions (JSON or CSV).",
        inputs="open obligations (attestations, vendor reviews and report renewals, scheduled bundles, audit "
               "checkpoints, evidence requests), committee settings (capacity, effort per kind), staffing actions",
        window="from the start of the current ISO week (Monday 00:00 UTC) for `weeks` weeks",
        definitions={
            "weeks": "Forecast weeks: the current ISO week and the following weeks, `weeks` in all.",
            "capacity_hours_per_week": "Committee settings: owner-hours per week the owners can give obligations "
                                       "(40 by default while no settings are saved).",
            "settings": "stored when the org saved committee settings, defaults otherwise.",
            "total_needed_hours": "Sum over the forecast weeks of needed_hours.",
            "total_capacity_hours": "capacity_hours_per_week × weeks.",
            "utilisation_pct": "total_needed_hours / total_capacity_hours × 100 (one decimal).",
            "peak_week": "The forecast week with the most needed owner-hours (ties: the earlier week); empty when no "
                         "obligation falls in the horizon.",
            "peak_hours": "needed_hours of the peak week.",
            "peak_utilisation_pct": "peak_hours / capacity_hours_per_week × 100.",
            "shortfall_weeks": "Forecast weeks whose needed_hours exceed the capacity.",
            "total_shortfall_hours": "Sum over the forecast weeks of shortfall_hours.",
            "relief_hours": "Owner-hours of tracked or completed add_capacity, defer and consolidate staffing actions "
                            "for forecast weeks (rebalance actions move hours between owners and relieve nothing "
                            "here).",
            "weeks_still_short": "Forecast weeks whose residual_shortfall_hours is above zero.",
            "overdue_obligations": "Open obligations due before the current week: not in any week's figure (they "
                                   "are backlog, shown separately).",
            "overdue_hours": "Owner-hours of overdue_obligations.",
            "week": "Monday (UTC) of the forecast week.",
            "obligations": "Open obligations due in the week (Monday 00:00 to the next Monday, UTC).",
            "needed_hours": "Sum of those obligations' effort hours (effort per kind from committee settings).",
            "capacity_hours": "The committee's capacity_hours_per_week.",
            "utilisation_pct (per week)": "needed_hours / capacity_hours × 100 (one decimal).",
            "shortfall_hours": "max(0, needed_hours − capacity_hours).",
            "headroom_hours": "max(0, capacity_hours − needed_hours).",
            "shortfall": "True when shortfall_hours > 0.",
            "relief_hours (per week)": "Hours of the week's tracked/completed add_capacity, defer and consolidate "
                                       "staffing actions.",
            "residual_shortfall_hours": "max(0, needed_hours − capacity_hours − relief_hours).",
            "owners": "Distinct owners with an obligation due in the week.",
            "unassigned_hours": "Owner-hours of the week's obligations without an owner in the org.",
            "density_level": "ok / warn / critical: the week's open obligation count against the committee's "
                             "density thresholds.",
            "chart": "Stacked bars per week: hours within capacity and hours over it; the line is the capacity.",
        })
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    fc = cm.forecast(ctx.org_id, ctx.now, q.weeks)
    rows = cm.capacity_rows(fc, cm.relief_by_week(ctx.org_id, fc.weeks))
    cap = fc.capacity
    total = round(sum(r["needed_hours"] for r in rows), 2)
    peak = max(rows, key=lambda r: (r["needed_hours"], -r["week"].toordinal())) if rows else None
    if peak is not None and peak["needed_hours"] <= 0:
        peak = None
    overdue = [o for o in fc.items if o.due_at < fc.start]
    summary = {
        "weeks": q.weeks, "capacity_hours_per_week": cap, "settings": "stored" if fc.config.stored else "defaults",
        "total_needed_hours": total, "total_capacity_hours": round(cap * q.weeks, 2),
        "utilisation_pct": cm.pct(total, cap * q.weeks),
        "peak_week": peak["week"] if peak else None, "peak_hours": peak["needed_hours"] if peak else 0.0,
        "peak_utilisation_pct": peak["utilisation_pct"] if peak else 0.0,
        "shortfall_weeks": sum(1 for r in rows if r["shortfall"]),
        "total_shortfall_hours": round(sum(r["shortfall_hours"] for r in rows), 2),
        "relief_hours": round(sum(r["relief_hours"] for r in rows), 2),
        "weeks_still_short": sum(1 for r in rows if r["residual_shortfall_hours"] > 0),
        "overdue_obligations": len(overdue), "overdue_hours": round(sum(o.effort_hours for o in overdue), 2),
    }
    labels = [r["week"].isoformat() for r in rows]
    chart = Chart("capacity", "Owner-hours needed per week vs capacity", "bar", labels,
                  [Series("Within capacity", [min(r["needed_hours"], cap) for r in rows]),
                   Series("Over capacity", [r["shortfall_hours"] for r in rows])],
                  unit="owner-hours", stacked=True, threshold=cap, threshold_label=f"Capacity {cap:g} h/week",
                  description="Stacked bars per forecast week: owner-hours needed within the committee's capacity "
                              "and the shortfall above it; the horizontal line is the weekly capacity.")
    section = Section("weeks", "Weekly capacity budget", columns(
        "week", "obligations", ("needed_hours", "Needed (h)"), ("capacity_hours", "Capacity (h)"),
        ("utilisation_pct", "Utilisation %"), ("shortfall_hours", "Shortfall (h)"), ("headroom_hours", "Headroom (h)"),
        "shortfall", ("relief_hours", "Planned relief (h)"), ("residual_shortfall_hours", "Residual shortfall (h)"),
        "owners", ("unassigned_hours", "Unassigned (h)"), ("density_level", "Density level")), rows)
    return Report("committee-capacity-budget", "Committee capacity budget",
                  {"weeks": q.weeks, "from": fc.start, "to": fc.end}, summary, [section], ctx.now, charts=[chart])
