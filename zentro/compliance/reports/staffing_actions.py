"""Staffing action tracker: every relief action for an obligation peak week with its status, age and completion
SLA, counts and completion rates, and the relief the forecast suggests that nobody tracks yet (JSON, CSV, or a
printable HTML completion report)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field
from sqlalchemy import select

from zentro.compliance import committee as svc
from zentro.compliance.models import STAFFING_ACTION_STATUSES, StaffingAction
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _committee as cm
from zentro.extensions import db


class StaffingActionsQuery(ForecastQuery):
    status: Literal[STAFFING_ACTION_STATUSES] | None = Field(
        None, description="Only list actions in this status (counts and rates stay over every action).")


_KEY = re.compile(r"[a-z][a-z-]*:[0-9][0-9A-Za-z-]*")  # obligation keys: attestation:12, bundle:2026-12-01, ...


def mentioned_keys(title: str) -> set[str]:
    """The obligation keys a staffing action's title names (whole keys: "attestation:12" is not "attestation:1")."""
    return set(_KEY.findall(title))


def action_rows(org_id: int, now: dt.datetime, sla_days: int) -> tuple[list, list[dict]]:
    """Every staffing action of the org, newest week first (then newest id): (the raw column tuples, one tracker
    row per action with its owner e-mail, age, SLA due, past SLA, days past SLA, days to complete and whether it
    was completed within the SLA). The staffing digests read the same rows."""
    rows_db = db.session.execute(
        select(StaffingAction.id, StaffingAction.week_start, StaffingAction.owner_id, StaffingAction.kind,
               StaffingAction.status, StaffingAction.title, StaffingAction.hours, StaffingAction.created_at,
               StaffingAction.completed_at)
        .where(StaffingAction.org_id == org_id)
        .order_by(StaffingAction.week_start.desc(), StaffingAction.id.desc())).all()
    emails = cm.user_emails({r.owner_id for r in rows_db})
    rows = []
    for r in rows_db:
        due = svc.sla_due(r.week_start, sla_days)
        is_open = r.status in svc.OPEN_STATUSES
        past = is_open and now > due
        rows.append({
            "id": r.id, "week": r.week_start, "owner": emails.get(r.owner_id, ""), "kind": r.kind,
            "status": r.status, "title": r.title, "hours": r.hours, "created_at": r.created_at,
            "age_days": max((now - r.created_at).days, 0), "sla_due": due, "past_sla": past,
            "days_past_sla": (now - due).days if past else None, "completed_at": r.completed_at,
            "days_to_complete": (max((r.completed_at - r.created_at).days, 0)
                                 if r.status == "completed" and r.completed_at else None),
            "within_sla": (r.completed_at <= due) if r.status == "completed" and r.completed_at else None})
    return rows_db, rows


def suggested_relief(fc: cm.Forecast, balances: list[cm.WeekBalance], rows_db: list) -> list[dict]:
    """Relief the forecast suggests that no staffing action covers yet (the ``suggested`` definition), in week
    order: ``balances`` are ``cm.balances(fc)``'s weeks, ``rows_db`` the raw actions of ``action_rows``."""
    named: dict[dt.date, set[str]] = {}
    relief_weeks: set[dt.date] = set()
    for r in rows_db:
        named.setdefault(r.week_start, set()).update(mentioned_keys(r.title))
        if r.kind in cm.RELIEF_KINDS:
            relief_weeks.add(r.week_start)
    suggested = []
    for wb in balances:
        for s in wb.suggestions:
            if s["obligation"] not in named.get(wb.week, ()):
                suggested.append({"week": wb.week, "kind": "rebalance", "title": cm.suggestion_title(s),
                                  "owner": s["to"], "hours": s["hours"], "obligation": s["obligation"],
                                  "source": "obligation-load-balancing"})
    for row in cm.capacity_rows(fc, {}):
        if row["shortfall"] and row["week"] not in relief_weeks:
            suggested.append({"week": row["week"], "kind": "add_capacity",
                              "title": f"Add {row['shortfall_hours']:g} owner-hours for the week of "
                                       f"{row['week'].isoformat()}",
                              "owner": "", "hours": row["shortfall_hours"], "obligation": "",
                              "source": "committee-capacity-budget"})
    suggested.sort(key=lambda s: (s["week"], s["kind"] != "add_capacity", s["obligation"]))
    return suggested


@report("staffing-actions", title="Staffing actions", category="Committee & staffing", query=StaffingActionsQuery,
        formats=("json", "csv", "html"),
        summary="The staffing action tracker: proposed, tracked, completed and dismissed load-balance and capacity "
                "relief actions with age and completion SLA, completion rates, and suggested relief not tracked yet "
                "(JSON, CSV, or printable HTML completion report).",
        inputs="staffing actions, committee settings (completion SLA, capacity), open obligations (for the "
               "suggestions)",
        window="every staffing action of the org; suggestions over the forecast from the current ISO week for "
               "`weeks` weeks",
        definitions={
            "actions": "Staffing actions of the org (every status; the status filter only narrows the list).",
            "proposed": "Actions proposed and not yet taken on.",
            "tracked": "Actions the committee tracks (in progress).",
            "completed": "Completed actions (completed_at set by the server when the status moved to completed).",
            "dismissed": "Actions decided against.",
            "open": "proposed + tracked.",
            "past_sla": "Open actions where now is later than sla_due.",
            "completion_rate_pct": "completed / (actions − dismissed) × 100 (one decimal; 0 when there are none).",
            "completed_within_sla": "Completed actions whose completed_at is at or before their sla_due.",
            "on_time_rate_pct": "completed_within_sla / completed × 100.",
            "open_hours": "Owner-hours of open actions.",
            "completed_hours": "Owner-hours of completed actions.",
            "completion_sla_days": "Committee settings: days after the start of an action's week within which it "
                                   "should be completed (14 by default).",
            "suggested_untracked": "Suggested actions (section Suggested, not tracked yet) over the forecast.",
            "week": "Monday (UTC) of the peak week the action relieves.",
            "age_days": "Whole days from the action's creation to now.",
            "sla_due": "The week's Monday 00:00 UTC + completion_sla_days.",
            "days_past_sla": "Whole days now is past sla_due, for open actions past it.",
            "days_to_complete": "Whole days from creation to completion, for completed actions.",
            "suggested": "Relief the forecast suggests that no staffing action covers yet: (1) each rebalance "
                         "suggestion of obligation-load-balancing whose obligation key no action of that week names "
                         "in its title (any status: a dismissed one was decided against); (2) add_capacity for each "
                         "forecast week over capacity with no add_capacity, defer or consolidate action at all, "
                         "hours = that week's shortfall.",
            "chart": "Actions per status per week (stacked bars).",
        })
def build(ctx: ReportContext) -> Report:
    q: StaffingActionsQuery = ctx.query  # type: ignore[assignment]
    config_fc = cm.forecast(ctx.org_id, ctx.now, q.weeks)
    sla_days = config_fc.config.completion_sla_days
    rows_db, rows = action_rows(ctx.org_id, ctx.now, sla_days)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STAFFING_ACTION_STATUSES}
    completed = counts["completed"]
    considered = len(rows) - counts["dismissed"]
    within = sum(1 for r in rows if r["within_sla"])

    # suggested relief nobody tracks yet
    balances, _ = cm.balances(config_fc)
    suggested = suggested_relief(config_fc, balances, rows_db)

    listed = [r for r in rows if q.status is None or r["status"] == q.status]
    summary = {
        "actions": len(rows), **counts, "open": counts["proposed"] + counts["tracked"],
        "past_sla": sum(1 for r in rows if r["past_sla"]),
        "completion_rate_pct": cm.pct(completed, considered),
        "completed_within_sla": within, "on_time_rate_pct": cm.pct(within, completed),
        "open_hours": round(sum(r["hours"] for r in rows if r["status"] in svc.OPEN_STATUSES), 2),
        "completed_hours": round(sum(r["hours"] for r in rows if r["status"] == "completed"), 2),
        "completion_sla_days": sla_days, "suggested_untracked": len(suggested),
    }
    weeks = sorted({r["week"] for r in rows})
    charts = [Chart("status", "Staffing actions per week by status", "bar", [w.isoformat() for w in weeks],
                    [Series(s, [sum(1 for r in rows if r["week"] == w and r["status"] == s) for w in weeks])
                     for s in STAFFING_ACTION_STATUSES], unit="actions", stacked=True,
                    description="Stacked bars: staffing actions for each peak week, by status.")] if weeks else []
    return Report(
        "staffing-actions", "Staffing actions", {"weeks": q.weeks, "status": q.status}, summary,
        [Section("actions", "Staffing actions", columns(
            "id", "week", "owner", "kind", "status", "title", ("hours", "Hours"), ("created_at", "Created"),
            ("age_days", "Age (days)"), ("sla_due", "SLA due"), ("past_sla", "Past SLA"),
            ("days_past_sla", "Days past SLA"), ("completed_at", "Completed"),
            ("days_to_complete", "Days to complete"), ("within_sla", "Completed within SLA")), listed),
         Section("status_counts", "Counts by status", columns("status", "actions", ("hours", "Hours")),
                 [{"status": s, "actions": counts[s],
                   "hours": round(sum(r["hours"] for r in rows if r["status"] == s), 2)}
                  for s in STAFFING_ACTION_STATUSES]),
         Section("suggested", "Suggested, not tracked yet", columns(
             "week", "kind", "title", ("owner", "Suggested owner"), ("hours", "Hours"), "obligation", "source"),
             suggested)],
        ctx.now, charts=charts)
