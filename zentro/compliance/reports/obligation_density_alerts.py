"""Obligation density alerts (slug ``obligation-density-alerts``): the forecast weeks whose open-obligation density
breaches the org's committee thresholds, each with its level, the obligations that weigh most and the owners who
carry them.

Density per week and its level are the obligation forecast's (``_obligation_views.forecast_weeks`` over
``obligations.load``, levels by ``obligations.density_level``: critical when count >= density_critical, warn when
count >= density_warn). Every delivery of the digest records one ``DensityAlert`` per breached week with the
channels it went to and their status (``zentro.compliance.digests.obligation_density_alerts``); the
obligation-density-trend-history report shows them.
"""
from __future__ import annotations


from sqlalchemy import func, select

from zentro.compliance import obligations as obl
from zentro.compliance.models import DensityAlert
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _obligation_views as views
from zentro.extensions import db

SLUG = "obligation-density-alerts"
TOP_OBLIGATIONS = 5
TOP_OWNERS = 3
UNASSIGNED = "(unassigned)"


def threshold_of(level: str, config: obl.CommitteeConfig) -> int:
    return config.density_critical if level == "critical" else config.density_warn


@report(SLUG, title="Obligation density alerts", category="Digests", query=ForecastQuery,
        formats=("json", "csv", "html"),
        summary="Obligation density alerting — forecast weeks whose open obligations breach the committee's density "
                "thresholds, with the level, the largest obligations and the owners carrying them (JSON, CSV or "
                "printable HTML).",
        inputs="open obligations (attestations, vendor reviews and reports, scheduled bundles, audit checkpoints, "
               "evidence requests), committee settings (density_warn, density_critical, effort per kind), density "
               "alerts already recorded",
        window="from the start of the current ISO week for `weeks` weeks (the obligation forecast's horizon)",
        definitions={
            "weeks": "Forecast weeks checked: the current ISO week (Monday start, UTC) and the following ones.",
            "density_warn": "Committee threshold: a week with at least this many open obligations due is at warn "
                            "level.",
            "density_critical": "Committee threshold: a week with at least this many is critical.",
            "breached_weeks": "Forecast weeks at warn or critical level (the alerts this digest sends; none: nothing "
                              "is sent).",
            "critical_weeks": "Breached weeks at critical level.",
            "warn_weeks": "Breached weeks at warn level.",
            "first_breach": "Monday of the first breached week; empty when none.",
            "worst_week": "Monday of the breached week with the most obligations due (ties: the earlier); empty when "
                          "none.",
            "worst_density": "Obligations due in the worst week (0 when none).",
            "obligations_in_breach": "Open obligations due in the breached weeks.",
            "hours_in_breach": "Their effort hours.",
            "breaches.density": "Open obligations due in the week (Monday 00:00 to the next Monday, UTC), as in the "
                                "obligation forecast.",
            "breaches.level": "critical when density >= density_critical, else warn (density >= density_warn).",
            "breaches.threshold": "The threshold the level is measured against (density_critical for critical, "
                                  "density_warn for warn).",
            "breaches.over_by": "density − threshold.",
            "breaches.owner_hours": "Effort hours of the week's obligations.",
            "breaches.owners": "Distinct owners with obligations due that week ('(unassigned)' counts as one).",
            "breaches.top_owners": f"The {TOP_OWNERS} owners with the most obligations due that week (ties: more "
                                   "hours, then e-mail), as 'owner (count)'.",
            "breaches.alerts_recorded": "Density alerts already recorded for the week (earlier deliveries).",
            "obligations section": f"Per breached week, its {TOP_OBLIGATIONS} largest obligations by effort (ties: "
                                   "earlier due, then key).",
            "owners section": f"Per breached week, its {TOP_OWNERS} most loaded owners: obligations and hours.",
            "chart": "Obligations due per forecast week; the reference line is the warn threshold.",
        })
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    config = obl.committee_config(ctx.org_id)
    weeks, start, end = views.horizon(ctx.now, q.weeks)
    items = obl.open_only(obl.load(ctx.org_id, ctx.now, config=config, until=end))
    rows = views.forecast_weeks(items, weeks, config)
    buckets = obl.in_weeks(items, weeks)
    breached = [r for r in rows if r.level != "ok"]
    recorded = dict(db.session.execute(
        select(DensityAlert.week_start, func.count()).where(
            DensityAlert.org_id == ctx.org_id, DensityAlert.week_start >= weeks[0],
            DensityAlert.week_start <= weeks[-1]).group_by(DensityAlert.week_start)).all()) if breached else {}

    breach_rows, obligation_rows, owner_rows = [], [], []
    for r in breached:
        week_items = buckets[r.week]
        per_owner: dict[str, list[obl.Obligation]] = obl.by_owner(week_items)
        ranked = sorted(per_owner.items(),
                        key=lambda kv: (-len(kv[1]), -sum(o.effort_hours for o in kv[1]), kv[0]))
        top_owners = ranked[:TOP_OWNERS]
        threshold = threshold_of(r.level, config)
        breach_rows.append({
            "week": r.week, "level": r.level, "density": r.count, "threshold": threshold,
            "over_by": r.count - threshold, "owner_hours": r.hours, "owners": len(per_owner),
            "top_owners": [f"{who} ({len(obs)})" for who, obs in top_owners],
            "kinds": {k: v for k, v in r.kinds.items() if v},
            "alerts_recorded": int(recorded.get(r.week, 0))})
        for who, obs in top_owners:
            owner_rows.append({"week": r.week, "owner": who, "obligations": len(obs),
                               "hours": round(sum(o.effort_hours for o in obs), 2)})
        biggest = sorted(week_items, key=lambda o: (-o.effort_hours, o.due_at, o.key))[:TOP_OBLIGATIONS]
        for o in biggest:
            obligation_rows.append({"week": r.week, "key": o.key, "kind": o.kind, "title": o.title,
                                    "owner": o.owner or UNASSIGNED, "due": o.due_at.date(),
                                    "effort_hours": o.effort_hours, "frameworks": list(o.frameworks),
                                    "link": o.url})
    worst = max(breached, key=lambda r: (r.count, -r.week.toordinal())) if breached else None
    summary = {
        "weeks": q.weeks, "density_warn": config.density_warn, "density_critical": config.density_critical,
        "breached_weeks": len(breached), "critical_weeks": sum(1 for r in breached if r.level == "critical"),
        "warn_weeks": sum(1 for r in breached if r.level == "warn"),
        "first_breach": breached[0].week if breached else None,
        "worst_week": worst.week if worst else None, "worst_density": worst.count if worst else 0,
        "obligations_in_breach": sum(r.count for r in breached),
        "hours_in_breach": round(sum(r.hours for r in breached), 1),
    }
    chart = Chart("density", "Obligations due per forecast week", "bar", [w.isoformat() for w in weeks],
                  [Series("Obligations", [float(r.count) for r in rows])], unit="obligations",
                  threshold=float(config.density_warn), threshold_label=f"warn ({config.density_warn})",
                  description=f"Open obligations due each week; warn at {config.density_warn}, critical at "
                              f"{config.density_critical}.")
    return Report(
        SLUG, "Obligation density alerts", {"weeks": q.weeks, "from": start, "to": end}, summary,
        [Section("breaches", "Breached weeks", columns(
            "week", "level", "density", "threshold", ("over_by", "Over by"), ("owner_hours", "Owner-hours"),
            "owners", ("top_owners", "Top owners"), "kinds", ("alerts_recorded", "Alerts recorded")), breach_rows),
         Section("obligations", "Largest obligations of the breached weeks", columns(
             "week", "key", "kind", "title", "owner", "due", ("effort_hours", "Effort (h)"), "frameworks", "link"),
             obligation_rows),
         Section("owners", "Most loaded owners of the breached weeks", columns(
             "week", "owner", "obligations", "hours"), owner_rows)],
        ctx.now, charts=[chart])
