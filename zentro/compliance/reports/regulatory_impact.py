"""Regulatory change impact: modelled scenarios (zentro/compliance/regulatory_scenarios.json) — a framework version
change, added requirements, withdrawn or re-weighted ones — recomputed against the org's live readiness."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zentro.compliance import engine
from zentro.compliance.catalog import load_catalog
from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._controls import slug

SCENARIOS_FILE = Path(__file__).resolve().parent.parent / "regulatory_scenarios.json"


class ScenarioError(ValueError):
    """regulatory_scenarios.json is malformed or names controls the catalog does not (or already) have."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AddedControl(_Strict):
    id: str = Field(min_length=1, max_length=40, pattern=r"^[^:\s]+$")
    title: str = Field(min_length=1, max_length=120)
    weight: float = Field(gt=0, le=10)
    maps_to: tuple[str, ...] = ()


class ReweightWhere(_Strict):
    attr: str
    equals: bool | str | int | float
    factor: float = Field(gt=0, le=10)


class Scenario(_Strict):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")
    title: str = Field(min_length=1)
    framework: str
    description: str = Field(min_length=1)
    source: str = Field(min_length=1)
    add: tuple[AddedControl, ...] = ()
    remove: tuple[str, ...] = ()
    reweight: dict[str, float] = Field(default_factory=dict)
    reweight_where: ReweightWhere | None = None


class ScenarioFile(_Strict):
    about: tuple[str, ...] = Field(min_length=1)
    version: int = Field(ge=1)
    hours_per_new_gap: float = Field(gt=0, le=200)
    scenarios: tuple[Scenario, ...] = Field(min_length=1)


def read_scenarios(path: str | Path | None = None) -> ScenarioFile:
    """Read and check the scenarios: known frameworks; removed/re-weighted/mapped tags in the catalog (removed and
    re-weighted ones in the scenario's framework); added ids new to the catalog; keys unique."""
    path = Path(path) if path is not None else SCENARIOS_FILE
    try:
        doc = ScenarioFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            raise ScenarioError(f"{path.name}: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from None
        raise ScenarioError(f"{path.name}: cannot be read as JSON ({exc})") from None
    catalog = load_catalog()
    keys: set[str] = set()
    for s in doc.scenarios:
        where = f"{path.name}: scenario {s.key}"
        if s.key in keys or s.key == "all":
            raise ScenarioError(f"{where}: duplicate or reserved key")
        keys.add(s.key)
        if s.framework not in catalog.frameworks:
            raise ScenarioError(f"{where}: unknown framework {s.framework!r}")
        for tag in (*s.remove, *s.reweight):
            if not catalog.has(tag) or not tag.startswith(s.framework + ":"):
                raise ScenarioError(f"{where}: {tag!r} is not a {s.framework} control of the catalog")
        for w in s.reweight.values():
            if not 0 < w <= 10:
                raise ScenarioError(f"{where}: weights are in (0, 10]")
        ids = set()
        for a in s.add:
            tag = f"{s.framework}:{a.id}"
            if catalog.has(tag) or tag in ids:
                raise ScenarioError(f"{where}: added control {tag} already exists")
            ids.add(tag)
            unknown = catalog.unknown_tags(a.maps_to)
            if unknown:
                raise ScenarioError(f"{where}: {tag} maps to unknown control(s) {', '.join(unknown)}")
    return doc


@functools.cache
def load_scenarios() -> ScenarioFile:
    return read_scenarios()


SCENARIO_KEYS = tuple(s.key for s in load_scenarios().scenarios)


class ImpactQuery(PeriodQuery):
    scenario: Literal[SCENARIO_KEYS + ("all",)] = Field(  # type: ignore[valid-type]
        SCENARIO_KEYS[0], description="Scenario key from regulatory_scenarios.json (" + ", ".join(SCENARIO_KEYS)
        + "), or all.")


def evaluate(scn: Scenario, snap: engine.Snapshot, hours_per_gap: float, cache: dict | None = None) -> dict:
    """One scenario against the snapshot: baseline and scenario readiness, the per-control changes, new gaps."""
    cache = {} if cache is None else cache

    def control(tag: str) -> engine.ControlResult:
        if tag not in cache:
            cache[tag] = snap.assess_control(tag)
        return cache[tag]

    fr = snap.assess(scn.framework, with_trend=False)
    removed = set(scn.remove)
    pairs: list[tuple[float, float]] = []
    changes: list[dict] = []
    for c in fr.controls:
        if c.tag in removed:
            changes.append({"control": c.tag, "change": "removed", "title": c.title, "weight_before": c.weight,
                            "weight_after": 0.0, "score": c.score, "state": c.state, "mapped_to": [],
                            "new_gap": False, "was_gap": c.score < engine.PASSING})
            continue
        weight = c.weight
        rule = scn.reweight_where
        if rule is not None and c.attrs.get(rule.attr) == rule.equals:
            weight = round(weight * rule.factor, 4)
        weight = scn.reweight.get(c.tag, weight)
        if weight != c.weight:
            changes.append({"control": c.tag, "change": "reweighted", "title": c.title, "weight_before": c.weight,
                            "weight_after": weight, "score": c.score, "state": c.state, "mapped_to": [],
                            "new_gap": False, "was_gap": c.score < engine.PASSING})
        pairs.append((weight, c.score))
    for a in scn.add:
        mapped = [control(t) for t in a.maps_to]
        score = float(max((m.evidence_points for m in mapped), default=0))
        changes.append({"control": f"{scn.framework}:{a.id}", "change": "added", "title": a.title,
                        "weight_before": 0.0, "weight_after": a.weight, "score": score,
                        "state": engine.state_for(score),
                        "mapped_to": [f"{m.tag} ({m.evidence_level}, {m.evidence_points} pts)" for m in mapped],
                        "new_gap": score < engine.PASSING, "was_gap": False})
        pairs.append((a.weight, score))
    readiness = engine.weighted_mean(pairs)
    new_gaps = [r for r in changes if r["new_gap"]]
    return {"scenario": scn.key, "title": scn.title, "framework": scn.framework, "slug": slug(scn.framework),
            "baseline_readiness": fr.readiness, "scenario_readiness": readiness,
            "delta": round(readiness - fr.readiness, 1),
            "added": sum(1 for r in changes if r["change"] == "added"),
            "removed": sum(1 for r in changes if r["change"] == "removed"),
            "reweighted": sum(1 for r in changes if r["change"] == "reweighted"),
            "baseline_gaps": len(fr.gaps),
            "gaps_dropped": sum(1 for r in changes if r["change"] == "removed" and r["was_gap"]),
            "new_gaps": len(new_gaps), "effort_hours": round(len(new_gaps) * hours_per_gap, 1),
            "description": scn.description, "source": scn.source, "changes": changes}


@report("regulatory-impact", title="Regulatory change impact", category="Scope & controls", query=ImpactQuery,
        summary="Modelled regulatory change scenarios (framework version changes, added, withdrawn or re-weighted "
                "requirements) recomputed against the live readiness: delta, new gaps and effort (JSON or CSV).",
        inputs="regulatory_scenarios.json (modelled scenarios), the catalogs, the evidence engine's assessment "
               "(audit_tags, accepted policies, attestations, exceptions, vendors)",
        window="assessment over `periodDays` ending now (default 30)",
        definitions={
            "scenario": "With one scenario: its key (the summary then holds that scenario's figures).",
            "framework": "With one scenario: the framework it changes (slug).",
            "worst_scenario": "The scenario with the most negative delta.",
            "scenarios": "Scenarios evaluated: the one named by `scenario` (default the first in the file) or all.",
            "baseline_readiness": "The framework's live readiness from the evidence engine: weight-weighted mean of "
                                  "its control scores (0–100) over the window.",
            "scenario_readiness": "The same weighted mean after the scenario: removed controls dropped; re-weighted "
                                  "controls at their new weight (explicit weights, or the factor for controls whose "
                                  "catalog attribute matches reweight_where); each added control scored with the best "
                                  "evidence points (0–70) among the existing controls it maps to — 0 when none has "
                                  "evidence — and no attestation points (none can exist yet).",
            "delta": "scenario_readiness − baseline_readiness, in points.",
            "added": "Controls the scenario adds (ids new to the catalog, with their weight and title).",
            "removed": "Catalog controls the scenario withdraws.",
            "reweighted": "Catalog controls whose weight changes.",
            "baseline_gaps": "Controls of the framework under 70 today.",
            "gaps_dropped": "Removed controls that were gaps.",
            "new_gaps": "Added controls that would score under 70.",
            "effort_hours": "new_gaps × hours_per_new_gap (stated in regulatory_scenarios.json).",
            "hours_per_new_gap": "Effort assumed per new gap: design, implement and evidence one control.",
            "worst_delta": "The most negative delta among the evaluated scenarios (worst_scenario names it).",
            "changes.mapped_to": "For an added control: the existing controls it maps to, with their evidence level "
                                 "and points now.",
        })
def build(ctx: ReportContext) -> Report:
    q: ImpactQuery = ctx.query  # type: ignore[assignment]
    doc = load_scenarios()
    chosen = list(doc.scenarios) if q.scenario == "all" else [s for s in doc.scenarios if s.key == q.scenario]
    snap = engine.snapshot(ctx.org_id, q.period_days, ctx.now, catalog=load_catalog())
    cache: dict = {}
    results = [evaluate(s, snap, doc.hours_per_new_gap, cache) for s in chosen]
    worst = min(results, key=lambda r: r["delta"])
    summary = {"scenarios": len(results), "new_gaps": sum(r["new_gaps"] for r in results),
               "effort_hours": round(sum(r["effort_hours"] for r in results), 1),
               "hours_per_new_gap": doc.hours_per_new_gap, "worst_delta": worst["delta"],
               "worst_scenario": worst["scenario"]}
    if len(results) == 1:
        r = results[0]
        summary = {"scenario": r["scenario"], "framework": r["slug"], "baseline_readiness": r["baseline_readiness"],
                   "scenario_readiness": r["scenario_readiness"], "delta": r["delta"], **summary}
    change_rows = [{"scenario": r["scenario"], **{k: v for k, v in c.items() if k != "was_gap"}}
                   for r in results for c in r["changes"]]
    gap_rows = [{"scenario": r["scenario"], "control": c["control"], "title": c["title"], "weight": c["weight_after"],
                 "score": c["score"], "mapped_to": c["mapped_to"], "effort_hours": doc.hours_per_new_gap}
                for r in results for c in r["changes"] if c["new_gap"]]
    chart = Chart("readiness", "Readiness: live baseline vs scenario", "bar", [r["scenario"] for r in results],
                  [Series("Baseline", [r["baseline_readiness"] for r in results]),
                   Series("Scenario", [r["scenario_readiness"] for r in results])], unit="%",
                  description="Per scenario: the framework's live readiness and its readiness under the scenario.")
    return Report(
        "regulatory-impact", "Regulatory change impact",
        {"scenario": q.scenario, "periodDays": q.period_days, "from": snap.start, "to": ctx.now},
        summary,
        [Section("scenarios", "Scenarios", columns(
            "scenario", "title", "framework", ("baseline_readiness", "Baseline"), ("scenario_readiness", "Scenario"),
            "delta", "added", "removed", "reweighted", ("baseline_gaps", "Gaps today"),
            ("gaps_dropped", "Gaps dropped"), ("new_gaps", "New gaps"), ("effort_hours", "Effort (h)"),
            "description", "source"), [{k: v for k, v in r.items() if k != "changes"} for r in results]),
         Section("changes", "Control changes", columns(
             "scenario", "control", "change", "title", ("weight_before", "Weight before"),
             ("weight_after", "Weight after"), "score", "state", ("mapped_to", "Mapped to"),
             ("new_gap", "New gap")), change_rows),
         Section("new_gaps", "New gaps", columns("scenario", "control", "title", "weight", "score",
                                                 ("mapped_to", "Mapped to"), ("effort_hours", "Effort (h)")),
                 gap_rows)],
        ctx.now, charts=[chart],
        notes=["Modelled scenarios from regulatory_scenarios.json: each states its assumptions in its description; "
               "they are planning aids, not legal or certification advice."])
