"""Board obligation what-if: the weekly forecast recomputed with obligations shifted by some weeks and/or
frameworks descoped, side by side with the live baseline."""
from __future__ import annotations

import datetime as dt

from zentro.compliance import obligations as obl
from zentro.compliance.report_registry import ReportContext, WhatIfQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _obligation_views as views


@report("obligation-whatif", title="Obligation what-if", category="Obligations", query=WhatIfQuery,
        summary="Board obligation what-if: stress-test the weekly forecast by shifting obligations (all, or one kind) "
                "by some weeks or descoping frameworks, side by side with the baseline (JSON or CSV).",
        inputs="the open obligations (as in obligation-forecast) and committee settings",
        window="from the start of the current ISO week for `weeks` weeks; the scenario is applied before bucketing, "
               "so shifted obligations may enter or leave the horizon",
        definitions={
            "scenario": "The parameters applied: shiftWeeks, shiftKind (all kinds when empty) and descope.",
            "baseline_obligations": "Open obligations due inside the horizon as things stand.",
            "scenario_obligations": "Open obligations due inside the horizon after descoping and shifting.",
            "baseline_hours": "Owner-hours of baseline_obligations.",
            "scenario_hours": "Owner-hours of scenario_obligations.",
            "baseline_peak_week": "Baseline week with the most obligations (ties: more hours, then earlier).",
            "baseline_peak_count": "Obligations due in the baseline peak week.",
            "scenario_peak_week": "Scenario week with the most obligations (same tie rule).",
            "scenario_peak_count": "Obligations due in the scenario peak week.",
            "peak_change": "scenario_peak_count - baseline_peak_count (negative = the scenario flattens the peak).",
            "weeks_over_warn_before": "Baseline weeks at or above density_warn (warn or critical).",
            "weeks_over_warn_after": "Scenario weeks at or above density_warn (warn or critical).",
            "weeks_over_critical_before": "Baseline weeks at or above density_critical.",
            "weeks_over_critical_after": "Scenario weeks at or above density_critical.",
            "descoped_obligations": "Open obligations due inside the horizon that descoping removes: every one of "
                                    "their frameworks is descoped (program-wide obligations such as bundles stay).",
            "hours_removed_by_descoping": "Owner-hours of descoped_obligations (at their unshifted due dates).",
            "shifted_obligations": "Open obligations (after descoping) moved by shiftWeeks: all, or those of "
                                   "shiftKind; 0 when shiftWeeks is 0.",
            "weeks.baseline_count": "Baseline obligations due in the week.",
            "weeks.scenario_count": "Scenario obligations due in the week.",
            "weeks.delta_count": "scenario_count - baseline_count.",
            "weeks.baseline_hours": "Baseline owner-hours due in the week.",
            "weeks.scenario_hours": "Scenario owner-hours due in the week.",
            "weeks.baseline_level": "ok / warn / critical for the baseline count against the committee thresholds.",
            "weeks.scenario_level": "ok / warn / critical for the scenario count.",
            "comparison chart": "Lines: obligations due per week, baseline and scenario; the reference line is "
                                "the warn threshold.",
        })
def build(ctx: ReportContext) -> Report:
    q: WhatIfQuery = ctx.query  # type: ignore[assignment]
    config = obl.committee_config(ctx.org_id)
    weeks, start, end = views.horizon(ctx.now, q.weeks)
    # a negative shift pulls obligations due up to |shiftWeeks| weeks after the horizon into it
    until = end + dt.timedelta(weeks=max(0, -q.shift_weeks))
    base_items = obl.open_only(obl.load(ctx.org_id, ctx.now, config=config, until=until))
    descoped = q.descoped
    kept = obl.descoped(base_items, descoped) if descoped else list(base_items)
    kept_keys = {o.key for o in kept}
    dropped = [o for o in base_items if o.key not in kept_keys and start <= o.due_at < end]
    moved = 0
    scenario_items = []
    for o in kept:
        if q.shift_weeks and (q.shift_kind is None or o.kind == q.shift_kind):
            scenario_items.append(obl.shifted(o, q.shift_weeks))
            moved += 1
        else:
            scenario_items.append(o)
    base = views.forecast_weeks(base_items, weeks, config)
    scen = views.forecast_weeks(scenario_items, weeks, config)
    bp, sp = views.peak(base), views.peak(scen)
    warn = ("warn", "critical")
    rows = [{"week": b.week, "baseline_count": b.count, "scenario_count": s.count, "delta_count": s.count - b.count,
             "baseline_hours": b.hours, "scenario_hours": s.hours, "baseline_level": b.level,
             "scenario_level": s.level} for b, s in zip(base, scen)]
    labels = [w.isoformat() for w in weeks]
    chart = Chart("comparison", "Baseline vs scenario: obligations due per week", "line", labels,
                  [Series("Baseline", [b.count for b in base]), Series("Scenario", [s.count for s in scen])],
                  unit="obligations", threshold=config.density_warn,
                  threshold_label=f"warn threshold ({config.density_warn})",
                  description="Obligations due per week before and after the scenario, against the warn threshold.")
    summary = {
        "scenario": {"shiftWeeks": q.shift_weeks, "shiftKind": q.shift_kind or "", "descope": descoped},
        "baseline_obligations": sum(b.count for b in base), "scenario_obligations": sum(s.count for s in scen),
        "baseline_hours": round(sum(b.hours for b in base), 1), "scenario_hours": round(sum(s.hours for s in scen), 1),
        "baseline_peak_week": bp.week if bp and bp.count else None, "baseline_peak_count": bp.count if bp else 0,
        "scenario_peak_week": sp.week if sp and sp.count else None, "scenario_peak_count": sp.count if sp else 0,
        "peak_change": (sp.count if sp else 0) - (bp.count if bp else 0),
        "weeks_over_warn_before": sum(1 for b in base if b.level in warn),
        "weeks_over_warn_after": sum(1 for s in scen if s.level in warn),
        "weeks_over_critical_before": sum(1 for b in base if b.level == "critical"),
        "weeks_over_critical_after": sum(1 for s in scen if s.level == "critical"),
        "descoped_obligations": len(dropped),
        "hours_removed_by_descoping": round(float(sum(o.effort_hours for o in dropped)), 1),
        "shifted_obligations": moved,
    }
    params = {"weeks": q.weeks, "shiftWeeks": q.shift_weeks, "shiftKind": q.shift_kind, "descope": descoped,
              "from": start, "to": end}
    return Report("obligation-whatif", "Obligation what-if", params, summary,
                  [Section("weeks", "Baseline vs scenario per week",
                           columns("week", ("baseline_count", "Baseline"), ("scenario_count", "Scenario"),
                                   ("delta_count", "Delta"), ("baseline_hours", "Baseline hours"),
                                   ("scenario_hours", "Scenario hours"), ("baseline_level", "Baseline level"),
                                   ("scenario_level", "Scenario level")), rows),
                   Section("descoped", "Obligations removed by descoping",
                           columns("due", "kind", "title", "frameworks", "owner", ("effort_hours", "Effort (h)"),
                                   "key"),
                           [{"due": o.due_at.date(), "kind": o.kind, "title": o.title,
                             "frameworks": list(o.frameworks), "owner": o.owner, "effort_hours": o.effort_hours,
                             "key": o.key} for o in dropped])],
                  ctx.now, charts=[chart])
