"""Staffing action reminders (preview): open staffing actions (proposed or tracked) whose peak week is over (the
week's Monday + 7 days is at or before now), with the owner, the action's age and the days since the week ended.
Delivered daily to the owners of those actions and the org's owners and admins."""
from __future__ import annotations

import datetime as dt

from zentro.compliance import committee as svc
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.compliance.reports import staffing_sla_breach_digest as sb


def week_end(week: dt.date) -> dt.datetime:
    """The moment a peak week is over: the next Monday 00:00 UTC."""
    return dt.datetime.combine(week + dt.timedelta(days=7), dt.time(), dt.timezone.utc)


def reminders(rows: list[dict], now: dt.datetime) -> list[dict]:
    """The open tracker rows whose week is over, oldest week first (then id), with week_ended and
    days_past_week."""
    out = []
    for r in rows:
        if r["status"] in svc.OPEN_STATUSES and week_end(r["week"]) <= now:
            end = week_end(r["week"])
            out.append({**r, "week_ended": end, "days_past_week": (now - end).days})
    return sorted(out, key=lambda r: (r["week"], r["id"]))


def _owner_figures(rows: list[dict]) -> dict:
    return {"actions": len(rows), "hours": round(sum(r["hours"] for r in rows), 2),
            "past_sla": sum(1 for r in rows if r["past_sla"]), "oldest_week": min(r["week"] for r in rows),
            "max_days_past_week": max(r["days_past_week"] for r in rows)}


@report("staffing-action-reminders", title="Staffing action reminders", category="Digests", query=ReportQuery,
        summary="Open staffing actions (proposed or tracked) whose peak week is over, with owner, age and days "
                "past the week (JSON or CSV). Delivered daily by e-mail and Slack to those actions' owners and the "
                "org's owners and admins; nothing is sent when there is none.",
        inputs="staffing actions, committee settings (completion SLA)",
        window="every open staffing action of the org whose week ended at or before now",
        definitions={
            "reminders": "Open staffing actions (proposed or tracked) whose week is over: the week's Monday + 7 "
                         "days (00:00 UTC) is at or before now.",
            "owners": "Distinct owners (e-mails) of those actions: they receive the reminder.",
            "unassigned": "Of those actions, the ones without an owner.",
            "hours": "Owner-hours of those actions.",
            "past_sla": "Of those actions, the ones past the completion SLA (staffing-actions past_sla).",
            "oldest_week": "The earliest week among them (empty when none).",
            "max_days_past_week": "The largest days_past_week (0 when none).",
            "completion_sla_days": "Committee settings: days after the start of an action's week within which it "
                                   "should be completed.",
            "week": "Monday (UTC) of the peak week the action relieves.",
            "week_ended": "The week's Monday + 7 days, 00:00 UTC.",
            "days_past_week": "Whole days from week_ended to now.",
            "age_days": "Whole days from the action's creation to now.",
            "sla_due / days_past_sla": "As in staffing-actions: the week's Monday + completion_sla_days, and whole "
                                       "days now is past it (empty while not past).",
            "owner rows": "Per owner ((unassigned) last): actions, hours, past SLA, the oldest week and the most "
                          "days past a week.",
        })
def build(ctx: ReportContext) -> Report:
    sla_days, rows = sb.tracker(ctx.org_id, ctx.now)
    found = reminders(rows, ctx.now)
    summary = {
        "reminders": len(found), "owners": len({r["owner"] for r in found if r["owner"]}),
        "unassigned": sum(1 for r in found if not r["owner"]),
        "hours": round(sum(r["hours"] for r in found), 2),
        "past_sla": sum(1 for r in found if r["past_sla"]),
        "oldest_week": found[0]["week"] if found else None,
        "max_days_past_week": max((r["days_past_week"] for r in found), default=0),
        "completion_sla_days": sla_days,
    }
    return Report(
        "staffing-action-reminders", "Staffing action reminders", {}, summary,
        [Section("reminders", "Open actions whose week is over", columns(
            "id", "week", ("week_ended", "Week ended"), "owner", "kind", "status", "title", ("hours", "Hours"),
            ("created_at", "Created"), ("age_days", "Age (days)"), ("days_past_week", "Days past the week"),
            ("sla_due", "SLA due"), ("past_sla", "Past SLA"), ("days_past_sla", "Days past SLA")), found),
         Section("owners", "Reminders by owner", columns(
             "owner", "actions", ("hours", "Hours"), ("past_sla", "Past SLA"), "oldest_week",
             ("max_days_past_week", "Most days past a week")), sb.by_owner(found, _owner_figures))],
        ctx.now)
