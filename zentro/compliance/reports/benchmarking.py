"""Control benchmarking: the org's readiness per framework placed among ILLUSTRATIVE reference cohorts.

The cohorts live in ``zentro/compliance/cohorts.json``: per cohort (company size / industry) and framework, four
percentile points (p25, p50, p75, p90) of framework readiness. They are synthetic numbers written to show how the
comparison works — not survey data, not measured from anyone — and the file's ``source`` field, the report's
``notes`` (repeated by every rendering) and the page say so.

Percentile position: piecewise-linear interpolation through (0 → 0th), (p25 → 25th), (p50 → 50th), (p75 → 75th),
(p90 → 90th) and (100 → 100th), i.e. readiness 0 and 100 are taken as the cohort's floor and ceiling.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog

COHORTS_FILE = Path(__file__).resolve().parents[1] / "cohorts.json"
POINTS = ((25, "p25"), (50, "p50"), (75, "p75"), (90, "p90"))


@functools.lru_cache(maxsize=1)
def cohorts() -> dict:
    doc = json.loads(COHORTS_FILE.read_text(encoding="utf-8"))
    for key, cohort in doc["cohorts"].items():
        for fw, pts in cohort["percentiles"].items():
            values = [pts[name] for _, name in POINTS]
            if values != sorted(values) or not all(0 <= v <= 100 for v in values):
                raise ValueError(f"cohorts.json: {key}/{fw}: percentile points must rise within 0-100")
    return doc


COHORT_KEYS = tuple(cohorts()["cohorts"])
DEFAULT_COHORT = cohorts()["default"]
ILLUSTRATIVE_NOTE = ("Benchmark cohorts are ILLUSTRATIVE reference data: synthetic percentile points shipped with "
                     "Zentro to show the comparison, not survey data and not measured from any company.")


def percentile_of(value: float, pts: dict) -> float:
    """The percentile position of ``value`` among the cohort points (see the module docstring)."""
    anchors = [(0.0, 0.0)] + [(float(pts[name]), float(p)) for p, name in POINTS] + [(100.0, 100.0)]
    value = min(max(value, 0.0), 100.0)
    for (x0, y0), (x1, y1) in zip(anchors, anchors[1:]):
        if value <= x1:
            if x1 == x0:
                return y1
            return round(y0 + (y1 - y0) * (value - x0) / (x1 - x0), 1)
    return 100.0


def quartile(position: float) -> str:
    if position >= 90:
        return "top decile"
    if position >= 75:
        return "top quartile"
    if position >= 50:
        return "above median"
    if position >= 25:
        return "below median"
    return "bottom quartile"


class BenchmarkQuery(PeriodQuery):
    cohort: Literal[COHORT_KEYS] = Field(  # type: ignore[valid-type]
        DEFAULT_COHORT, description="Reference cohort (illustrative data): " + ", ".join(COHORT_KEYS) + ".")


@report("benchmarking", title="Control benchmarking", category="Program", query=BenchmarkQuery,
        summary="Control benchmarking: the org's readiness per framework and its percentile position within an "
                "illustrative reference cohort (synthetic data, labelled as such) (JSON or CSV).",
        inputs="the evidence engine over every framework; zentro/compliance/cohorts.json (illustrative reference "
               "cohorts, synthetic)",
        window="readiness as of now (evidence window periodDays ending now)",
        definitions={
            "cohort": "The reference cohort compared against (query parameter `cohort`).",
            "cohort_label": "Its description (size / industry).",
            "data": "Always \"illustrative\": the cohorts are synthetic reference points, not survey data.",
            "frameworks": "Frameworks compared (those the cohort has points for).",
            "median_position": "The median of the org's percentile positions across those frameworks.",
            "above_median": "Frameworks where the org's readiness is above the cohort's p50.",
            "below_p25": "Frameworks where it is below the cohort's p25.",
            "program_readiness": "Control-weight-weighted mean score over every framework (not benchmarked itself).",
            "percentile": "The org's position: piecewise-linear interpolation through (0→0), (p25→25), (p50→50), "
                          "(p75→75), (p90→90), (100→100) on the cohort's readiness points.",
            "gap_to_p50 / gap_to_p75": "Cohort point − org readiness (positive = points to gain to reach it).",
            "standing": "bottom quartile < 25 ≤ below median < 50 ≤ above median < 75 ≤ top quartile < 90 ≤ top "
                        "decile (by percentile).",
        })
def build(ctx: ReportContext) -> Report:
    q: BenchmarkQuery = ctx.query  # type: ignore[assignment]
    doc = cohorts()
    cohort = doc["cohorts"][q.cohort]
    program = prog.load(ctx.org_id, ctx.now, q.period_days)
    rows = []
    for key, fr in program.results.items():
        pts = cohort["percentiles"].get(key)
        if pts is None:
            continue
        position = percentile_of(fr.readiness, pts)
        rows.append({"framework": key, "name": fr.name, "readiness": fr.readiness, **{n: pts[n] for _, n in POINTS},
                     "percentile": position, "standing": quartile(position),
                     "gap_to_p50": round(pts["p50"] - fr.readiness, 1),
                     "gap_to_p75": round(pts["p75"] - fr.readiness, 1)})
    positions = sorted(r["percentile"] for r in rows)
    mid = len(positions) // 2
    median = (positions[mid] if len(positions) % 2 else round((positions[mid - 1] + positions[mid]) / 2, 1)) \
        if positions else 0.0
    summary = {"cohort": q.cohort, "cohort_label": cohort["label"], "data": "illustrative",
               "frameworks": len(rows), "median_position": median,
               "above_median": sum(r["readiness"] > r["p50"] for r in rows),
               "below_p25": sum(r["readiness"] < r["p25"] for r in rows),
               "program_readiness": program.readiness}
    chart = Chart("position", f"Readiness vs cohort ({cohort['label']}, illustrative)", "bar",
                  [r["framework"] for r in rows],
                  [Series("org readiness", [r["readiness"] for r in rows]),
                   Series("cohort p50", [r["p50"] for r in rows]), Series("cohort p75", [r["p75"] for r in rows])],
                  unit="0-100", description="Per framework: the org's readiness beside the illustrative cohort's "
                                            "median and 75th percentile.")
    cohort_rows = [{"cohort": k, "label": c["label"], "description": c["description"], "selected": k == q.cohort}
                   for k, c in doc["cohorts"].items()]
    return Report(
        "benchmarking", "Control benchmarking",
        {"periodDays": q.period_days, "cohort": q.cohort, "as_of": ctx.now}, summary,
        [Section("frameworks", "Readiness percentile by framework",
                 columns("framework", "name", "readiness", ("p25", "Cohort p25"), ("p50", "Cohort p50"),
                         ("p75", "Cohort p75"), ("p90", "Cohort p90"), ("percentile", "Percentile position"),
                         "standing", ("gap_to_p50", "Gap to p50"), ("gap_to_p75", "Gap to p75")), rows),
         Section("cohorts", "Reference cohorts (illustrative)", columns("cohort", "label", "description", "selected"),
                 cohort_rows),
         Section("source", "About the reference data", columns("field", "value"),
                 [{"field": "source", "value": doc["source"]}, {"field": "metric", "value": doc["metric"]},
                  {"field": "version", "value": doc["version"]}])],
        ctx.now, charts=[chart], notes=[ILLUSTRATIVE_NOTE, doc["source"]])
