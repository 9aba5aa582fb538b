"""Quarterly obligation committee digest (preview): the obligation forecast for the quarter ahead, the crossover
clusters due in it and the staffing SLA rollup of the quarter behind, in one report. Each part is the existing
report built at the same moment (``report_registry.build``), so every figure is that report's own."""
from __future__ import annotations

from zentro.compliance import report_registry as registry
from zentro.compliance.report_registry import ReportContext, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.compliance.reports.obligation_crossover import CrossoverQuery

PARTS = (
    ("obligation-forecast", "Obligation forecast"),
    ("obligation-crossover", "Obligation crossover"),
    ("staffing-completion-rollup", "Staffing SLA rollup"),
)


def compose(ctx: ReportContext) -> dict[str, Report]:
    """The three parts for the org at ``ctx.now``: the forecast and crossover over ``weeks``, the staffing
    rollup over the ``weeks`` × 7 days behind (the quarter just ended, at the default 13 weeks)."""
    q: CrossoverQuery = ctx.query  # type: ignore[assignment]
    return {
        "obligation-forecast": registry.build("obligation-forecast", ctx.org_id, ctx.now, weeks=q.weeks),
        "obligation-crossover": registry.build("obligation-crossover", ctx.org_id, ctx.now, weeks=q.weeks,
                                               windowDays=q.window_days),
        "staffing-completion-rollup": registry.build("staffing-completion-rollup", ctx.org_id, ctx.now,
                                                     periodDays=q.weeks * 7),
    }


def quarter(ctx: ReportContext) -> str:
    now = ctx.now
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


@report("committee-digest", title="Quarterly obligation committee digest", category="Digests",
        query=CrossoverQuery, formats=("json", "csv", "html"),
        summary="The quarter in one preview for the obligation committee: the obligation forecast (13 weeks by "
                "default) against density thresholds and capacity, the crossover clusters whose consolidation "
                "saves hours, and the staffing SLA rollup of the quarter behind (JSON, CSV or printable HTML). "
                "Delivered quarterly by e-mail (and webhook) to the committee.",
        inputs="the obligation-forecast, obligation-crossover and staffing-completion-rollup reports (each with "
               "its own inputs), built at the same moment",
        window="forecast and crossover from the start of the current ISO week for `weeks` weeks; staffing "
               "completions over the last `weeks` × 7 days",
        definitions={
            "quarter": "The calendar quarter (UTC) the digest is built in, e.g. 2026-Q1: its idempotency period.",
            "forecast_obligations": "obligation-forecast obligations: open obligations due in the horizon.",
            "forecast_owner_hours": "obligation-forecast owner_hours.",
            "overdue_open": "obligation-forecast overdue_open: open obligations due before the current week.",
            "peak_week": "obligation-forecast peak_week: the week with the most obligations due.",
            "peak_count": "obligation-forecast peak_count.",
            "peak_level": "obligation-forecast peak_level (ok / warn / critical).",
            "weeks_warn": "obligation-forecast weeks_warn.",
            "weeks_critical": "obligation-forecast weeks_critical.",
            "weeks_over_capacity": "obligation-forecast weeks_over_capacity.",
            "crossover_clusters": "obligation-crossover clusters: clusters whose anchor is due in the horizon.",
            "crossover_hours_saved": "obligation-crossover hours_saved: hours one consolidated evidence pull per "
                                     "cluster would save.",
            "largest_cluster": "obligation-crossover largest_cluster.",
            "staffing_period_days": "The staffing rollup period: weeks × 7 days, ending now.",
            "staffing_completed": "staffing-completion-rollup completed_in_period.",
            "staffing_on_time_rate_pct": "staffing-completion-rollup on_time_rate_pct.",
            "staffing_completion_rate_pct": "staffing-completion-rollup completion_rate_pct (all time).",
            "staffing_open": "staffing-completion-rollup open.",
            "staffing_past_sla": "staffing-completion-rollup past_sla: open actions past the completion SLA.",
            "forecast": "The obligation-forecast weekly density rows (see that report's definitions).",
            "milestones": "The obligation-forecast audit-checkpoint milestones.",
            "clusters": "The obligation-crossover clusters (see that report's definitions).",
            "staffing": "The staffing-completion-rollup per-owner rows (see that report's definitions).",
            "headlines": "Every scalar headline figure of each part, as that part defines it.",
        })
def build(ctx: ReportContext) -> Report:
    q: CrossoverQuery = ctx.query  # type: ignore[assignment]
    parts = compose(ctx)
    fc, xo, roll = (parts[s].summary for s, _ in PARTS)
    summary = {
        "quarter": quarter(ctx),
        "forecast_obligations": fc["obligations"], "forecast_owner_hours": fc["owner_hours"],
        "overdue_open": fc["overdue_open"], "peak_week": fc["peak_week"], "peak_count": fc["peak_count"],
        "peak_level": fc["peak_level"], "weeks_warn": fc["weeks_warn"], "weeks_critical": fc["weeks_critical"],
        "weeks_over_capacity": fc["weeks_over_capacity"],
        "crossover_clusters": xo["clusters"], "crossover_hours_saved": xo["hours_saved"],
        "largest_cluster": xo["largest_cluster"],
        "staffing_period_days": roll["period_days"], "staffing_completed": roll["completed_in_period"],
        "staffing_on_time_rate_pct": roll["on_time_rate_pct"],
        "staffing_completion_rate_pct": roll["completion_rate_pct"], "staffing_open": roll["open"],
        "staffing_past_sla": roll["past_sla"],
    }
    headlines = [{"part": title, "report": slug, "figure": k, "value": v}
                 for slug, title in PARTS for k, v in parts[slug].summary.items()
                 if not isinstance(v, (dict, list, tuple))]

    def reuse(key: str, title: str, slug: str, section: str) -> Section:
        s = parts[slug].section(section)
        return Section(key, title, s.columns, list(s.iter_rows()))

    return Report(
        "committee-digest", "Quarterly obligation committee digest",
        {"weeks": q.weeks, "windowDays": q.window_days, **{k: v for k, v in parts["obligation-forecast"].params.items()
                                                          if k in ("from", "to")}},
        summary,
        [reuse("forecast", "Obligation forecast (weekly density)", "obligation-forecast", "weeks"),
         reuse("milestones", "Committee milestones (audit checkpoints)", "obligation-forecast", "milestones"),
         reuse("clusters", "Crossover clusters", "obligation-crossover", "clusters"),
         reuse("staffing", "Staffing SLA rollup by owner", "staffing-completion-rollup", "owners"),
         Section("headlines", "Headline figures of each part", columns("part", "figure", "value", "report"),
                 headlines)],
        ctx.now, charts=list(parts["obligation-forecast"].charts))
