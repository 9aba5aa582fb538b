"""Unified compliance posture score: one 0-100 figure blending readiness, attestation health, vendor health, gap
pressure and risk with documented weights, its components and its weekly trend."""
from __future__ import annotations

from pydantic import Field

from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog


class PostureQuery(PeriodQuery):
    weeks: int = Field(12, ge=1, le=26, description="Trend length: seven-day buckets ending today (1-26).")


W = prog.POSTURE_WEIGHTS


@report("posture-score", title="Compliance posture score", category="Program", query=PostureQuery,
        summary="Unified compliance posture score (0-100) blending program readiness, attestation health, vendor "
                "health, gap pressure and risk, with the components, their weights and the weekly trend (JSON or CSV).",
        inputs="the evidence engine over every framework (with its weekly trend), attestations, vendors, exceptions",
        window="as of now (evidence window periodDays ending now); trend: `weeks` seven-day buckets ending today, each "
               "assessed at its last instant",
        definitions={
            "score": f"Σ weight × component over the applicable components, divided by the sum of their weights. "
                     f"Weights: readiness {W['readiness']}, attestations {W['attestations']}, vendors {W['vendors']}, "
                     f"gap_pressure {W['gap_pressure']}, risk {W['risk']}. A component with nothing to measure (no "
                     "attestations, no vendors) is left out and the others' weights are rescaled.",
            "readiness": "Program readiness: control-weight-weighted mean score over every control of every framework "
                         "(0-100).",
            "attestations": "Attestation health: 100 × attestations attested and still valid / all attestation rows "
                            "(rejected, assigned, overdue and expired ones count against it); null with none.",
            "vendors": "Vendor health: 100 × vendors whose report is in force (valid or expiring, not expired, not "
                       "missing) and whose next review is not past / all vendors; null with none.",
            "gap_pressure": "100 × (1 − gaps / controls) over every framework (a gap scores under 70).",
            "risk": "max(0, 100 − 10 × open exceptions − 10 × vendors with an expired report).",
            "band": "strong ≥ 80, fair 60–79.9, weak 40–59.9, poor < 40.",
            "change": "score now − score of the first trend week (points).",
            "weeks": "Trend weeks (seven-day buckets ending today).",
            "effective_weight": "The component's weight after leaving out non-applicable components (sums to 1).",
            "contribution": "effective_weight × value: the points the component adds to the score.",
            "trend": "Each week re-derives every component at the week's end: readiness and gaps from the engine's "
                     "weekly control scores, attestations, exceptions and vendor reports from their dates. Vendor "
                     "reviews use the current next-review date (review history is not kept).",
        })
def build(ctx: ReportContext) -> Report:
    q: PostureQuery = ctx.query  # type: ignore[assignment]
    program = prog.load(ctx.org_id, ctx.now, q.period_days, trend_weeks=q.weeks)
    comps = prog.posture_now(program)
    score = prog.posture_score(comps)
    trend = prog.posture_trend(program)
    first = trend[0]["score"] if trend else score
    rows = [{"component": c.key, "label": c.label, "value": c.value, "weight": c.weight,
             "effective_weight": c.effective_weight(comps),
             "contribution": round(c.effective_weight(comps) * c.value, 1) if c.value is not None else None,
             "basis": c.basis} for c in comps]
    band = "strong" if score >= 80 else "fair" if score >= 60 else "weak" if score >= 40 else "poor"
    summary = {"score": score, "band": band, **{c.key: c.value for c in comps},
               "change": round(score - first, 1), "weeks": q.weeks}
    labels = [t["week_start"].date().isoformat() for t in trend]
    charts = [
        Chart("trend", "Posture score per week", "line", labels,
              [Series("score", [t["score"] for t in trend]), Series("readiness", [t["readiness"] for t in trend])],
              unit="0-100", threshold=80.0, threshold_label="strong (80)",
              description="Weekly posture score and program readiness over the trend weeks."),
        Chart("components", "Posture components now", "bar", [c.label for c in comps],
              [Series("value", [c.value if c.value is not None else 0.0 for c in comps])], unit="0-100",
              description="Each component's value now (non-applicable components shown as 0)."),
    ]
    return Report(
        "posture-score", "Compliance posture score", {"periodDays": q.period_days, "weeks": q.weeks, "as_of": ctx.now},
        summary,
        [Section("components", "Components", columns("component", "label", "value", "weight",
                                                     ("effective_weight", "Effective weight"), "contribution",
                                                     "basis"), rows),
         Section("weights", "Weights", columns("component", "weight"),
                 [{"component": k, "weight": v} for k, v in W.items()]),
         Section("trend", "Weekly trend", columns(("week_start", "Week start"), ("assessed_at", "Assessed at"),
                                                  "score", "readiness", "attestations", "vendors",
                                                  ("gap_pressure", "Gap pressure"), "risk"), trend)],
        ctx.now, charts=charts)
