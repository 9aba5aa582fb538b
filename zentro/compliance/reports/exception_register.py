"""Compliance exception register: approved exceptions, assessment gaps nobody manages, policy drift (a policy says a
control is covered while the evidence says it is a gap) and the remediations tracked for those controls."""
from __future__ import annotations

import datetime as dt

from typing import Literal

from pydantic import Field
from sqlalchemy import select

from zentro.compliance import obligations as obl
from zentro.compliance.models import ControlException, GapRemediation, Policy
from zentro.compliance.catalog import load_catalog
from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._evidence import (assess_controls, aware, control_title, framework_of,
                                                 program_frameworks)
from zentro.extensions import db

ACTIVE_REMEDIATION = ("open", "in_progress")
EXPIRING_DAYS = 30


FrameworkSlug = Literal[tuple(f.slug for f in load_catalog().frameworks.values())]  # type: ignore[valid-type]


class ExceptionRegisterQuery(PeriodQuery):
    framework: FrameworkSlug | None = Field(None, description="Assess gaps for this framework only (default: the "
                                                              "program's frameworks).")


@report("exception-register", title="Compliance exception register", category="Evidence & testing",
        query=ExceptionRegisterQuery,
        summary="Compliance exception register — approved exceptions with compensating controls and expiry, "
                "unmanaged assessment gaps, policy drift and the compensating remediations (JSON or CSV).",
        inputs="control exceptions, the evidence engine (periodDays window), accepted policies, gap remediations, "
               "the program's frameworks (scope mappings, checkpoints and the registers' controls)",
        window="exceptions: all, state as of now; gaps and drift: engine assessment over periodDays ending now",
        definitions={
            "frameworks": "Frameworks assessed for gaps: the `framework` parameter (a slug), else the program's "
                          "frameworks "
                          "(named by in-scope scope mappings, audit checkpoints, or the controls of attestations, "
                          "exceptions, accepted policies, gap remediations and non-cancelled evidence requests).",
            "exceptions_open": "Exceptions with status open and expires_at after now.",
            "exceptions_expired": "Exceptions with status open and expires_at at or before now (the deviation "
                                  "continues without approval).",
            "exceptions_closed": "Exceptions with status closed.",
            "expiring_in_30_days": "Open exceptions whose expires_at is within 30 days of now.",
            "unmanaged_gaps": "Controls of the assessed frameworks scoring under 70 now with no open exception and "
                              "no active gap remediation (status open or in_progress). A remediation marked done "
                              "or wont_fix while the gap persists does not manage it.",
            "policy_drift": "(accepted policy, control tag) pairs where the tag scores under 70 now: the policy "
                            "says the control is covered, the evidence says it is not.",
            "remediations": "Gap remediation rows for the controls listed in any section (read-only here).",
            "entries": "exceptions + unmanaged_gaps + policy_drift.",
            "days_to_expiry": "Whole days from now to expires_at (floor), for open exceptions; negative when "
                              "expired.",
            "score / state": "The control's engine score now (0–100) and state: passing ≥ 70, at_risk 40–69, "
                             "failing < 40.",
        })
def build(ctx: ReportContext) -> Report:
    q: ExceptionRegisterQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    frameworks = ([load_catalog().resolve_framework(q.framework).key] if q.framework
                  else program_frameworks(ctx.org_id))
    emails = obl.owner_emails(ctx.org_id)
    exc_rows = db.session.execute(select(ControlException.id, ControlException.control, ControlException.reason,
                                         ControlException.compensating_control, ControlException.approver_id,
                                         ControlException.status, ControlException.opened_at,
                                         ControlException.expires_at, ControlException.closed_at)
                                  .where(ControlException.org_id == ctx.org_id)).all()
    policies = db.session.execute(select(Policy.id, Policy.name, Policy.control_tags, Policy.accepted_at)
                                  .where(Policy.org_id == ctx.org_id, Policy.status == "accepted")
                                  .order_by(Policy.id)).all()
    rems = db.session.execute(select(GapRemediation.id, GapRemediation.control, GapRemediation.status,
                                     GapRemediation.owner_id, GapRemediation.playbook_id, GapRemediation.runbook_url,
                                     GapRemediation.due_at, GapRemediation.note)
                              .where(GapRemediation.org_id == ctx.org_id)).all()
    policy_tags = {t for p in policies for t in (p.control_tags or "").split()}
    results = assess_controls(ctx.org_id, now, tags={r.control for r in exc_rows} | policy_tags,
                              frameworks=frameworks, period_days=q.period_days)

    # exceptions
    counts = {"open": 0, "expired": 0, "closed": 0}
    expiring = 0
    open_exc_controls: set[str] = set()
    exceptions = []
    for e in exc_rows:
        expires = aware(e.expires_at)
        state = "closed" if e.status == "closed" else "open" if expires > now else "expired"
        counts[state] += 1
        if state == "open":
            open_exc_controls.add(e.control)
            expiring += expires <= now + dt.timedelta(days=EXPIRING_DAYS)
        res = results.get(e.control)
        exceptions.append({
            "id": e.id, "control": e.control, "title": control_title(e.control), "state": state, "reason": e.reason,
            "compensating_control": e.compensating_control,
            "approver": emails.get(e.approver_id, "") if e.approver_id else "", "opened_at": aware(e.opened_at),
            "expires_at": expires, "closed_at": aware(e.closed_at),
            "days_to_expiry": (expires - now).days if state != "closed" else None,
            "score": res.score if res else None, "control_state": res.state if res else None,
            "link": f"/compliance/controls/{e.control}"})
    exceptions.sort(key=lambda r: ({"expired": 0, "open": 1, "closed": 2}[r["state"]], r["expires_at"], r["id"]))

    # unmanaged gaps
    active_rem = {r.control for r in rems if r.status in ACTIVE_REMEDIATION}
    gaps = []
    for key in frameworks:
        for tag, res in results.items():
            if framework_of(tag) != key or res.score >= 70 or tag in open_exc_controls or tag in active_rem:
                continue
            gaps.append({"framework": key, "control": tag, "title": res.title, "family": res.family,
                         "weight": res.weight, "score": res.score, "state": res.state, "reason": res.reason,
                         "remediation": next((r.status for r in rems if r.control == tag), None),
                         "link": f"/compliance/controls/{tag}"})
    gaps.sort(key=lambda g: (-g["weight"] * (70 - g["score"]), g["control"]))

    # policy drift
    drift = []
    for p in policies:
        for tag in (p.control_tags or "").split():
            res = results.get(tag)
            if res is None or res.score >= 70:
                continue
            drift.append({"policy_id": p.id, "policy": p.name, "control": tag, "title": res.title,
                          "accepted_at": aware(p.accepted_at), "score": res.score, "state": res.state,
                          "exception_open": tag in open_exc_controls, "reason": res.reason,
                          "link": f"/compliance/policies/{p.id}"})
    drift.sort(key=lambda d: (d["score"], d["policy"], d["control"]))

    listed = {r["control"] for r in exceptions} | {g["control"] for g in gaps} | {d["control"] for d in drift}
    remediations = [{"id": r.id, "control": r.control, "title": control_title(r.control), "status": r.status,
                     "owner": emails.get(r.owner_id, "") if r.owner_id else "", "playbook_id": r.playbook_id,
                     "runbook_url": r.runbook_url, "due_at": aware(r.due_at),
                     "days_to_due": (aware(r.due_at) - now).days if r.due_at is not None else None,
                     "control_state": results[r.control].state if r.control in results else None}
                    for r in sorted(rems, key=lambda r: (r.control, r.id)) if r.control in listed]

    summary = {"frameworks": frameworks, "exceptions_open": counts["open"], "exceptions_expired": counts["expired"],
               "exceptions_closed": counts["closed"], "expiring_in_30_days": expiring, "unmanaged_gaps": len(gaps),
               "policy_drift": len(drift), "remediations": len(remediations),
               "entries": len(exceptions) + len(gaps) + len(drift)}
    labels = ["Open exceptions", "Expired exceptions", "Unmanaged gaps", "Policy drift"]
    chart = Chart("register", "Exception register entries", "bar", labels,
                  [Series("Entries", [float(counts["open"]), float(counts["expired"]), float(len(gaps)),
                                      float(len(drift))])], unit="entries",
                  description="Bars: open and expired exceptions, unmanaged gaps and policy-drift items now.")
    return Report(
        "exception-register", "Compliance exception register",
        {"periodDays": q.period_days, "framework": q.framework, "frameworks": frameworks, "to": now}, summary,
        [Section("exceptions", "Exceptions", columns("id", "control", "title", "state", "reason",
                                                     "compensating_control", "approver", "opened_at", "expires_at",
                                                     ("days_to_expiry", "Days to expiry"), "closed_at", "score",
                                                     "control_state", "link"), exceptions),
         Section("unmanaged_gaps", "Unmanaged gaps", columns("framework", "control", "title", "family", "weight",
                                                             "score", "state", "remediation", "reason", "link"), gaps),
         Section("policy_drift", "Policy drift", columns("policy_id", "policy", "control", "title", "accepted_at",
                                                         "score", "state", "exception_open", "reason", "link"), drift),
         Section("remediations", "Compensating remediations", columns("id", "control", "title", "status", "owner",
                                                                      "playbook_id", "runbook_url", ("due_at", "Due"),
                                                                      ("days_to_due", "Days to due"),
                                                                      "control_state"), remediations)],
        now, charts=[chart])
