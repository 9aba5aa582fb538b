"""Policy drift: where the program's accepted policies and automation guardrails claim coverage that the live
assessment does not bear out, which draft policies would help, and which gaps no policy addresses at all."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from zentro.automations.models import Guardrail
from zentro.compliance import engine
from zentro.compliance.catalog import FRAMEWORKS, load_catalog
from zentro.compliance.models import Policy
from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._controls import GUARDRAIL_CONTROLS, FrameworkFilter, default_frameworks, slug
from zentro.extensions import db
from zentro.reliability.models import Service


class DriftQuery(PeriodQuery, FrameworkFilter):
    pass


def _state(c: engine.ControlResult) -> str:
    return f"{c.tag} {c.state} ({c.score:g})"


@report("policy-drift", title="Policy drift", category="Scope & controls", query=DriftQuery,
        summary="Accepted policies and enabled automation guardrails against live assessment gaps: where a policy "
                "claims coverage the evidence disagrees with, draft policies that would help, and gaps no policy "
                "covers (JSON or CSV).",
        inputs="policies (every status but retired), enabled guardrails, the evidence engine's assessment "
               "(audit_tags, accepted policies, attestations, exceptions, vendors)",
        window="assessment over `periodDays` ending now (default 30)",
        definitions={
            "frameworks": "Frameworks assessed: the `framework` selection, else those in audit scope, else all.",
            "gaps": "Controls of those frameworks scoring under 70 in the evidence engine.",
            "accepted_policies": "Policies in status accepted.",
            "drift_pairs": "(accepted policy, control) pairs where the policy names the control directly in its "
                           "control tags and the control is a gap: the policy claims coverage, the evidence "
                           "disagrees (an accepted policy alone earns at most partial evidence points).",
            "drifting_policies": "Accepted policies with at least one drift pair.",
            "guardrails_enabled": "Enabled automation guardrails (any service or org-wide).",
            "guardrail_controls": "Every guardrail kind gates automated changes, so each supports the change-"
                                  "management controls SOC2:CC8.1, ISO27001:A.8.32 and PCIDSS:6.5 (assessed whatever "
                                  "the framework selection).",
            "guardrails_drifting": "Enabled guardrails at least one of whose supported controls is a gap.",
            "would_help_pairs": "(draft or review policy, gap control) pairs: accepting the policy would add evidence.",
            "would_help_policies": "Draft or review policies naming at least one gap control.",
            "uncovered_gaps": "Gap controls that no policy (draft, review or accepted) names.",
            "score": "Engine score 0–100 (evidence points 0–70 + attestation points 0–30, capped at 50 by an open "
                     "exception); state passing ≥70, at_risk 40–69, failing <40.",
        })
def build(ctx: ReportContext) -> Report:
    q: DriftQuery = ctx.query  # type: ignore[assignment]
    org, now = ctx.org_id, ctx.now
    keys, basis = default_frameworks(org, q.frameworks)
    snap = engine.snapshot(org, q.period_days, now, catalog=load_catalog())
    results = {k: snap.assess(k, with_trend=False) for k in keys}
    gaps: dict[str, engine.ControlResult] = {}
    for fr in results.values():
        for c in fr.gaps:
            gaps[c.tag] = c
    policies = db.session.execute(select(Policy.id, Policy.name, Policy.status, Policy.control_tags, Policy.accepted_at)
                                  .where(Policy.org_id == org, Policy.status != "retired")
                                  .order_by(Policy.name, Policy.id)).all()
    named: dict[str, list[str]] = defaultdict(list)
    drift, helps = [], []
    for p in policies:
        tags = list(dict.fromkeys((p.control_tags or "").split()))
        for tag in tags:
            named[tag].append(p.name)
            c = gaps.get(tag)
            if c is None:
                continue
            row = {"policy": p.name, "policy_id": p.id, "status": p.status, "control": tag, "framework": c.framework,
                   "title": c.title, "score": c.score, "state": c.state, "evidence_level": c.evidence_level,
                   "reason": c.reason}
            if p.status == "accepted":
                drift.append({**row, "accepted_at": p.accepted_at})
            else:
                helps.append(row)

    guardrail_results = {t: snap.assess_control(t) for t in GUARDRAIL_CONTROLS}
    guardrails = []
    for gid, name, kind, service in db.session.execute(
            select(Guardrail.id, Guardrail.name, Guardrail.kind, Service.name)
            .outerjoin(Service, Service.id == Guardrail.service_id)
            .where(Guardrail.org_id == org, Guardrail.enabled.is_(True)).order_by(Guardrail.name)):
        gap_controls = [t for t, c in guardrail_results.items() if c.score < engine.PASSING]
        guardrails.append({"guardrail": name, "guardrail_id": gid, "kind": kind, "service": service or "(org-wide)",
                           "controls": list(GUARDRAIL_CONTROLS),
                           "control_states": [_state(guardrail_results[t]) for t in GUARDRAIL_CONTROLS],
                           "gap_controls": gap_controls, "drift": bool(gap_controls)})

    order = {t: i for i, t in enumerate(load_catalog().all_tags())}
    uncovered = [{"control": c.tag, "framework": c.framework, "title": c.title, "weight": c.weight, "score": c.score,
                  "state": c.state, "reason": c.reason}
                 for c in sorted(gaps.values(), key=lambda c: (-c.weight * (engine.PASSING - c.score), order[c.tag]))
                 if c.tag not in named]
    per_fw = {k: (sum(1 for r in drift if r["framework"] == k), sum(1 for r in uncovered if r["framework"] == k))
              for k in keys}
    chart = Chart("drift", "Gap controls by policy coverage", "bar", [slug(k) for k in keys],
                  [Series("Claimed by an accepted policy", [per_fw[k][0] for k in keys]),
                   Series("No policy at all", [per_fw[k][1] for k in keys])], unit="controls",
                  description="Per framework: drift pairs (an accepted policy names a gap control) and gap "
                              "controls no policy names.")
    common = ("policy", ("policy_id", "Policy id"), "status", "control", "framework", "title", "score", "state",
              ("evidence_level", "Evidence"), "reason")
    return Report(
        "policy-drift", "Policy drift",
        {"periodDays": q.period_days, "framework": [slug(k) for k in keys], "basis": basis,
         "from": snap.start, "to": now},
        {"frameworks": [slug(k) for k in keys], "gaps": len(gaps),
         "accepted_policies": sum(1 for p in policies if p.status == "accepted"),
         "drifting_policies": len({r["policy_id"] for r in drift}), "drift_pairs": len(drift),
         "guardrails_enabled": len(guardrails), "guardrails_drifting": sum(1 for g in guardrails if g["drift"]),
         "would_help_policies": len({r["policy_id"] for r in helps}), "would_help_pairs": len(helps),
         "uncovered_gaps": len(uncovered)},
        [Section("drift", "Accepted policies vs gaps (drift)", columns(*common, ("accepted_at", "Accepted")), drift),
         Section("guardrails", "Guardrails vs change-management controls", columns(
             "guardrail", ("guardrail_id", "Guardrail id"), "kind", "service", "controls",
             ("control_states", "Control states"), ("gap_controls", "Gap controls"), "drift"), guardrails),
         Section("would_help", "Draft and review policies covering gaps", columns(*common), helps),
         Section("uncovered", "Gaps with no policy", columns("control", "framework", "title", "weight", "score",
                                                              "state", "reason"), uncovered)],
        now, charts=[chart] if keys and (drift or uncovered) else [])
