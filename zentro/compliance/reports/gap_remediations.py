"""Gap-to-runbook remediation queue: every live gap joined with the org's tracking row and a suggested fix."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from zentro.compliance import gap_tracking
from zentro.compliance.catalog import load_catalog
from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog


FRAMEWORK_SLUGS = tuple(f.slug for f in load_catalog().frameworks.values())


class GapQuery(PeriodQuery):
    framework: Literal[("", *FRAMEWORK_SLUGS)] = Field(  # type: ignore[valid-type]
        "", description="Only gaps of this framework: " + ", ".join(FRAMEWORK_SLUGS) + "; empty = every framework.")

    @property
    def framework_key(self) -> str:
        return load_catalog().resolve_framework(self.framework).key if self.framework else ""


STATUS_ORDER = ("untracked", "open", "in_progress", "done", "wont_fix")


def queue(program: prog.Program, framework: str = "") -> tuple[list[dict], list[dict]]:
    """(queue rows: one per live gap, worst first; resolved rows: tracking rows whose control is no longer a gap)."""
    now = program.now
    suggester = gap_tracking.Suggester(program.org_id)
    playbooks = gap_tracking.playbook_names(program.org_id)
    tracking = {r.control: r for r in program.remediations}
    gaps = sorted(program.gaps.values(), key=lambda g: (-prog.weight_at_risk(g), g.tag))
    rows = []
    for g in gaps:
        if framework and g.framework != framework:
            continue
        t = tracking.get(g.tag)
        s = suggester.suggest(g.tag)
        rows.append({
            "control": g.tag, "framework": g.framework, "title": g.title, "family": g.family, "weight": g.weight,
            "score": g.score, "state": g.state, "band": prog.band_of(g.score),
            "weight_at_risk": prog.weight_at_risk(g), "reason": g.reason,
            "tracking": t.status if t else "untracked", "remediation_id": t.id if t else None,
            "owner": program.email(t.owner_id) if t else "",
            "playbook": playbooks.get(t.playbook_id, "") if t and t.playbook_id else "",
            "runbook_url": t.runbook_url if t else "", "due": t.due_at if t else None,
            "overdue": bool(t and t.overdue(now)),
            "days_overdue": (now - t.due_at).days if t and t.overdue(now) else None,
            "suggestion": s.kind, "suggested_playbook": s.playbook, "suggested_runbook": s.runbook_url,
            "suggested_policy": s.policy, "suggestion_basis": s.basis,
        })
    catalog = program.catalog
    resolved = []
    for t in program.remediations:
        if t.control in program.gaps or not catalog.has(t.control):
            continue
        fw = t.control.split(":", 1)[0]
        if framework and fw != framework:
            continue
        c = program.results[fw].control(t.control)
        resolved.append({"control": t.control, "framework": fw, "title": c.title, "score": c.score, "state": c.state,
                         "tracking": t.status, "outcome": "resolved by evidence", "remediation_id": t.id,
                         "owner": program.email(t.owner_id),
                         "playbook": playbooks.get(t.playbook_id, "") if t.playbook_id else "",
                         "runbook_url": t.runbook_url, "due": t.due_at, "closed_at": t.closed_at})
    return rows, resolved


def summarize(rows: list[dict], resolved: list[dict]) -> dict:
    tracked = [r for r in rows if r["tracking"] != "untracked"]
    return {"gaps": len(rows), "tracked": len(tracked), "untracked": len(rows) - len(tracked),
            "open": sum(r["tracking"] == "open" for r in rows),
            "in_progress": sum(r["tracking"] == "in_progress" for r in rows),
            "done": sum(r["tracking"] == "done" for r in rows),
            "wont_fix": sum(r["tracking"] == "wont_fix" for r in rows),
            "overdue": sum(r["overdue"] for r in rows),
            "resolved_by_evidence": len(resolved),
            "with_suggestion": sum(r["suggestion"] != "none" for r in rows),
            "weight_at_risk": round(sum(r["weight_at_risk"] for r in rows), 1),
            "untracked_weight_at_risk": round(sum(r["weight_at_risk"] for r in rows if r["tracking"] == "untracked"), 1)}


@report("gap-remediations", title="Gap remediation queue", category="Program", query=GapQuery,
        summary="Gap-to-runbook remediation queue: every live assessment gap with its reason, joined with the org's "
                "tracking row (status, owner, playbook or runbook, due) and a suggested fix (JSON or CSV).",
        inputs="the evidence engine over every framework (audit tags, accepted policies, vendors, attestations, "
               "exceptions), gap remediation rows, playbooks, services, accepted policies",
        window="controls assessed as of now (evidence window periodDays ending now; freshness per control)",
        definitions={
            "gaps": "Live gaps: controls of every framework (or of `framework`) scoring under 70 now, each once "
                    "(a tag belongs to one framework).",
            "tracked": "Gaps with a gap remediation row (any status).",
            "untracked": "Gaps without a row (tracking column \"untracked\").",
            "open": "Gaps whose tracking row is open.",
            "in_progress": "Gaps whose tracking row is in progress.",
            "done": "Gaps whose tracking row is done: the fix has not produced evidence yet (the control still "
                    "scores under 70).",
            "wont_fix": "Gaps whose tracking row is won't fix (accepted risk).",
            "overdue": "Gaps whose row is open or in progress with a due date before now.",
            "resolved_by_evidence": "Rows whose control is no longer a gap (scores 70 or more now), whatever their "
                                    "status: listed in the \"Resolved by evidence\" section.",
            "with_suggestion": "Gaps with a suggested playbook, runbook or policy.",
            "weight_at_risk": "Sum over the listed gaps of weight × (70 − score).",
            "untracked_weight_at_risk": "The same sum over untracked gaps only.",
            "band": "Score band of the gap: critical 0–24, high 25–39, medium 40–54, low 55–69.",
            "reason": "The engine's reason the control is under threshold (evidence, attestation, exception).",
            "suggestion": "playbook = an enabled playbook every step of which an accepted policy covering the "
                          "control (or a crosswalk equivalent) allows (runbook: the first step service's runbook "
                          "URL); runbook = such a policy names a service with a runbook URL; policy = a covering "
                          "policy with nothing implementing it; none = no accepted policy covers the control.",
            "days_overdue": "Whole days since the row's due date, for overdue rows.",
        })
def build(ctx: ReportContext) -> Report:
    q: GapQuery = ctx.query  # type: ignore[assignment]
    program = prog.load(ctx.org_id, ctx.now, q.period_days)
    rows, resolved = queue(program, q.framework_key)
    summary = summarize(rows, resolved)
    frameworks = [k for k in program.results if not q.framework or k == q.framework_key]
    chart = Chart("by_framework", "Gaps by framework and tracking status", "bar", frameworks,
                  [Series(status.replace("_", " "), [sum(1 for r in rows if r["framework"] == k
                                                         and r["tracking"] == status) for k in frameworks])
                   for status in STATUS_ORDER], unit="gaps", stacked=True,
                  description="Stacked bars: live gaps per framework, split by tracking status.")
    return Report(
        "gap-remediations", "Gap remediation queue",
        {"periodDays": q.period_days, "framework": q.framework_key or "all", "as_of": ctx.now}, summary,
        [Section("queue", "Remediation queue (worst first)",
                 columns("control", "framework", "title", "family", "score", "band",
                         ("weight_at_risk", "Weight at risk"), "tracking", "owner", "playbook",
                         ("runbook_url", "Runbook"), "due", "overdue", ("days_overdue", "Days overdue"),
                         "suggestion", ("suggested_playbook", "Suggested playbook"),
                         ("suggested_runbook", "Suggested runbook"), ("suggested_policy", "Covering policy"),
                         ("suggestion_basis", "Why suggested"), "reason", ("remediation_id", "Tracking id")),
                 rows),
         Section("resolved", "Resolved by evidence (tracked controls no longer under threshold)",
                 columns("control", "framework", "title", "score", "state", "tracking", "outcome", "owner",
                         "playbook", ("runbook_url", "Runbook"), "due", ("closed_at", "Closed"),
                         ("remediation_id", "Tracking id")), resolved)],
        ctx.now, charts=[chart])
