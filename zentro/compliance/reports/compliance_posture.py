"""Compliance posture for a period: readiness per framework as of the period's end (optionally only some
frameworks), the gaps behind it, and the weekly readiness trend across the period.

Built on the evidence engine through ``_program.load`` (the same snapshot the executive summary, posture score and
KPI trends use): the evidence window is the period itself (its length in whole days, rounded up, ending at
``end``), and the trend is the engine's seven-day buckets ending at ``end`` covering the period (at most 52).
"""
from __future__ import annotations

import math

from pydantic import Field, field_validator

from zentro.compliance import engine
from zentro.compliance.report_registry import FRAMEWORK_LIST_PATTERN, ReportContext, _framework_list, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog
from zentro.compliance.reports.incident_summary import RangeQuery

MAX_TREND_WEEKS = 52
TOP_GAPS = 100  # gaps listed (worst first); every gap is counted in the summary and listed by gap-remediations


class PostureRangeQuery(RangeQuery):
    frameworks: str = Field("", max_length=300, pattern=FRAMEWORK_LIST_PATTERN,
                            description="Comma-separated framework slugs (soc2, iso27001, pci-dss ...; default: every "
                                        "framework).")

    @field_validator("frameworks")
    @classmethod
    def _known(cls, value: str) -> str:
        _framework_list(value)
        return value

    @property
    def framework_keys(self) -> list[str]:
        return _framework_list(self.frameworks)


@report("compliance-posture", title="Compliance posture", category="Program", query=PostureRangeQuery,
        formats=("json", "csv", "html", "markdown", "pdf"),
        summary="Compliance posture over a period: readiness per framework as of the period's end, its gaps worst "
                "first, and the weekly readiness trend across the period (JSON, CSV, HTML, Markdown or PDF).",
        inputs="the evidence engine (audit tags, policies, attestations, exceptions, vendor inheritance) for the "
               "selected frameworks, with its weekly trend",
        window="as of end (default now) with the period [start, end) as the evidence window (its length rounded up "
               "to whole days); trend: seven-day buckets ending at end covering the period (at most 52)",
        definitions={
            "readiness": "Control-weight-weighted mean score over every control of the selected frameworks, as of end.",
            "readiness_change": "readiness − the same figure at the end of the first trend week (points).",
            "frameworks": "Frameworks in the report.",
            "frameworks_passing": "Selected frameworks whose readiness is 70 or more.",
            "controls": "Controls of the selected frameworks.",
            "gaps": "Controls scoring under 70 as of end (the Gaps section lists the 100 with the most weight at risk).",
            "weight_at_risk": "Sum over gaps of weight × (70 − score).",
            "evidence_days": "Evidence window in days (the period's length, rounded up).",
            "trend_weeks": "Seven-day trend buckets ending at end.",
            "state": "passing ≥ 70, at_risk 40–69.9, failing < 40 (the engine's states).",
        })
def build(ctx: ReportContext) -> Report:
    q: PostureRangeQuery = ctx.query  # type: ignore[assignment]
    start, end = q.period(ctx.now)
    days = max(1, math.ceil((end - start).total_seconds() / 86400))
    weeks = min(MAX_TREND_WEEKS, max(1, math.ceil(days / 7)))
    program = prog.load(ctx.org_id, end, days, trend_weeks=weeks)
    keys = q.framework_keys or list(program.results)
    results = [program.results[k] for k in keys]
    readiness = prog.program_readiness(results)
    weights = prog.framework_weights(program.catalog)
    trend_rows = []
    tw = program.snap.trend
    for w in range(tw.weeks):
        trend_rows.append({"week_start": tw.week_start(w).date(), "assessed_at": tw.week_end(w),
                           "readiness": prog.weighted_readiness((weights[fr.key], fr.trend[w].readiness) for fr in results),
                           "passing_controls": sum(fr.trend[w].passing for fr in results),
                           "evidence_events": sum(fr.trend[w].evidence_events for fr in results)})
    gaps = sorted((g for fr in results for g in fr.gaps), key=lambda g: (-prog.weight_at_risk(g), g.tag))
    fw_rows = [{"framework": fr.key, "name": fr.name, "readiness": fr.readiness, "state": engine.state_for(fr.readiness),
                **fr.counts, "gaps": len(fr.gaps)} for fr in results]
    summary = {
        "readiness": readiness,
        "readiness_change": round(readiness - trend_rows[0]["readiness"], 1) if trend_rows else 0.0,
        "frameworks": len(results), "frameworks_passing": sum(fr.readiness >= engine.PASSING for fr in results),
        "controls": sum(len(fr.controls) for fr in results), "gaps": len(gaps),
        "weight_at_risk": round(sum(prog.weight_at_risk(g) for g in gaps), 1),
        "evidence_days": days, "trend_weeks": tw.weeks,
    }
    gap_rows = [{"control": g.tag, "framework": g.framework, "title": g.title, "score": g.score,
                 "band": prog.band_of(g.score), "weight_at_risk": prog.weight_at_risk(g), "reason": g.reason}
                for g in gaps[:TOP_GAPS]]
    notes = [f"{len(gaps)} gaps in total; the {TOP_GAPS} with the most weight at risk are listed (the gap-remediations "
             "report lists every one)."] if len(gaps) > TOP_GAPS else []
    labels = [r["week_start"].isoformat() for r in trend_rows]
    bands = [b[0] for b in prog.BANDS]
    charts = [
        Chart("readiness", "Readiness by framework", "bar", [fr.key for fr in results],
              [Series("readiness", [fr.readiness for fr in results])], unit="0-100", threshold=float(engine.PASSING),
              threshold_label="passing (70)", description="Each framework's readiness as of the period's end."),
        Chart("trend", "Readiness per week", "line", labels,
              [Series("selected frameworks", [r["readiness"] for r in trend_rows])]
              + [Series(fr.key, [p.readiness for p in fr.trend]) for fr in results] if len(results) > 1 else
              [Series(results[0].key if results else "readiness", [r["readiness"] for r in trend_rows])],
              unit="0-100", threshold=float(engine.PASSING), threshold_label="passing (70)",
              description="Readiness at the end of each seven-day bucket of the period."),
        Chart("gaps", "Gaps by framework and severity band", "bar", [fr.key for fr in results],
              [Series(band, [float(sum(prog.band_of(g.score) == band for g in fr.gaps)) for fr in results])
               for band in bands], unit="controls", stacked=True,
              description="Controls under 70 per framework, by score band (critical 0–24, high 25–39, medium "
                          "40–54, low 55–69)."),
    ]
    params = {"start": start, "end": end, "frameworks": [fr.name for fr in results] if q.framework_keys else "all"}
    return Report(
        "compliance-posture", "Compliance posture", params, summary,
        [Section("frameworks", "Frameworks", columns("name", "readiness", "state", "passing", ("at_risk", "At risk"),
                                                     "failing", "gaps"), fw_rows),
         Section("gaps", f"Gaps (worst first{f', top {TOP_GAPS}' if len(gaps) > TOP_GAPS else ''})", columns("control", "title", "score", "band",
                                                       ("weight_at_risk", "Weight at risk"), "reason"), gap_rows),
         Section("trend", "Weekly trend", columns(("week_start", "Week start"), ("assessed_at", "Assessed at"),
                                                  "readiness", ("passing_controls", "Passing controls"),
                                                  ("evidence_events", "Evidence events")), trend_rows)],
        ctx.now, charts=charts, notes=notes)
