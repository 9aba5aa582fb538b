"""Compliance KPI trends: weekly remediation velocity, attestation closure, framework readiness and evidence
events, over the engine's seven-day trend buckets."""
from __future__ import annotations

from pydantic import Field
from sqlalchemy import Integer, func, literal_column, select

from zentro.audit.models import AuditTag
from zentro.compliance import engine
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog
from zentro.extensions import db


class KpiQuery(ReportQuery):
    weeks: int = Field(12, ge=1, le=52, description="Seven-day buckets ending today (1-52; 13 ≈ one quarter).")


def _bucket(tw: engine.TrendWindow, moment) -> int | None:
    if moment is None or moment < tw.start or moment >= tw.end:
        return None
    week = (moment - tw.start).days // 7
    return week if 0 <= week < tw.weeks else None


def evidence_events(org_id: int, tw: engine.TrendWindow) -> list[int]:
    """Distinct audit events carrying any control tag, per trend week: ONE grouped query over audit_tags."""
    week = literal_column(f"({AuditTag.__tablename__}.day - {int(tw.start_day)}) / 7", Integer).label("week")
    stmt = (select(week, func.count(func.distinct(AuditTag.event_id)))
            .where(AuditTag.org_id == org_id, AuditTag.created_at >= tw.start, AuditTag.created_at < tw.end)
            .group_by(week))
    out = [0] * tw.weeks
    for wk, n in db.session.execute(stmt):
        if 0 <= int(wk) < tw.weeks:
            out[int(wk)] = int(n)
    return out


@report("kpi-trends", title="Compliance KPI trends", category="Program", query=KpiQuery,
        summary="Compliance KPI trends: weekly remediation velocity, attestation closure, framework readiness and "
                "evidence events, as line charts (JSON or CSV).",
        inputs="gap remediation rows, attestations, the evidence engine's weekly trend, audit tags",
        window="`weeks` seven-day buckets ending today (the last bucket is today and the six days before); "
               "readiness is assessed at each bucket's last instant",
        definitions={
            "weeks": "Trend buckets.",
            "remediations_closed": "Gap remediation rows set to done with closed_at inside the buckets.",
            "remediations_opened": "Gap remediation rows created inside the buckets.",
            "velocity_per_week": "remediations_closed / weeks.",
            "attested": "Attestations whose attested_at falls inside the buckets (a rejection clears attested_at, "
                        "so rejected statements are not counted).",
            "attestations_created": "Attestation rows created (assigned) inside the buckets.",
            "evidence_events": "Distinct audit events carrying at least one control tag inside the buckets.",
            "readiness_start": "Program readiness (control-weight-weighted mean over every framework) at the end of "
                               "the first bucket.",
            "readiness_end": "The same at the end of the last bucket (now).",
            "readiness_change": "readiness_end − readiness_start (points).",
            "framework columns": "Per framework: the engine's readiness at the end of each bucket.",
        })
def build(ctx: ReportContext) -> Report:
    q: KpiQuery = ctx.query  # type: ignore[assignment]
    program = prog.load(ctx.org_id, ctx.now, trend_weeks=q.weeks)
    tw = program.snap.trend
    n = tw.weeks
    closed, opened, attested, created = [0] * n, [0] * n, [0] * n, [0] * n
    for r in program.remediations:
        if r.status == "done" and (w := _bucket(tw, r.closed_at)) is not None:
            closed[w] += 1
        if (w := _bucket(tw, r.created_at)) is not None:
            opened[w] += 1
    for items in program.registers.attestations.values():
        for a in items:
            if a.status == "attested" and (w := _bucket(tw, a.attested_at)) is not None:
                attested[w] += 1
            if (w := _bucket(tw, a.created_at)) is not None:
                created[w] += 1
    events = evidence_events(ctx.org_id, tw)
    weights = prog.framework_weights(program.catalog)
    program_ready = [prog.weighted_readiness((weights[k], fr.trend[w].readiness) for k, fr in program.results.items())
                     for w in range(n)]
    rows = []
    for w in range(n):
        rows.append({"week": w, "week_start": tw.week_start(w).date(), "assessed_at": tw.week_end(w),
                     "remediations_closed": closed[w], "remediations_opened": opened[w], "attested": attested[w],
                     "attestations_created": created[w], "evidence_events": events[w],
                     "program_readiness": program_ready[w],
                     **{k: fr.trend[w].readiness for k, fr in program.results.items()}})
    labels = [r["week_start"].isoformat() for r in rows]
    summary = {"weeks": n, "remediations_closed": sum(closed), "remediations_opened": sum(opened),
               "velocity_per_week": round(sum(closed) / n, 2), "attested": sum(attested),
               "attestations_created": sum(created), "evidence_events": sum(events),
               "readiness_start": program_ready[0], "readiness_end": program_ready[-1],
               "readiness_change": round(program_ready[-1] - program_ready[0], 1)}
    charts = [
        Chart("remediation", "Remediation velocity", "line", labels,
              [Series("closed (done)", [float(x) for x in closed]), Series("opened", [float(x) for x in opened])],
              unit="remediations", description="Gap remediations closed as done and opened per week."),
        Chart("attestation", "Attestation closure", "line", labels,
              [Series("attested", [float(x) for x in attested]), Series("created", [float(x) for x in created])],
              unit="attestations", description="Attestations attested and assigned per week."),
        Chart("readiness", "Framework readiness per week", "line", labels,
              [Series("program", program_ready)] + [Series(k, [p.readiness for p in fr.trend])
                                                    for k, fr in program.results.items()],
              unit="0-100", threshold=70.0, threshold_label="passing (70)",
              description="Program readiness and each framework's readiness at the end of each week."),
        Chart("evidence", "Evidence events per week", "line", labels,
              [Series("events", [float(x) for x in events])], unit="audit events",
              description="Distinct audit events carrying a control tag per week."),
    ]
    return Report(
        "kpi-trends", "Compliance KPI trends", {"weeks": n, "from": tw.start, "to": tw.end}, summary,
        [Section("weekly", "Weekly KPIs",
                 columns(("week_start", "Week start"), ("assessed_at", "Assessed at"),
                         ("remediations_closed", "Remediations closed"), ("remediations_opened", "Remediations opened"),
                         "attested", ("attestations_created", "Attestations created"),
                         ("evidence_events", "Evidence events"), ("program_readiness", "Program readiness"),
                         *[(k, f"{k} readiness") for k in program.results]), rows)],
        ctx.now, charts=charts)
