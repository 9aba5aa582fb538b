"""Assessor evidence request workflow: the open queue with due dates and each control's live readiness state, and
what was fulfilled in the window with time-to-fulfil and on-time rate."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field
from sqlalchemy import func, select

from zentro.compliance import obligations as obl
from zentro.compliance.models import EvidenceBundle, EvidenceRequest
from zentro.compliance.report_registry import ReportContext, WindowQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._evidence import assess_controls, aware, control_title, days_between, median
from zentro.extensions import db

STATE_RANK = {"failing": 0, "at_risk": 1, "passing": 2}
DUE_BUCKETS = ("overdue", "due in 0-7 days", "due in 8-30 days", "due later")


class EvidenceRequestsQuery(WindowQuery):
    status: Literal["open", "overdue", "fulfilled", "cancelled"] | None = Field(
        None, description="Only list requests in this state (open includes overdue). The summary always counts "
                          "every request.")


@report("evidence-requests", title="Assessor evidence requests", category="Evidence & testing",
        query=EvidenceRequestsQuery,
        summary="Assessor evidence request workflow — open document requests with due dates, owners and the live "
                "readiness of the controls they concern; fulfilment time and on-time rate (JSON or CSV).",
        inputs="evidence requests, their owners and fulfilling bundles; the evidence engine (control states now, "
               "30-day evidence window)",
        window="open requests: all, as of now; fulfilled requests: fulfilled_at within the `window` ending now",
        definitions={
            "open": "Requests with status open (overdue ones included).",
            "overdue": "Open requests whose due date is at or before now.",
            "due_in_7_days": "Open requests not yet overdue whose due date is within 7 days of now.",
            "fulfilled_in_window": "Requests fulfilled (fulfilled_at) within the window ending now.",
            "median_days_to_fulfil": "Median over the requests fulfilled in the window of (fulfilled_at − "
                                     "requested_at) in days, one decimal; null when none.",
            "on_time_rate": "Percent of the requests fulfilled in the window whose fulfilled_at is at or before their "
                            "due date, one decimal; null when none.",
            "cancelled": "Requests with status cancelled (all time); the cancelled section lists those requested "
                         "within the window.",
            "days_to_due": "Whole days from now to the due date (floor); negative when overdue.",
            "control_states": "Each requested control's state in the evidence engine now (passing ≥ 70, at_risk "
                              "40–69, failing < 40; 30-day evidence window); worst_state is the lowest of them.",
            "days_to_fulfil": "fulfilled_at − requested_at in days, one decimal.",
            "on_time": "fulfilled_at ≤ due_at.",
            "controls section": "Per control named by an open request: its engine state and score now, open and "
                                "overdue requests naming it, the earliest open due date.",
            "due chart": "Open requests by due bucket: overdue, due in 0–7 days, 8–30 days, later.",
        })
def build(ctx: ReportContext) -> Report:
    q: EvidenceRequestsQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    start = now - dt.timedelta(days=q.days)
    rows = db.session.execute(select(EvidenceRequest.id, EvidenceRequest.title, EvidenceRequest.controls,
                                     EvidenceRequest.requested_by, EvidenceRequest.owner_id,
                                     EvidenceRequest.requested_at, EvidenceRequest.due_at, EvidenceRequest.status,
                                     EvidenceRequest.fulfilled_at, EvidenceRequest.bundle_id,
                                     EvidenceRequest.file_ref)
                              .where(EvidenceRequest.org_id == ctx.org_id,
                                     (EvidenceRequest.status == "open")
                                     | ((EvidenceRequest.status == "fulfilled")
                                        & (EvidenceRequest.fulfilled_at >= start))
                                     | ((EvidenceRequest.status == "cancelled")
                                        & (EvidenceRequest.requested_at >= start)))).all()
    cancelled_total = db.session.scalar(select(func.count()).select_from(EvidenceRequest).where(
        EvidenceRequest.org_id == ctx.org_id, EvidenceRequest.status == "cancelled")) or 0
    emails = obl.owner_emails(ctx.org_id)
    bundle_ids = {r.bundle_id for r in rows if r.bundle_id is not None}
    seqs = {bid: seq for bid, seq in db.session.execute(select(EvidenceBundle.id, EvidenceBundle.seq).where(
        EvidenceBundle.org_id == ctx.org_id, EvidenceBundle.id.in_(bundle_ids)))} if bundle_ids else {}

    open_rows = sorted((r for r in rows if r.status == "open"), key=lambda r: (aware(r.due_at), r.id))
    tags = sorted({t for r in open_rows for t in (r.controls or ())})
    states = assess_controls(ctx.org_id, now, tags=tags)
    labels = {t: f"{t}={c.state}" for t, c in states.items()}

    open_list, control_rows = [], {}
    buckets = dict.fromkeys(DUE_BUCKETS, 0)
    overdue = due_7 = 0
    for r in open_rows:
        due = aware(r.due_at)
        is_overdue = due <= now
        days = (due - now).days
        overdue += is_overdue
        soon = not is_overdue and due <= now + dt.timedelta(days=7)
        due_7 += soon
        bucket = ("overdue" if is_overdue else "due in 0-7 days" if soon
                  else "due in 8-30 days" if due <= now + dt.timedelta(days=30) else "due later")
        buckets[bucket] += 1
        controls = list(r.controls or ())
        found = [states[t] for t in controls if t in states]
        worst = min((c.state for c in found), key=STATE_RANK.get, default=None)
        open_list.append({
            "id": r.id, "title": r.title, "state": "overdue" if is_overdue else "open", "controls": controls,
            "control_states": [labels.get(t) or f"{t}=unknown" for t in controls],
            "worst_state": worst, "owner": emails.get(r.owner_id, "") if r.owner_id else "",
            "requested_by": r.requested_by, "requested_at": aware(r.requested_at), "due_at": due,
            "days_to_due": days, "overdue": is_overdue, "link": f"/compliance/evidence-requests/{r.id}"})
        for t in controls:
            c = control_rows.get(t)
            if c is None:
                res = states.get(t)
                c = control_rows[t] = {"control": t, "title": control_title(t), "state": res.state if res else None,
                                       "score": res.score if res else None, "open_requests": 0,
                                       "overdue_requests": 0, "next_due": due}
            c["open_requests"] += 1
            c["overdue_requests"] += is_overdue
            c["next_due"] = min(c["next_due"], due)

    fulfilled = sorted((r for r in rows if r.status == "fulfilled" and r.fulfilled_at is not None
                        and start <= aware(r.fulfilled_at) <= now), key=lambda r: (aware(r.fulfilled_at), r.id))
    fulfilled_list, durations, on_time = [], [], 0
    for r in fulfilled:
        done, due, asked = aware(r.fulfilled_at), aware(r.due_at), aware(r.requested_at)
        took = days_between(done, asked)
        durations.append(took)
        ok = done <= due
        on_time += ok
        fulfilled_list.append({
            "id": r.id, "title": r.title, "controls": list(r.controls or ()),
            "owner": emails.get(r.owner_id, "") if r.owner_id else "", "requested_by": r.requested_by,
            "requested_at": asked, "due_at": due, "fulfilled_at": done, "days_to_fulfil": took, "on_time": ok,
            "bundle_seq": seqs.get(r.bundle_id), "file_ref": r.file_ref,
            "link": f"/compliance/evidence-requests/{r.id}"})
    cancelled = [r for r in rows if r.status == "cancelled"]  # requested in the window
    cancelled_list = [{"id": r.id, "title": r.title, "controls": list(r.controls or ()),
                       "requested_by": r.requested_by, "requested_at": aware(r.requested_at), "due_at": aware(r.due_at),
                       "link": f"/compliance/evidence-requests/{r.id}"}
                      for r in sorted(cancelled, key=lambda r: r.id)]

    if q.status == "overdue":
        open_list = [r for r in open_list if r["overdue"]]
    if q.status in ("overdue", "open"):
        fulfilled_list, cancelled_list = [], []
    elif q.status == "fulfilled":
        open_list, cancelled_list = [], []
    elif q.status == "cancelled":
        open_list, fulfilled_list = [], []
    ordered_controls = sorted(control_rows.values(),
                              key=lambda c: (STATE_RANK.get(c["state"], 3), c["next_due"], c["control"]))
    summary = {"open": len(open_rows), "overdue": overdue, "due_in_7_days": due_7,
               "fulfilled_in_window": len(fulfilled), "median_days_to_fulfil": median(durations),
               "on_time_rate": round(100.0 * on_time / len(fulfilled), 1) if fulfilled else None,
               "cancelled": cancelled_total}
    chart = Chart("due", "Open evidence requests by due date", "bar", list(DUE_BUCKETS),
                  [Series("Open requests", [float(buckets[b]) for b in DUE_BUCKETS])], unit="requests",
                  description="Bars: open assessor requests overdue, due within a week, within a month, later.")
    return Report(
        "evidence-requests", "Assessor evidence requests",
        {"window": q.window, "status": q.status, "from": start, "to": now}, summary,
        [Section("open", "Open requests", columns("id", "title", "state", "controls", "control_states",
                                                  "worst_state", "owner", "requested_by", "requested_at",
                                                  ("due_at", "Due"), ("days_to_due", "Days to due"), "overdue",
                                                  "link"), open_list),
         Section("fulfilled", "Fulfilled in window", columns("id", "title", "controls", "owner", "requested_by",
                                                             "requested_at", ("due_at", "Due"), "fulfilled_at",
                                                             ("days_to_fulfil", "Days to fulfil"), "on_time",
                                                             ("bundle_seq", "Bundle #"), ("file_ref", "File"), "link"),
                 fulfilled_list),
         Section("cancelled", "Cancelled (requested in window)",
                 columns("id", "title", "controls", "requested_by", "requested_at", ("due_at", "Due"), "link"),
                 cancelled_list),
         Section("controls", "Controls with open requests", columns("control", "title", "state", "score",
                                                                    "open_requests", "overdue_requests",
                                                                    "next_due"), ordered_controls)],
        now, charts=[chart])
