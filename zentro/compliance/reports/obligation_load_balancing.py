"""Obligation owner load balancing: for the forecast's peak weeks, each owner's slice of the week's owner-hours
(the RACI "responsible" load), unassigned load, and deterministic rebalance suggestions."""
from __future__ import annotations

from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _committee as cm

MAX_CHART_OWNERS = 8


@report("obligation-load-balancing", title="Obligation load balancing", category="Committee & staffing",
        query=ForecastQuery,
        summary="Peak-week owner load slices (hours, count and share per owner), unassigned load and concrete "
                "rebalance suggestions that move obligations from overloaded owners to the least loaded (JSON or "
                "CSV).",
        inputs="open obligations with their owners and effort hours, committee settings (capacity, effort per kind)",
        window="from the start of the current ISO week for `weeks` weeks; peak weeks within it",
        definitions={
            "weeks": "Forecast weeks: the current ISO week and the following weeks, `weeks` in all.",
            "peak_weeks": "Forecast weeks whose needed owner-hours exceed the committee capacity; when none does, "
                          "the three weeks with the most owner-hours (ties: the earlier week; weeks without load are "
                          "left out).",
            "basis": "over_capacity (peak weeks are over capacity), top_by_hours (none is; the top three), or none "
                     "(no obligation in the horizon).",
            "owners_in_pool": "Distinct owners (org members) with at least one open obligation due in the forecast "
                              "horizon: the people load can move between.",
            "peak_hours": "Owner-hours of all obligations due in the peak weeks.",
            "unassigned_hours": "Owner-hours of peak-week obligations without an owner who is an org member.",
            "suggestions": "Rebalance suggestions over the peak weeks (one per obligation moved or assigned).",
            "hours_to_move": "Sum of the suggested obligations' effort hours.",
            "overload_hours_before": "Sum over peak weeks and pool owners of max(0, owner hours − fair share) as "
                                     "assigned now (unassigned hours not counted).",
            "overload_hours_after": "The same after applying every suggestion.",
            "fair_share_hours": "A peak week's owner-hours (assigned and unassigned) / owners_in_pool.",
            "share_pct": "The owner's hours / the week's owner-hours × 100.",
            "above_fair_share": "The owner's hours exceed the week's fair share.",
            "hours_after": "The owner's hours that week once the suggestions are applied.",
            "algorithm": "Per peak week, greedy and deterministic: (1) each unassigned obligation, largest effort "
                         "first (then key), goes to the owner with the fewest hours that week (ties: email); (2) "
                         "repeatedly, the most loaded owner above the fair share (ties: email) gives the least loaded "
                         "owner (ties: email) the obligation whose effort h is closest to half their gap, among those "
                         "with h smaller than the gap (ties: larger h, then key), so every move narrows the gap; if "
                         "the most loaded owner has nothing that fits, the next owner above the fair share is tried. "
                         "An obligation moves at most once; the loop stops when nothing more can move.",
            "from / to": "The current owner (or (unassigned)) and the suggested owner; from_hours_after and "
                         "to_hours_after are their week's hours right after that move.",
            "chart": "Stacked bars per peak week: hours per owner (the 8 largest, then others) and unassigned.",
        })
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    fc = cm.forecast(ctx.org_id, ctx.now, q.weeks)
    weeks, basis = cm.balances(fc)
    pool = fc.pool()
    cap = fc.capacity
    week_rows, slice_rows, suggestion_rows = [], [], []
    for wb in weeks:
        unassigned = wb.before.get(cm.UNASSIGNED, 0.0)
        owners_loaded = [o for o in pool if wb.before.get(o, 0.0) > 0]
        week_rows.append({
            "week": wb.week, "hours": wb.hours, "capacity_hours": cap, "over_capacity": wb.hours > cap,
            "obligations": sum(wb.counts.values()), "owners_with_load": len(owners_loaded),
            "fair_share_hours": wb.fair_share, "unassigned_hours": unassigned,
            "max_owner_share_pct": max((cm.pct(wb.before.get(o, 0.0), wb.hours) for o in pool), default=0.0),
            "overload_hours_before": wb.overload(wb.before), "overload_hours_after": wb.overload(wb.after),
            "suggestions": len(wb.suggestions)})
        for owner in sorted(wb.before, key=lambda o: (o == cm.UNASSIGNED, -wb.before[o], o)):
            hours = wb.before[owner]
            if hours <= 0 and wb.after.get(owner, 0.0) <= 0:
                continue
            slice_rows.append({
                "week": wb.week, "owner": owner, "obligations": wb.counts.get(owner, 0), "hours": hours,
                "share_pct": cm.pct(hours, wb.hours), "fair_share_hours": wb.fair_share,
                "above_fair_share": owner != cm.UNASSIGNED and hours > wb.fair_share,
                "hours_after": wb.after.get(owner, 0.0)})
        suggestion_rows.extend(wb.suggestions)
    totals: dict[str, float] = {}
    for r in slice_rows:
        if r["owner"] != cm.UNASSIGNED:
            totals[r["owner"]] = totals.get(r["owner"], 0.0) + r["hours"]
    top = sorted(totals, key=lambda o: (-totals[o], o))[:MAX_CHART_OWNERS]
    labels = [wb.week.isoformat() for wb in weeks]
    series = [Series(o, [wb.before.get(o, 0.0) for wb in weeks]) for o in top]
    rest = [o for o in totals if o not in top]
    if rest:
        series.append(Series("others", [round(sum(wb.before.get(o, 0.0) for o in rest), 2) for wb in weeks]))
    if any(wb.before.get(cm.UNASSIGNED, 0.0) for wb in weeks):
        series.append(Series(cm.UNASSIGNED, [wb.before.get(cm.UNASSIGNED, 0.0) for wb in weeks]))
    charts = [Chart("slices", "Owner load in the peak weeks", "bar", labels, series, unit="owner-hours", stacked=True,
                    threshold=cap, threshold_label=f"Capacity {cap:g} h/week",
                    description="Stacked bars per peak week: owner-hours each owner carries, plus unassigned hours; "
                                "the line is the committee's weekly capacity.")] if weeks else []
    summary = {
        "weeks": q.weeks, "basis": basis, "peak_weeks": len(weeks), "owners_in_pool": len(pool),
        "peak_hours": round(sum(wb.hours for wb in weeks), 2),
        "unassigned_hours": round(sum(wb.before.get(cm.UNASSIGNED, 0.0) for wb in weeks), 2),
        "suggestions": len(suggestion_rows),
        "hours_to_move": round(sum(s["hours"] for s in suggestion_rows), 2),
        "overload_hours_before": round(sum(r["overload_hours_before"] for r in week_rows), 2),
        "overload_hours_after": round(sum(r["overload_hours_after"] for r in week_rows), 2),
    }
    return Report(
        "obligation-load-balancing", "Obligation load balancing", {"weeks": q.weeks, "from": fc.start, "to": fc.end},
        summary,
        [Section("peak_weeks", "Peak weeks", columns(
            "week", ("hours", "Owner-hours"), ("capacity_hours", "Capacity (h)"), "over_capacity", "obligations",
            "owners_with_load", ("fair_share_hours", "Fair share (h)"), ("unassigned_hours", "Unassigned (h)"),
            ("max_owner_share_pct", "Largest owner share %"), ("overload_hours_before", "Overload before (h)"),
            ("overload_hours_after", "Overload after (h)"), "suggestions"), week_rows),
         Section("slices", "Owner load slices", columns(
             "week", "owner", "obligations", ("hours", "Hours"), ("share_pct", "Share %"),
             ("fair_share_hours", "Fair share (h)"), "above_fair_share", ("hours_after", "Hours after rebalance")),
             slice_rows),
         Section("suggestions", "Rebalance suggestions", columns(
             "week", "obligation", "title", "kind", "due", ("hours", "Hours"), "from", "to",
             ("from_hours_after", "From: hours after"), ("to_hours_after", "To: hours after")), suggestion_rows)],
        ctx.now, charts=charts)
