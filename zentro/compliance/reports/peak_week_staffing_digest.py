"""Peak-week staffing digest (preview): the forecast weeks where a capacity shortfall (committee-capacity-budget)
coincides with a load imbalance among owners (obligation-load-balancing), with the shortfall hours, the imbalance,
the relief the forecast suggests that nobody tracks yet, and the staffing actions already planned for those weeks.

Every figure comes from the helpers of the reports it combines (``_committee``: forecast, capacity rows, peak-week
balances; ``staffing_actions``: tracker rows and suggested relief), so the digest never disagrees with them."""
from __future__ import annotations

from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _committee as cm
from zentro.compliance.reports import staffing_actions as sa

PLANNED_STATUSES = ("proposed", "tracked", "completed")  # dismissed actions were decided against


def coincident_weeks(fc: cm.Forecast, capacity: list[dict],
                     balances: list[cm.WeekBalance]) -> list[tuple[dict, cm.WeekBalance]]:
    """(capacity row, week balance) of every forecast week with a shortfall whose owners are out of balance
    (some pool owner above the fair share), in week order."""
    by_week = {wb.week: wb for wb in balances}
    out = []
    for row in capacity:
        wb = by_week.get(row["week"])
        if row["shortfall"] and wb is not None and wb.overload(wb.before) > 0:
            out.append((row, wb))
    return out


@report("peak-week-staffing-digest", title="Peak-week staffing digest", category="Digests", query=ForecastQuery,
        summary="Forecast weeks where a capacity shortfall coincides with an owner load imbalance: the shortfall "
                "hours, the imbalance (most loaded owner, overload above the fair share), the relief suggested and "
                "not tracked yet, and the staffing actions already planned (JSON or CSV). Delivered weekly by "
                "e-mail, Slack and webhook; nothing is sent when no week coincides.",
        inputs="open obligations with owners and effort hours, committee settings (capacity, effort per kind), "
               "staffing actions",
        window="from the start of the current ISO week for `weeks` weeks",
        definitions={
            "weeks": "Forecast weeks: the current ISO week and the following weeks, `weeks` in all.",
            "capacity_hours_per_week": "Committee settings: owner-hours per week the owners can give obligations.",
            "shortfall_weeks": "committee-capacity-budget shortfall_weeks: forecast weeks whose needed owner-hours "
                               "exceed the capacity.",
            "imbalanced_weeks": "obligation-load-balancing peak weeks with overload_hours_before above zero (at "
                                "least one pool owner carries more than the week's fair share).",
            "coincident_weeks": "Weeks that are both a shortfall week and an imbalanced week: the digest's rows. "
                                "Zero means nothing is sent.",
            "first_week": "Monday of the earliest coincident week (empty when there is none).",
            "shortfall_hours": "Sum of the coincident weeks' shortfall_hours (needed − capacity).",
            "relief_hours": "Sum of the coincident weeks' relief_hours: tracked or completed add_capacity, defer and "
                            "consolidate staffing actions (committee-capacity-budget definition).",
            "residual_shortfall_hours": "Sum of the coincident weeks' residual_shortfall_hours (shortfall left "
                                        "after that relief).",
            "overload_hours": "Sum of the coincident weeks' overload_hours_before: hours owners carry above the "
                              "fair share, as assigned now.",
            "overload_hours_after": "The same once every rebalance suggestion is applied "
                                    "(obligation-load-balancing overload_hours_after).",
            "suggested_relief": "Rows of the Suggested relief section: relief for the coincident weeks that no "
                                "staffing action covers yet (staffing-actions `suggested` definition).",
            "suggested_relief_hours": "Sum of those rows' hours.",
            "planned_actions": "Staffing actions (proposed, tracked or completed) for the coincident weeks.",
            "week": "Monday (UTC) of the forecast week.",
            "obligations": "Open obligations due in the week.",
            "needed_hours": "Owner-hours of those obligations (effort per kind from committee settings).",
            "capacity_hours": "The committee's capacity_hours_per_week.",
            "utilisation_pct": "needed_hours / capacity_hours × 100 (one decimal).",
            "owners_with_load": "Pool owners with hours in the week.",
            "fair_share_hours": "The week's owner-hours (assigned and unassigned) / owners in the pool "
                                "(obligation-load-balancing definition).",
            "most_loaded_owner": "The pool owner with the most hours in the week (ties: e-mail).",
            "most_loaded_hours": "That owner's hours in the week.",
            "max_owner_share_pct": "most_loaded_hours / needed_hours × 100.",
            "unassigned_hours": "Owner-hours of the week's obligations without an owner in the org.",
            "overload_hours_before": "Sum over pool owners of max(0, owner hours − fair share) as assigned now.",
            "rebalance_moves": "Rebalance suggestions for the week (obligation-load-balancing).",
            "hours_to_move": "Effort hours of those suggestions.",
            "relief.kind": "rebalance (move or assign one obligation, from obligation-load-balancing) or "
                           "add_capacity (the week's shortfall, when no add_capacity, defer or consolidate action "
                           "exists for it).",
            "relief.owner": "The suggested owner (rebalance), empty for add_capacity.",
            "actions": "The staffing tracker's rows (staffing-actions) for the coincident weeks; dismissed ones "
                       "are left out.",
            "chart": "Stacked bars per coincident week: owner-hours within capacity and the shortfall above it; "
                     "the line is the capacity.",
        })
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    fc = cm.forecast(ctx.org_id, ctx.now, q.weeks)
    capacity = cm.capacity_rows(fc, cm.relief_by_week(ctx.org_id, fc.weeks))
    balances, _ = cm.balances(fc)
    found = coincident_weeks(fc, capacity, balances)
    weeks = {row["week"] for row, _ in found}
    pool = fc.pool()

    week_rows = []
    for row, wb in found:
        top = min(pool, key=lambda o: (-wb.before.get(o, 0.0), o))
        week_rows.append({
            "week": row["week"], "obligations": row["obligations"], "needed_hours": row["needed_hours"],
            "capacity_hours": row["capacity_hours"], "utilisation_pct": row["utilisation_pct"],
            "shortfall_hours": row["shortfall_hours"], "relief_hours": row["relief_hours"],
            "residual_shortfall_hours": row["residual_shortfall_hours"],
            "owners_with_load": sum(1 for o in pool if wb.before.get(o, 0.0) > 0),
            "fair_share_hours": wb.fair_share, "most_loaded_owner": top,
            "most_loaded_hours": wb.before.get(top, 0.0),
            "max_owner_share_pct": cm.pct(wb.before.get(top, 0.0), wb.hours),
            "unassigned_hours": row["unassigned_hours"],
            "overload_hours_before": wb.overload(wb.before), "overload_hours_after": wb.overload(wb.after),
            "rebalance_moves": len(wb.suggestions),
            "hours_to_move": round(sum(s["hours"] for s in wb.suggestions), 2)})

    rows_db, tracker = sa.action_rows(ctx.org_id, ctx.now, fc.config.completion_sla_days)
    relief = [s for s in sa.suggested_relief(fc, balances, rows_db) if s["week"] in weeks]
    planned = sorted((r for r in tracker if r["week"] in weeks and r["status"] in PLANNED_STATUSES),
                     key=lambda r: (r["week"], r["id"]))

    summary = {
        "weeks": q.weeks, "capacity_hours_per_week": fc.capacity,
        "shortfall_weeks": sum(1 for r in capacity if r["shortfall"]),
        "imbalanced_weeks": sum(1 for wb in balances if wb.overload(wb.before) > 0),
        "coincident_weeks": len(week_rows),
        "first_week": week_rows[0]["week"] if week_rows else None,
        "shortfall_hours": round(sum(r["shortfall_hours"] for r in week_rows), 2),
        "relief_hours": round(sum(r["relief_hours"] for r in week_rows), 2),
        "residual_shortfall_hours": round(sum(r["residual_shortfall_hours"] for r in week_rows), 2),
        "overload_hours": round(sum(r["overload_hours_before"] for r in week_rows), 2),
        "overload_hours_after": round(sum(r["overload_hours_after"] for r in week_rows), 2),
        "suggested_relief": len(relief),
        "suggested_relief_hours": round(sum(s["hours"] for s in relief), 2),
        "planned_actions": len(planned),
    }
    cap = fc.capacity
    charts = [Chart("shortfall", "Coincident weeks: owner-hours needed vs capacity", "bar",
                    [r["week"].isoformat() for r in week_rows],
                    [Series("Within capacity", [min(r["needed_hours"], cap) for r in week_rows]),
                     Series("Shortfall", [r["shortfall_hours"] for r in week_rows])],
                    unit="owner-hours", stacked=True, threshold=cap, threshold_label=f"Capacity {cap:g} h/week",
                    description="Stacked bars per coincident week: owner-hours within the committee's capacity and "
                                "the shortfall above it.")] if week_rows else []
    return Report(
        "peak-week-staffing-digest", "Peak-week staffing digest", {"weeks": q.weeks, "from": fc.start, "to": fc.end},
        summary,
        [Section("weeks", "Weeks with a shortfall and a load imbalance", columns(
            "week", "obligations", ("needed_hours", "Needed (h)"), ("capacity_hours", "Capacity (h)"),
            ("utilisation_pct", "Utilisation %"), ("shortfall_hours", "Shortfall (h)"),
            ("relief_hours", "Planned relief (h)"), ("residual_shortfall_hours", "Residual shortfall (h)"),
            "owners_with_load", ("fair_share_hours", "Fair share (h)"), "most_loaded_owner",
            ("most_loaded_hours", "Most loaded (h)"), ("max_owner_share_pct", "Largest owner share %"),
            ("unassigned_hours", "Unassigned (h)"), ("overload_hours_before", "Overload (h)"),
            ("overload_hours_after", "Overload after rebalance (h)"), "rebalance_moves",
            ("hours_to_move", "Hours to move")), week_rows),
         Section("relief", "Suggested relief, not tracked yet", columns(
             "week", "kind", "title", ("owner", "Suggested owner"), ("hours", "Hours"), "obligation", "source"),
             relief),
         Section("actions", "Staffing actions planned for these weeks", columns(
             "id", "week", "owner", "kind", "status", "title", ("hours", "Hours"), ("sla_due", "SLA due"),
             ("past_sla", "Past SLA")), planned)],
        ctx.now, charts=charts)
