"""Board-ready GRC executive summary: program readiness and its change, each framework against the prior period,
the hotspots, attestation and vendor rollups, open exceptions, and a short deterministic list of leadership
actions derived from the data, each with the figure that triggered it."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from zentro.compliance import engine
from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog
from zentro.compliance.vendors import load_rules

MAX_ACTIONS = 12
DROP_POINTS = 5.0
SOON_DAYS = 30
TIER_RANK = {t: i for i, t in enumerate(prog.TIERS)}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def leadership_actions(program: prog.Program, baselines: list[engine.Baseline], spots: list[dict]) -> list[dict]:
    """The actions, in rule order (each rule's items in a fixed order), at most MAX_ACTIONS."""
    now = program.now
    rules = load_rules()
    out: list[dict] = []

    def add(rule: str, action: str, figure: str, metric: float, link: str) -> None:
        out.append({"rule": rule, "action": action, "figure": figure, "metric": metric, "link": link})

    # 1. overdue attestations, per owner (most first)
    overdue = [a for items in program.registers.attestations.values() for a in items if a.state_at(now) == "overdue"]
    by_owner = defaultdict(list)
    for a in overdue:
        by_owner[program.email(a.owner_id) or "no owner"].append(a)
    for owner, items in sorted(by_owner.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:3]:
        oldest = max((now - a.due_at).days for a in items)
        add("overdue_attestations", f"Renew {_plural(len(items), 'overdue attestation')} owned by {owner}",
            f"{len(items)} overdue, the oldest {oldest} days past due", len(items), "/compliance/attestations?state=overdue")
    # 2. expired attestations
    expired = [a for items in program.registers.attestations.values() for a in items if a.state_at(now) == "expired"]
    if expired:
        add("expired_attestations", f"Re-attest {_plural(len(expired), 'expired attestation')}",
            f"{len(expired)} attested controls whose validity has lapsed", len(expired),
            "/compliance/attestations?state=expired")
    # 3. expired vendor reports (critical first, then longest expired)
    live = [v for v in program.vendors if v.created_at <= now]
    gone = sorted((v for v in live if v.status_at(now) == "expired"),
                  key=lambda v: (TIER_RANK.get(v.tier, 9), v.report_expires_at, v.name))
    for v in gone[:3]:
        days = (now - v.report_expires_at).days
        add("expired_vendor_report", f"Collect the renewed {rules.report_label(v.report_type)} from {v.name}",
            f"{v.tier} tier vendor; report expired {days} days ago", days, f"/compliance/vendors/{v.id}")
    if len(gone) > 3:
        add("expired_vendor_report", f"Chase {_plural(len(gone) - 3, 'more vendor')} with expired reports",
            f"{len(gone)} vendors with an expired report in total", len(gone) - 3, "/compliance/vendors")
    # 4. critical/high vendors without any report
    for v in [v for v in live if v.status_at(now) == "missing" and v.tier in ("critical", "high")][:2]:
        add("missing_vendor_report", f"Obtain an assurance report from {v.name}",
            f"{v.tier} tier vendor with no report on file", 1, f"/compliance/vendors/{v.id}")
    # 5. reports expiring soon
    soon = sorted((v for v in live if v.status_at(now) == "expiring"), key=lambda v: (v.report_expires_at, v.name))
    for v in soon[:2]:
        days = (v.report_expires_at - now).days
        add("expiring_vendor_report", f"Request the renewed {rules.report_label(v.report_type)} from {v.name}",
            f"report expires in {days} days", days, f"/compliance/vendors/{v.id}")
    # 6. overdue vendor reviews
    late = sorted((v for v in live if v.review_overdue_at(now)), key=lambda v: (v.next_review_at, v.name))
    for v in late[:2]:
        days = (now - v.next_review_at).days
        add("vendor_review_overdue", f"Review vendor {v.name}", f"review {days} days overdue ({v.tier} tier)", days,
            f"/compliance/vendors/{v.id}")
    # 7. missing BAA / DPA
    for v in live:
        if v.handles_phi and not v.baa:
            add("baa_missing", f"Sign a BAA with {v.name}", "handles PHI without a business associate agreement", 1,
                f"/compliance/vendors/{v.id}")
        if v.handles_personal_data and not v.dpa:
            add("dpa_missing", f"Sign a DPA with {v.name}", "handles personal data without a data processing "
                                                            "agreement", 1, f"/compliance/vendors/{v.id}")
    # 8. untracked hotspots
    tracked = {r.control for r in program.remediations}
    for s in [s for s in spots if s["control"] not in tracked][:2]:
        add("untracked_hotspot", f"Assign an owner and a remediation to {s['control']} ({s['title']})",
            f"combined weight at risk {s['combined_weight_at_risk']} across "
            f"{_plural(s['frameworks_touched'], 'framework')}, untracked", s["combined_weight_at_risk"],
            "/compliance/gap-remediations")
    # 9. overdue remediations
    late_fixes = [r for r in program.remediations if r.overdue(now) and r.control in program.gaps]
    if late_fixes:
        oldest = max((now - r.due_at).days for r in late_fixes)
        add("overdue_remediations", f"Chase {_plural(len(late_fixes), 'overdue gap remediation')}",
            f"{len(late_fixes)} past due, the oldest by {oldest} days", len(late_fixes), "/compliance/gap-remediations")
    # 10. exceptions expiring soon
    ending = sorted((e for e in prog.open_exceptions_at(program.registers, now)
                     if e.expires_at <= now + dt.timedelta(days=SOON_DAYS)), key=lambda e: (e.expires_at, e.id))
    for e in ending[:2]:
        days = (e.expires_at - now).days
        add("exception_expiring", f"Decide on exception #{e.id} for {e.control}: renew it or close the gap",
            f"expires in {days} days", days, "/compliance/exceptions")
    # 11. readiness drops
    for b in sorted(baselines, key=lambda b: (b.delta, b.key)):
        if b.delta <= -DROP_POINTS:
            add("readiness_drop", f"Investigate the {b.name} readiness drop",
                f"{b.delta:+.1f} points vs {program.period_days} days ago ({b.prior.readiness} → "
                f"{b.current.readiness})", b.delta, f"/compliance/frameworks/{b.slug}")
    out = out[:MAX_ACTIONS]
    for i, a in enumerate(out, 1):
        a["rank"] = i
    return out


@report("executive-summary", title="Executive compliance summary", category="Program", query=PeriodQuery,
        formats=("json", "markdown", "html", "csv", "pdf"),
        summary="Board-ready GRC executive summary: program readiness and its change, each framework against the "
                "prior period, top hotspots, attestation and vendor rollups, open exceptions and leadership actions "
                "(JSON, Markdown, HTML, CSV or PDF).",
        inputs="the evidence engine now and one period earlier, attestations, vendors, exceptions, gap remediation "
               "rows, the catalog crosswalk",
        window="as of now vs as of now − periodDays (the prior period of the same length)",
        definitions={
            "program_readiness": "Control-weight-weighted mean score over every control of every framework "
                                 "(equivalently each framework's readiness weighted by its total control weight).",
            "prior_readiness": "The same as of now − periodDays (evidence and registers as they stood then).",
            "readiness_change": "program_readiness − prior_readiness (points).",
            "frameworks_passing": "Frameworks whose readiness is 70 or more.",
            "gaps": "Controls scoring under 70 now, over every framework.",
            "weight_at_risk": "Sum over gaps of weight × (70 − score).",
            "attestations.<state>": "Attestation rows by derived state now (assigned, attested, overdue, expired, "
                                    "rejected, total).",
            "vendors": "Vendors in the register.",
            "vendor_reports.<status>": "Vendors by report status now: valid (> 30 days left), expiring (≤ 30 days), "
                                       "expired, missing (no report type or expiry).",
            "vendor_reviews_overdue": "Vendors whose next review date has passed.",
            "open_exceptions": "Exceptions open now (status open, opened, not yet expired).",
            "leadership_actions": "Actions listed (at most 12).",
            "delta": "Per framework: readiness now − as of now − periodDays.",
            "hotspots": "The 5 gap controls with the largest combined weight at risk (own weight × (70 − score) "
                        "plus that of their gap crosswalk neighbours), as in the risk heatmap.",
            "actions": "Rules, in this order, each listing its items in a fixed order: overdue attestations per owner "
                       "(top 3 owners); expired attestations; expired vendor reports (critical tier first, longest "
                       "expired first; 3, then one line for the rest); critical/high vendors without a report (2); "
                       "reports expiring within 30 days (2); overdue vendor reviews (2); missing BAA/DPA; the top 2 "
                       "untracked hotspots; overdue gap remediations; exceptions expiring within 30 days (2); "
                       "frameworks that dropped 5 points or more. `figure` states the number that triggered the action; "
                       "`metric` is that number alone (a count, days, points or weight at risk).",
        })
def build(ctx: ReportContext) -> Report:
    q: PeriodQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    program = prog.load(ctx.org_id, now, q.period_days, with_prior=True)
    baselines = program.baselines
    spots = prog.hotspots(program, 5)
    prior = prog.program_readiness(b.prior for b in baselines)
    attest = engine.attestation_rollup(ctx.org_id, now, program.registers)
    live = [v for v in program.vendors if v.created_at <= now]
    statuses = {s: sum(v.status_at(now) == s for v in live) for s in prog.REPORT_STATUSES}
    exceptions = sorted(prog.open_exceptions_at(program.registers, now), key=lambda e: (e.expires_at, e.id))
    actions = leadership_actions(program, baselines, spots)
    gaps = program.gaps
    summary = {
        "program_readiness": program.readiness, "prior_readiness": prior,
        "readiness_change": round(program.readiness - prior, 1),
        "frameworks_passing": sum(fr.readiness >= engine.PASSING for fr in program.results.values()),
        "gaps": len(gaps), "weight_at_risk": round(sum(prog.weight_at_risk(g) for g in gaps.values()), 1),
        "attestations": dict(attest), "vendors": len(live), "vendor_reports": dict(statuses),
        "vendor_reviews_overdue": sum(v.review_overdue_at(now) for v in live),
        "open_exceptions": len(exceptions), "leadership_actions": len(actions),
    }
    fw_rows = [{"framework": b.key, "name": b.name, "readiness": b.current.readiness,
                "prior": b.prior.readiness, "delta": b.delta, "state": engine.state_for(b.current.readiness),
                "gaps": len(b.current.gaps), **b.current.counts} for b in baselines]
    matrix = prog.vendor_matrix(live, now)
    vendor_rows = [{"tier": t, **matrix[t], "total": sum(matrix[t].values())} for t in prog.TIERS]
    headline = [
        {"metric": "Program readiness", "value": program.readiness,
         "context": f"{summary['readiness_change']:+.1f} points vs {q.period_days} days ago ({prior})"},
        {"metric": "Frameworks passing (≥ 70)", "value": summary["frameworks_passing"],
         "context": f"of {len(fw_rows)} frameworks"},
        {"metric": "Open gaps", "value": len(gaps), "context": f"weight at risk {summary['weight_at_risk']}"},
        {"metric": "Overdue attestations", "value": attest["overdue"], "context": f"of {attest['total']} attestations"},
        {"metric": "Vendors with expired or missing reports", "value": statuses["expired"] + statuses["missing"],
         "context": f"of {len(live)} vendors"},
        {"metric": "Open exceptions", "value": len(exceptions), "context": "approved deviations in force"},
    ]
    exc_rows = [{"id": e.id, "control": e.control, "reason": e.reason, "compensating_control": e.compensating_control,
                 "expires_at": e.expires_at, "days_left": (e.expires_at - now).days} for e in exceptions]
    chart = Chart("frameworks", "Readiness by framework: prior period and now", "bar", [r["framework"] for r in fw_rows],
                  [Series("prior", [r["prior"] for r in fw_rows]), Series("now", [r["readiness"] for r in fw_rows])],
                  unit="0-100", threshold=70.0, threshold_label="passing (70)",
                  description="Per framework: readiness one period ago and now; the line marks 70.")
    return Report(
        "executive-summary", "Executive compliance summary",
        {"periodDays": q.period_days, "as_of": now, "prior_as_of": now - dt.timedelta(days=q.period_days)}, summary,
        [Section("headline", "Headline", columns("metric", "value", "context"), headline),
         Section("actions", "Leadership actions", columns("rank", "action", "figure", "metric", "rule", "link"), actions),
         Section("frameworks", "Frameworks", columns("framework", "name", "readiness", "prior", "delta", "state",
                                                     "gaps", "passing", ("at_risk", "At risk"), "failing"), fw_rows),
         Section("hotspots", "Top hotspots", columns("rank", "control", "framework", "title", "score",
                                                     ("combined_weight_at_risk", "Combined weight at risk"),
                                                     ("frameworks_touched", "Frameworks touched")), spots),
         Section("attestations", "Attestations by state", columns("state", "count"),
                 [{"state": k, "count": v} for k, v in attest.items()]),
         Section("vendors", "Vendors: risk tier × report status",
                 columns("tier", *prog.REPORT_STATUSES, "total"), vendor_rows),
         Section("exceptions", "Open exceptions", columns("id", "control", "reason",
                                                          ("compensating_control", "Compensating control"),
                                                          ("expires_at", "Expires"), ("days_left", "Days left")),
                 exc_rows)],
        now, charts=[chart])
