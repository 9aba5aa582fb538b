"""Auditor evidence request SLA digest (slug ``evidence-request-sla``): the overdue queue, the requests at risk
(due within ``atRiskDays``), who owns them, and the fulfilment figures over the window.

The SLA of an evidence request is its due date (``zentro.compliance.evidence_requests``: overdue = open and
``due_at <= now``). The rows and the fulfilment figures are those of the ``evidence-requests`` report, built here
with the same window (one definition of overdue, days to due, owner, worst control state, median days to fulfil
and on-time rate); this report splits its open requests into the overdue queue and the at-risk window.
"""
from __future__ import annotations

import datetime as dt

from pydantic import Field

from zentro.compliance import report_registry as registry
from zentro.compliance.report_registry import ReportContext, WindowQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns

SLUG = "evidence-request-sla"
UNASSIGNED = "(unassigned)"


class EvidenceRequestSlaQuery(WindowQuery):
    at_risk_days: int = Field(7, ge=1, le=30, alias="atRiskDays",
                              description="Open requests due within this many days (and not yet overdue) are at "
                                          "risk (1-30).")


@report(SLUG, title="Evidence request SLA digest", category="Digests", query=EvidenceRequestSlaQuery,
        summary="Evidence request SLA dashboard — the overdue queue, requests at risk of missing their due date, "
                "their owners, and fulfilment figures (median days to fulfil, on-time rate) (JSON or CSV).",
        inputs="assessor evidence requests and their owners (the evidence-requests report), the evidence engine "
               "(control states now)",
        window="open requests as of now; at risk: due within atRiskDays after now; fulfilment figures: requests "
               "fulfilled within the `window` ending now",
        definitions={
            "window": "Look-back of the fulfilment figures.",
            "at_risk_days": "The at-risk window in days.",
            "open": "Open requests (overdue ones included).",
            "overdue": "Open requests whose due date is at or before now (the request's SLA has passed).",
            "at_risk": "Open requests not yet overdue whose due date is within at_risk_days days of now.",
            "oldest_overdue_days": "Days overdue of the oldest overdue request; empty when none.",
            "owners": "Distinct owners of the overdue and at-risk requests; the digest goes to them and the org's "
                      "owners and admins.",
            "unassigned": "Overdue or at-risk requests without an owner.",
            "fulfilled_in_window": "Requests fulfilled within the window.",
            "median_days_to_fulfil": "Median (fulfilled_at − requested_at) in days over those, one decimal; empty "
                                     "when none.",
            "on_time_rate": "Percent of those fulfilled at or before their due date, one decimal; empty when none.",
            "days_overdue": "Whole days since the due date.",
            "days_to_due": "Whole days from now to the due date (floor).",
            "worst_state": "The lowest evidence-engine state (failing < at_risk < passing) among the request's "
                           "controls now.",
            "owners section": "Per owner of an overdue or at-risk request: how many of each and the earliest due "
                              "date.",
            "chart": "Open requests: overdue, at risk, later.",
        })
def build(ctx: ReportContext) -> Report:
    q: EvidenceRequestSlaQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    base = registry.build("evidence-requests", ctx.org_id, now, window=q.window, status="open")
    limit = now + dt.timedelta(days=q.at_risk_days)
    overdue, at_risk = [], []
    later = 0
    for r in base.section("open").iter_rows():
        item = {k: r[k] for k in ("id", "title", "controls", "owner", "requested_by", "requested_at", "due_at",
                                  "worst_state", "link")}
        if r["overdue"]:
            overdue.append({**item, "days_overdue": (now - r["due_at"]).days})
        elif r["due_at"] <= limit:
            at_risk.append({**item, "days_to_due": r["days_to_due"]})
        else:
            later += 1
    owners: dict[str, dict] = {}
    for kind, rows in (("overdue", overdue), ("at_risk", at_risk)):
        for r in rows:
            who = r["owner"] or UNASSIGNED
            o = owners.setdefault(who, {"owner": who, "overdue": 0, "at_risk": 0, "next_due": r["due_at"]})
            o[kind] += 1
            o["next_due"] = min(o["next_due"], r["due_at"])
    owner_rows = sorted(owners.values(), key=lambda o: (-o["overdue"], -o["at_risk"], o["owner"]))
    s = base.summary
    summary = {
        "window": q.window, "at_risk_days": q.at_risk_days, "open": s["open"], "overdue": len(overdue),
        "at_risk": len(at_risk),
        "oldest_overdue_days": max((r["days_overdue"] for r in overdue), default=None),
        "owners": sum(1 for o in owner_rows if o["owner"] != UNASSIGNED),
        "unassigned": sum(1 for r in overdue + at_risk if not r["owner"]),
        "fulfilled_in_window": s["fulfilled_in_window"], "median_days_to_fulfil": s["median_days_to_fulfil"],
        "on_time_rate": s["on_time_rate"],
    }
    chart = Chart("queue", "Open evidence requests against their SLA", "bar", ["overdue", "at risk", "later"],
                  [Series("requests", [float(len(overdue)), float(len(at_risk)), float(later)])], unit="requests",
                  description=f"Open requests: overdue, due within {q.at_risk_days} days, due later.")
    common = ("id", "title", "controls", "owner", "requested_by", ("due_at", "Due"))
    return Report(
        SLUG, "Evidence request SLA digest",
        {"window": q.window, "atRiskDays": q.at_risk_days, "as_of": now, "at_risk_until": limit,
         "from": base.params["from"]}, summary,
        [Section("overdue", "Overdue queue", columns(*common, ("days_overdue", "Days overdue"),
                                                     ("worst_state", "Worst control state"), "link"), overdue),
         Section("at_risk", f"At risk (due within {q.at_risk_days} days)",
                 columns(*common, ("days_to_due", "Days to due"), ("worst_state", "Worst control state"), "link"),
                 at_risk),
         Section("owners", "Owners", columns("owner", "overdue", ("at_risk", "At risk"), ("next_due", "Next due")),
                 owner_rows)],
        now, charts=[chart])
