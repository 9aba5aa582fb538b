"""Obligation density trend history: for each of the trailing weeks, how many obligations fell due (done ones
included), how many are still open, the density level against the committee thresholds, and the density alerts
recorded for the week with their delivery channels."""
from __future__ import annotations

import datetime as dt

from pydantic import Field
from sqlalchemy import select

from zentro.compliance import obligations as obl
from zentro.compliance.models import DensityAlert
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.extensions import db

LEVELS = ("ok", "warn", "critical")


class TrendQuery(ReportQuery):
    weeks: int = Field(13, ge=1, le=52, description="Trailing weeks, ending with the current ISO week (1-52; 13 = "
                                                    "one quarter).")


@report("obligation-density-trend-history", title="Obligation density trend history", category="Committee & staffing",
        query=TrendQuery,
        summary="Trailing-quarter weekly obligation density (obligations due, done ones included, and still open) "
                "against the committee thresholds, with the density alerts recorded and their channels (JSON or CSV).",
        inputs="obligations including completed ones (attestations, vendor reviews and reports, evidence bundles "
               "made and scheduled, audit checkpoints, evidence requests), committee settings (thresholds), density "
               "alerts",
        window="the `weeks` ISO weeks ending with the current one (Monday 00:00 UTC of the first to now)",
        definitions={
            "weeks": "Trailing weeks reported, the current (partial) ISO week being the last.",
            "density_warn": "Committee settings: obligations due in one week at which the week is at warn level "
                            "(8 by default).",
            "density_critical": "Committee settings: obligations due in one week at which it is critical (15 by "
                                "default).",
            "total_due": "Obligations due in the trailing weeks, completed ones included.",
            "average_density": "total_due / weeks (one decimal).",
            "peak_week": "The week with the highest density (ties: the later week); empty when nothing fell due.",
            "peak_density": "density of the peak week.",
            "weeks_warn": "Weeks at warn level.",
            "weeks_critical": "Weeks at critical level.",
            "alerts": "Density alerts recorded (by the density-alert digest) for the trailing weeks, counted by the "
                      "week they were about.",
            "alert_weeks": "Weeks with at least one alert recorded.",
            "breached_without_alert": "Weeks at warn or critical level with no alert recorded for them.",
            "week": "Monday (UTC) of the week.",
            "density": "Obligations due in the week (Monday 00:00 to the next Monday, UTC), open or completed: "
                       "obligations.load(include_done=True).",
            "completed": "Of those, completed ones (attested, checkpoint done, request fulfilled, bundle made).",
            "open": "Of those, still open (overdue if the week is past).",
            "hours": "Effort hours of the week's obligations (effort per kind from committee settings).",
            "level": "ok / warn / critical: density against density_warn and density_critical (≥).",
            "alerts (per week)": "DensityAlert rows whose week_start is the week.",
            "alert_level": "The highest level among the week's alerts.",
            "channels": "Distinct delivery channels of the week's alerts (email, slack, webhook, ...).",
            "deliveries": "Channel deliveries of the week's alerts (one per alert and channel).",
            "failed_deliveries": "Of those, deliveries whose status is failed.",
            "caveat": "Vendor reviews and report renewals keep only their next due date, so past ones are not in "
                      "the history.",
            "chart": "Lines per week: density and still-open count, with the warn threshold as the reference line "
                     "and the critical threshold as a flat line.",
        })
def build(ctx: ReportContext) -> Report:
    q: TrendQuery = ctx.query  # type: ignore[assignment]
    config = obl.committee_config(ctx.org_id)
    current = obl.week_start(ctx.now)
    weeks = [current - dt.timedelta(weeks=q.weeks - 1 - i) for i in range(q.weeks)]
    start = dt.datetime.combine(weeks[0], dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(current + dt.timedelta(weeks=1), dt.time(), dt.timezone.utc)
    buckets: dict[dt.date, list[obl.Obligation]] = {w: [] for w in weeks}
    for o in obl.load(ctx.org_id, ctx.now, include_done=True, config=config, until=end, due_from=start):
        if start <= o.due_at < end:
            buckets[o.week].append(o)
    alerts: dict[dt.date, list[tuple[str, list]]] = {w: [] for w in weeks}
    for week, level, channels in db.session.execute(
            select(DensityAlert.week_start, DensityAlert.level, DensityAlert.channels)
            .where(DensityAlert.org_id == ctx.org_id, DensityAlert.week_start >= weeks[0],
                   DensityAlert.week_start <= current)):
        if week in alerts:
            alerts[week].append((level, channels or []))
    rows = []
    for w in weeks:
        items = buckets[w]
        done = sum(1 for o in items if o.status == "done")
        found = alerts[w]
        deliveries = [c for _, chans in found for c in chans if isinstance(c, dict)]
        alert_levels = [lv for lv, _ in found if lv in LEVELS]
        rows.append({
            "week": w, "density": len(items), "completed": done, "open": len(items) - done,
            "hours": round(sum(o.effort_hours for o in items), 2), "level": obl.density_level(len(items), config),
            "alerts": len(found), "alert_level": max(alert_levels, key=LEVELS.index) if alert_levels else "",
            "channels": sorted({str(c.get("channel", "")) for c in deliveries if c.get("channel")}),
            "deliveries": len(deliveries),
            "failed_deliveries": sum(1 for c in deliveries if c.get("status") == "failed")})
    total = sum(r["density"] for r in rows)
    peak = max(rows, key=lambda r: (r["density"], r["week"]))
    summary = {
        "weeks": q.weeks, "density_warn": config.density_warn, "density_critical": config.density_critical,
        "total_due": total, "average_density": round(total / q.weeks, 1),
        "peak_week": peak["week"] if peak["density"] else None, "peak_density": peak["density"],
        "weeks_warn": sum(1 for r in rows if r["level"] == "warn"),
        "weeks_critical": sum(1 for r in rows if r["level"] == "critical"),
        "alerts": sum(r["alerts"] for r in rows), "alert_weeks": sum(1 for r in rows if r["alerts"]),
        "breached_without_alert": sum(1 for r in rows if r["level"] != "ok" and not r["alerts"]),
    }
    chart = Chart("density", "Obligations due per week", "line", [w.isoformat() for w in weeks],
                  [Series("Due (open and completed)", [r["density"] for r in rows]),
                   Series("Still open", [r["open"] for r in rows]),
                   Series("Critical threshold", [config.density_critical for _ in rows])],
                  unit="obligations", threshold=config.density_warn,
                  threshold_label=f"Warn at {config.density_warn}",
                  description="Lines per trailing week: obligations due (completed included) and those still "
                              "open; the reference line is the warn threshold, the flat line the critical one.")
    return Report(
        "obligation-density-trend-history", "Obligation density trend history",
        {"weeks": q.weeks, "from": start, "to": end}, summary,
        [Section("weeks", "Weekly density", columns(
            "week", "density", "completed", "open", ("hours", "Effort (h)"), "level", "alerts",
            ("alert_level", "Alert level"), "channels", "deliveries", ("failed_deliveries", "Failed deliveries")),
            rows)],
        ctx.now, charts=[chart],
        notes=["Vendor reviews and vendor report renewals keep only their next due date: past ones are not part "
               "of the history."])
