"""Leadership control health scorecard: per framework readiness and state, controls inherited from vendors with a
report in force, gap closure over the window, and a RAG status per row with stated thresholds."""
from __future__ import annotations

import datetime as dt

from zentro.compliance import engine
from zentro.compliance.report_registry import ReportContext, WindowQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog

RAG_ORDER = {"green": 0, "amber": 1, "red": 2}
THRESHOLDS = {
    "readiness": "green ≥ 70, amber 40–69.9, red < 40 (the engine's passing / at-risk lines)",
    "inherited_coverage": "green = 100 % or no inherited controls, amber ≥ 50 %, red < 50 %",
    "readiness_change": "green ≥ 0, amber −5 to −0.1, red < −5 points over the window",
}


def rag_readiness(value: float) -> str:
    return "green" if value >= 70 else "amber" if value >= 40 else "red"


def rag_coverage(value: float | None) -> str:
    return "green" if value is None or value >= 100 else "amber" if value >= 50 else "red"


def rag_change(value: float) -> str:
    return "green" if value >= 0 else "amber" if value >= -5 else "red"


def worst(*rags: str) -> str:
    return max(rags, key=lambda r: RAG_ORDER[r])


@report("control-health-scorecard", title="Control health scorecard", category="Program", query=WindowQuery,
        summary="Leadership control health scorecard: per framework readiness and state, controls inherited from "
                "vendors with a report in force, gap closure over the window, and a RAG status per row (JSON or CSV).",
        inputs="the evidence engine now and at the window start, vendors and their inherited controls, gap "
               "remediation rows",
        window="the look-back `window` ending now: readiness now vs as of the window start; remediations closed "
               "inside the window",
        definitions={
            "frameworks": "Catalog frameworks scored (one row each).",
            "green": "Frameworks whose overall RAG is green: the worst of the readiness, inherited coverage and "
                     "readiness change RAGs (thresholds in `thresholds`).",
            "amber": "Frameworks whose overall RAG is amber.",
            "red": "Frameworks whose overall RAG is red.",
            "thresholds.<figure>": "The RAG thresholds of each figure, as stated.",
            "program_readiness": "Control-weight-weighted mean score over every control of every framework, now.",
            "program_change": "program_readiness now − as of the window start (points).",
            "readiness": "The framework's weight-weighted mean control score now; state: passing ≥ 70, at_risk "
                         "40–69.9, failing < 40.",
            "readiness_change": "Readiness now − readiness as of the window start (same arithmetic, evidence and "
                                "registers as they stood then).",
            "inherited_controls": "Controls of the framework that some vendor inherits (by the vendor rules); in the "
                                  "summary, over every framework.",
            "inherited_covered": "Of those, controls with at least one inheriting vendor whose report has not expired "
                                 "now (what the engine counts as inherited evidence).",
            "inherited_coverage": "100 × inherited_covered / inherited_controls (null with no inherited controls).",
            "gaps": "Controls scoring under 70 now; gaps_at_start: as of the window start.",
            "gaps_resolved": "Controls that were gaps at the window start and are not now (the engine's assessment "
                             "at both moments); in the summary, over every framework.",
            "remediations_closed": "Gap remediation rows of the framework's controls set to done inside the window "
                                   "(closed_at in [now − window, now]); in the summary, over every framework.",
            "rag_reason": "Which figures pulled the row below green.",
        })
def build(ctx: ReportContext) -> Report:
    q: WindowQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    start = now - dt.timedelta(days=q.days)
    program = prog.load(ctx.org_id, now, q.days, with_prior=True)
    baselines, registers, remediations = program.baselines, program.registers, program.remediations
    closed_by_fw: dict[str, int] = {}
    for r in remediations:
        if r.status == "done" and r.closed_at is not None and start <= r.closed_at <= now:
            fw = r.control.split(":", 1)[0]
            closed_by_fw[fw] = closed_by_fw.get(fw, 0) + 1
    rows = []
    all_inherited, all_covered = set(), set()
    for b in baselines:
        cur, old = b.current, b.prior
        tags = {c.tag for c in cur.controls}
        inherited = {t for t in tags if registers.vendors_by_tag.get(t)}
        covered = {t for t in inherited if any(v.valid_at(now) for v in registers.vendors_by_tag[t])}
        all_inherited |= inherited
        all_covered |= covered
        coverage = prog.pct(len(covered), len(inherited)) if inherited else None
        gaps_now = {g.tag for g in cur.gaps}
        gaps_then = {g.tag for g in old.gaps}
        rags = {"readiness": rag_readiness(cur.readiness), "inherited_coverage": rag_coverage(coverage),
                "readiness_change": rag_change(b.delta)}
        rag = worst(*rags.values())
        reason = "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in rags.items() if v != "green") or "all green"
        rows.append({"framework": b.key, "name": b.name, "readiness": cur.readiness, "state": engine.state_for(cur.readiness),
                     "readiness_at_start": old.readiness, "readiness_change": b.delta,
                     "inherited_controls": len(inherited), "inherited_covered": len(covered),
                     "inherited_coverage": coverage, "gaps": len(gaps_now), "gaps_at_start": len(gaps_then),
                     "gaps_resolved": len(gaps_then - gaps_now), "remediations_closed": closed_by_fw.get(b.key, 0),
                     "readiness_rag": rags["readiness"], "inherited_rag": rags["inherited_coverage"],
                     "change_rag": rags["readiness_change"], "rag": rag, "rag_reason": reason})
    cur_ready = prog.program_readiness(b.current for b in baselines)
    old_ready = prog.program_readiness(b.prior for b in baselines)
    summary = {"frameworks": len(rows), **{r: sum(row["rag"] == r for row in rows) for r in RAG_ORDER},
               "program_readiness": cur_ready, "program_change": round(cur_ready - old_ready, 1),
               "gaps_resolved": sum(r["gaps_resolved"] for r in rows),
               "remediations_closed": sum(closed_by_fw.values()),
               "inherited_controls": len(all_inherited), "inherited_covered": len(all_covered),
               "thresholds": dict(THRESHOLDS)}
    chart = Chart("readiness", "Readiness now and at the window start", "bar", [r["framework"] for r in rows],
                  [Series("at start", [r["readiness_at_start"] for r in rows]),
                   Series("now", [r["readiness"] for r in rows])], unit="0-100", threshold=70.0,
                  threshold_label="passing (70)",
                  description="Per framework: readiness as of the window start and now; the line marks 70.")
    return Report(
        "control-health-scorecard", "Control health scorecard",
        {"window": q.window, "from": start, "to": now}, summary,
        [Section("scorecard", "Scorecard by framework",
                 columns("framework", "name", "readiness", "state", ("readiness_at_start", "Readiness at start"),
                         ("readiness_change", "Change"), ("inherited_controls", "Inherited controls"),
                         ("inherited_covered", "Inherited, report in force"),
                         ("inherited_coverage", "Inherited coverage %"), "gaps", ("gaps_at_start", "Gaps at start"),
                         ("gaps_resolved", "Gaps resolved"), ("remediations_closed", "Remediations closed"),
                         ("readiness_rag", "Readiness RAG"), ("inherited_rag", "Inherited RAG"),
                         ("change_rag", "Change RAG"), ("rag", "RAG"), ("rag_reason", "Why")), rows),
         Section("thresholds", "RAG thresholds", columns("figure", "thresholds"),
                 [{"figure": k, "thresholds": v} for k, v in THRESHOLDS.items()])],
        now, charts=[chart])
