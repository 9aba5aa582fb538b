"""Staffing completion rollup (preview): the staffing actions completed in the period (``periodDays``, a week by
default) with the on-time rate against the committee completion SLA, the tracker's overall completion rate, and
the open and past-SLA actions per owner. Delivered weekly to the committee; the cross-staffing committee escalation
starts from the last time its e-mail went out."""
from __future__ import annotations

import datetime as dt

from pydantic import Field

from zentro.compliance import committee as svc
from zentro.compliance.models import STAFFING_ACTION_STATUSES
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.compliance.reports import _committee as cm
from zentro.compliance.reports import staffing_sla_breach_digest as sb


class RollupQuery(ReportQuery):
    period_days: int = Field(7, ge=1, le=730, alias="periodDays",
                             description="Completions in the last this many days, ending now (1-730; 7 = a week).")


def completed_in(rows: list[dict], start: dt.datetime, now: dt.datetime) -> list[dict]:
    """Tracker rows completed in [start, now], earliest completion first (then id)."""
    done = [r for r in rows if r["status"] == "completed" and r["completed_at"] is not None
            and start <= r["completed_at"] <= now]
    return sorted(done, key=lambda r: (r["completed_at"], r["id"]))


@report("staffing-completion-rollup", title="Staffing completion rollup", category="Digests", query=RollupQuery,
        formats=("json", "csv", "html"),
        summary="Staffing actions completed in the period with the on-time rate against the committee completion "
                "SLA, the overall completion rate, and open and past-SLA actions by owner (JSON, CSV or printable "
                "HTML). Delivered weekly by e-mail, Slack and webhook to the committee.",
        inputs="staffing actions, committee settings (completion SLA)",
        window="completions in the last `periodDays` days ending now; open actions as of now",
        definitions={
            "period_days": "The rollup period in days (periodDays), ending now.",
            "completed_in_period": "Actions whose completed_at falls in [now − periodDays, now].",
            "completed_hours_in_period": "Owner-hours of those actions.",
            "completed_within_sla_in_period": "Of those, the ones completed at or before their sla_due.",
            "on_time_rate_pct": "completed_within_sla_in_period / completed_in_period × 100 (one decimal; 0 when "
                                "nothing was completed in the period).",
            "avg_days_to_complete": "Mean days_to_complete of the period's completions (one decimal; 0 when none).",
            "actions": "Staffing actions of the org (every status).",
            "completed": "Completed actions, all time.",
            "completion_rate_pct": "staffing-actions completion_rate_pct: completed / (actions − dismissed) × 100, "
                                   "all time.",
            "open": "Open actions now: proposed + tracked.",
            "proposed": "Actions proposed and not yet taken on.",
            "tracked": "Actions the committee tracks (in progress).",
            "past_sla": "Open actions where now is later than sla_due.",
            "open_hours": "Owner-hours of open actions.",
            "completion_sla_days": "Committee settings: days after the start of an action's week within which it "
                                   "should be completed.",
            "week": "Monday (UTC) of the peak week the action relieves.",
            "sla_due": "The week's Monday 00:00 UTC + completion_sla_days.",
            "within_sla": "completed_at is at or before sla_due.",
            "days_to_complete": "Whole days from creation to completion.",
            "days_past_sla": "Whole days now is past sla_due, for open actions past it.",
            "owner rows": "Per owner ((unassigned) last) with an open action or a completion in the period: open, "
                          "past SLA, open hours, completed in the period and, of those, within the SLA.",
        })
def build(ctx: ReportContext) -> Report:
    q: RollupQuery = ctx.query  # type: ignore[assignment]
    sla_days, rows = sb.tracker(ctx.org_id, ctx.now)
    start = ctx.now - dt.timedelta(days=q.period_days)
    done = completed_in(rows, start, ctx.now)
    open_rows = sorted((r for r in rows if r["status"] in svc.OPEN_STATUSES), key=lambda r: (r["week"], r["id"]))
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STAFFING_ACTION_STATUSES}
    within = sum(1 for r in done if r["within_sla"])
    summary = {
        "period_days": q.period_days, "completed_in_period": len(done),
        "completed_hours_in_period": round(sum(r["hours"] for r in done), 2),
        "completed_within_sla_in_period": within, "on_time_rate_pct": cm.pct(within, len(done)),
        "avg_days_to_complete": (round(sum(r["days_to_complete"] for r in done) / len(done), 1) if done else 0.0),
        "actions": len(rows), "completed": counts["completed"],
        "completion_rate_pct": cm.pct(counts["completed"], len(rows) - counts["dismissed"]),
        "open": len(open_rows), "proposed": counts["proposed"], "tracked": counts["tracked"],
        "past_sla": sum(1 for r in open_rows if r["past_sla"]),
        "open_hours": round(sum(r["hours"] for r in open_rows), 2), "completion_sla_days": sla_days,
    }
    done_ids = {r["id"] for r in done}

    def figures(group: list[dict]) -> dict:
        opened = [r for r in group if r["status"] in svc.OPEN_STATUSES]
        finished = [r for r in group if r["id"] in done_ids]
        return {"open": len(opened), "past_sla": sum(1 for r in opened if r["past_sla"]),
                "open_hours": round(sum(r["hours"] for r in opened), 2), "completed_in_period": len(finished),
                "completed_within_sla": sum(1 for r in finished if r["within_sla"])}

    return Report(
        "staffing-completion-rollup", "Staffing completion rollup",
        {"periodDays": q.period_days, "from": start, "to": ctx.now}, summary,
        [Section("completed", "Completed in the period", columns(
            "id", "week", "owner", "kind", "title", ("hours", "Hours"), ("created_at", "Created"),
            ("completed_at", "Completed"), ("days_to_complete", "Days to complete"), ("sla_due", "SLA due"),
            ("within_sla", "Within SLA")), done),
         Section("owners", "Open and completed by owner", columns(
             "owner", "open", ("past_sla", "Past SLA"), ("open_hours", "Open hours"),
             ("completed_in_period", "Completed in period"), ("completed_within_sla", "Completed within SLA")),
             sb.by_owner(open_rows + done, figures)),
         Section("open", "Open actions", columns(
             "id", "week", "owner", "kind", "status", "title", ("hours", "Hours"), ("age_days", "Age (days)"),
             ("sla_due", "SLA due"), ("past_sla", "Past SLA"), ("days_past_sla", "Days past SLA")), open_rows)],
        ctx.now)
