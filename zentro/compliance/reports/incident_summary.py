"""Incident summary for a period: how many incidents started, how fast they were acknowledged (MTTA) and resolved
(MTTR), by severity and by service, and how each service did against its SLO over the same period.

The period is [start, end): ``start``/``end`` (ISO dates or datetimes, UTC when no offset is given), or the
``periodDays`` days ending at ``end`` (default: now). ``services`` (comma-separated service ids of the org) limits
the incidents and the SLO table to those services.

Figures (docs/reports.md repeats them):
- an incident belongs to the period when its ``started_at`` is in [start, end);
- time to acknowledge (TTA) = acknowledged_at − started_at, over those incidents that were acknowledged;
  time to resolve (TTR) = resolved_at (else closed_at) − started_at, over those that were resolved or closed;
  MTTA/MTTR = the mean; median and p90 (nearest rank: the ⌈0.9·n⌉-th smallest) alongside; all in seconds;
- resolved/open are as of the moment the report is generated (an incident resolved after ``end`` counts as
  resolved and has its TTR);
- SLO attainment per service is the reliability module's window arithmetic (``slo.windows_for``, the figures
  the SLO page shows for its 7d/30d windows) over [start, end): SLI samples when the service has any in the
  period, else minutes covered by critical/high incidents, else no data. attainment = good / total × 100,
  met = attainment ≥ target, budget used = bad / ((1 − target) × total) × 100.
"""
from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict

from pydantic import Field, field_validator
from sqlalchemy import select

from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.extensions import db
from zentro.incidents.models import SEVERITIES, Incident
from zentro.platform.errors import ApiError
from zentro.reliability import slo
from zentro.reliability.models import Service

MAX_DAYS = 366
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)  # nothing Zentro records is older
DAILY_UP_TO_DAYS = 45  # longer periods are charted per week
NO_SERVICE = "(no service)"
SERVICE_LIST_PATTERN = r"^(?:\d{1,10}(?:,\d{1,10})*)?$"


def as_utc(value: dt.datetime | dt.date | str | None) -> dt.datetime | None:
    """An ISO date (midnight UTC) or datetime (UTC when naive) → an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if ("T" in text or " " in text) \
                else dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from None
    if isinstance(value, dt.datetime):
        try:
            return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is outside the calendar in UTC") from None
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    raise ValueError("expected an ISO 8601 date or datetime")


class RangeQuery(ReportQuery):
    """A time range: start/end, or periodDays ending at end (end defaults to now)."""
    start: dt.datetime | None = Field(None, description="Period start (ISO date or datetime, UTC). Default: end − "
                                                        "periodDays.")
    end: dt.datetime | None = Field(None, description="Period end, exclusive (ISO date or datetime, UTC; not in the "
                                                      "future). Default: now.")
    period_days: int = Field(30, ge=1, le=MAX_DAYS, alias="periodDays",
                             description="Period length in days when start is not given (1-366).")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty: leave the parameter out, or give an ISO 8601 date or datetime")
        return as_utc(value)

    def period(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """[start, end): 400 when end is in the future, start ≥ end or the range is longer than 366 days."""
        end = self.end or now
        try:
            start = self.start or end - dt.timedelta(days=self.period_days)
        except OverflowError:
            raise ApiError(400, "The range falls outside the calendar.") from None
        if end > now:
            raise ApiError(400, f"end ({end.isoformat()}) is in the future.")
        if start >= end:
            raise ApiError(400, "start must be before end.")
        if start < EARLIEST:
            raise ApiError(400, "start must be on or after 1970-01-01.")
        if end - start > dt.timedelta(days=MAX_DAYS):
            raise ApiError(400, f"The range is longer than {MAX_DAYS} days.")
        return start, end


class IncidentSummaryQuery(RangeQuery):
    services: str = Field("", max_length=2000, pattern=SERVICE_LIST_PATTERN,
                          description="Comma-separated service ids of the organisation (default: every service).")

    @property
    def service_ids(self) -> list[int]:
        return sorted({int(s) for s in self.services.split(",") if s})


# --- arithmetic --------------------------------------------------------------------------------------------------

def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile: the ⌈0.9·n⌉-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.9 * len(ordered))) - 1]


def stats(values: list[float]) -> dict:
    """count, mean, median and p90 of durations in seconds (None without values), rounded to 0.1 s."""
    r = (lambda v: None if v is None else round(float(v), 1))
    return {"count": len(values), "mean": r(statistics.fmean(values)) if values else None,
            "median": r(statistics.median(values)) if values else None, "p90": r(p90(values))}


def human(seconds: float | None) -> str:
    """1 h 05 min, 12 min 30 s, 45 s, 2 d 3 h."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d} d {h} h"
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s" if sec else f"{m} min"
    return f"{sec} s"


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


def tta(inc) -> float | None:
    return (inc.acknowledged_at - inc.started_at).total_seconds() if inc.acknowledged_at else None


def ttr(inc) -> float | None:
    done = inc.resolved_at or inc.closed_at
    return (done - inc.started_at).total_seconds() if done else None


def org_services(org_id: int, ids: list[int]) -> list[Service]:
    """The org's services (all, or exactly ``ids``: 404 naming none when one is not the org's)."""
    q = select(Service).where(Service.org_id == org_id).order_by(Service.name, Service.id)
    if ids:
        q = q.where(Service.id.in_(ids))
    rows = list(db.session.scalars(q))
    if ids and len(rows) != len(ids):
        missing = sorted(set(ids) - {s.id for s in rows})
        raise ApiError(404, f"Service not found: {', '.join(map(str, missing))}.")
    return rows


def load_incidents(org_id: int, start: dt.datetime, end: dt.datetime, service_ids: list[int]) -> list:
    q = (select(Incident.id, Incident.number, Incident.title, Incident.severity, Incident.status, Incident.service_id,
                Incident.started_at, Incident.acknowledged_at, Incident.resolved_at, Incident.closed_at)
         .where(Incident.org_id == org_id, Incident.started_at >= start, Incident.started_at < end)
         .order_by(Incident.started_at, Incident.id))
    if service_ids:
        q = q.where(Incident.service_id.in_(service_ids))
    return list(db.session.execute(q))


def buckets(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str]]:
    """Chart buckets over [start, end): UTC days, or 7-day buckets from start for periods over 45 days."""
    step = dt.timedelta(days=1) if end - start <= dt.timedelta(days=DAILY_UP_TO_DAYS) else dt.timedelta(days=7)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0) if step.days == 1 else start
    out, at = [], first
    while at < end:
        out.append((at, at.date().isoformat()))
        at += step
    return out


def slo_rows(org_id: int, services: list[Service], start: dt.datetime, end: dt.datetime) -> list[dict]:
    windows = slo.windows_for(org_id, services, {"period": end - start}, end)
    rows = []
    for svc in services:
        w = windows[svc.id]["period"]
        attainment = budget_used = met = None
        if w.has_data and w.total:
            attainment = round(100.0 * w.good / w.total, 4)
            met = attainment >= svc.slo_target
            budget_used = round(100.0 * w.bad / w.budget, 1) if w.budget else None
        rows.append({"service_id": svc.id, "service": svc.name, "target": svc.slo_target, "source": w.source,
                     "unit": w.unit, "total": w.total, "bad": w.bad, "attainment": attainment, "met": met,
                     "budget_used_pct": budget_used})
    return rows


@report("incident-summary", title="Incident summary", category="Program", query=IncidentSummaryQuery,
        formats=("json", "csv", "html", "markdown", "pdf"),
        summary="Incidents of a period: counts by severity and service, open vs resolved, MTTA and MTTR (mean, median, "
                "p90) and SLO attainment per service, with charts (JSON, CSV, HTML, Markdown or PDF).",
        inputs="incidents (started, acknowledged, resolved/closed times, severity, service), services and their SLO "
               "targets, SLI samples",
        window="[start, end): start/end, or periodDays ending at end (default now); at most 366 days",
        definitions={
            "incidents": "Incidents whose started_at is in [start, end) (on the selected services when `services` "
                         "is given).",
            "resolved": "Of those, incidents with a resolved_at (or closed_at) when the report was generated.",
            "open": "incidents − resolved: not resolved or closed when the report was generated.",
            "acknowledged": "Of those, incidents with an acknowledged_at.",
            "mtta": "Mean time to acknowledge (MTTA), written for people: the mean of acknowledged_at − started_at "
                    "over the acknowledged incidents.",
            "mttr": "Mean time to resolve (MTTR), written for people: the mean of (resolved_at, else closed_at) − "
                    "started_at over the resolved incidents.",
            "response_seconds": "MTTA and MTTR in seconds (0.1 s): count of durations, mean, median and nearest-rank "
                                "90th percentile (p90: the ⌈0.9·n⌉-th smallest); null without durations.",
            "services_meeting_slo": "Services whose SLO attainment over the period is at or above their target.",
            "services_with_slo_data": "Services with SLI samples in the period, or with incidents on record (their "
                                      "attainment is then derived from critical/high incident minutes).",
            "by_severity": "Incidents per severity (critical, high, medium, low).",
            "by_service": "Incidents per service (\"(no service)\" when an incident names none).",
            "attainment": "Per service: good / total × 100 over [start, end), from SLI samples (events) or, without "
                          "samples, minutes not covered by a critical/high incident — the SLO page's arithmetic.",
            "budget_used_pct": "Per service: bad / ((1 − target) × total) × 100; over 100 means the period's error "
                               "budget was overspent.",
        })
def build(ctx: ReportContext) -> Report:
    q: IncidentSummaryQuery = ctx.query  # type: ignore[assignment]
    start, end = q.period(ctx.now)
    services = org_services(ctx.org_id, q.service_ids)
    names = {s.id: s.name for s in (services if q.service_ids else org_services(ctx.org_id, []))}
    incidents = load_incidents(ctx.org_id, start, end, q.service_ids)

    ttas = [v for i in incidents if (v := tta(i)) is not None]
    ttrs = [v for i in incidents if (v := ttr(i)) is not None]
    a, r = stats(ttas), stats(ttrs)
    by_sev: dict[str, list] = {s: [] for s in SEVERITIES}
    by_svc: dict[str, list] = defaultdict(list)
    for i in incidents:
        by_sev.setdefault(i.severity, []).append(i)
        by_svc[names.get(i.service_id, NO_SERVICE) if i.service_id else NO_SERVICE].append(i)

    sev_rows = []
    for sev, items in by_sev.items():
        sa_, sr = stats([v for i in items if (v := tta(i)) is not None]), stats([v for i in items if (v := ttr(i)) is not None])
        sev_rows.append({"severity": sev, "incidents": len(items), "acknowledged": sa_["count"], "resolved": sr["count"],
                         "open": len(items) - sr["count"], "mtta_minutes": minutes(sa_["mean"]),
                         "mttr_minutes": minutes(sr["mean"]), "_mtta": sa_, "_mttr": sr})
    svc_rows = []
    for name, items in sorted(by_svc.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        sev = Counter(i.severity for i in items)
        resolved = sum(ttr(i) is not None for i in items)
        svc_rows.append({"service": name, "incidents": len(items), "critical_high": sev["critical"] + sev["high"],
                         "resolved": resolved, "open": len(items) - resolved,
                         "mtta_minutes": minutes(stats([v for i in items if (v := tta(i)) is not None])["mean"]),
                         "mttr_minutes": minutes(stats([v for i in items if (v := ttr(i)) is not None])["mean"])})
    slo_table = slo_rows(ctx.org_id, services, start, end)
    with_data = [s for s in slo_table if s["attainment"] is not None]
    resolved_total = len(ttrs)

    summary = {
        "incidents": len(incidents), "resolved": resolved_total, "open": len(incidents) - resolved_total,
        "acknowledged": len(ttas), "mtta": human(a["mean"]), "mttr": human(r["mean"]),
        "services_meeting_slo": sum(1 for s in with_data if s["met"]), "services_with_slo_data": len(with_data),
        "response_seconds": {"MTTA": a, "MTTR": r},
        "by_severity": {row["severity"]: row["incidents"] for row in sev_rows},
        "by_service": {row["service"]: row["incidents"] for row in svc_rows},
    }
    times = [{"measure": label, "scope": "all", "count": st["count"], "mean": human(st["mean"]),
              "median": human(st["median"]), "p90": human(st["p90"]), "mean_seconds": st["mean"]}
             for label, st in (("MTTA", a), ("MTTR", r))]
    for row in sev_rows:
        for label, key in (("MTTA", "_mtta"), ("MTTR", "_mttr")):
            st = row[key]
            if st["count"]:
                times.append({"measure": label, "scope": row["severity"], "count": st["count"], "mean": human(st["mean"]),
                              "median": human(st["median"]), "p90": human(st["p90"]), "mean_seconds": st["mean"]})
    incident_rows = [{"ref": f"INC-{i.number}", "title": i.title, "severity": i.severity,
                      "service": names.get(i.service_id, NO_SERVICE) if i.service_id else NO_SERVICE,
                      "started_at": i.started_at, "tta_minutes": minutes(tta(i)), "ttr_minutes": minutes(ttr(i))}
                     for i in incidents]

    slots = buckets(start, end)
    per_slot = {sev: [0.0] * len(slots) for sev in SEVERITIES}
    starts = [s for s, _ in slots]
    for i in incidents:
        k = max(0, sum(1 for s in starts if s <= i.started_at) - 1)
        per_slot.setdefault(i.severity, [0.0] * len(slots))[k] += 1
    unit_word = "day" if len(slots) < 2 or (starts[1] - starts[0]).days == 1 else "week"
    charts = [
        Chart("incidents", f"Incidents per {unit_word} by severity", "bar", [lab for _, lab in slots],
              [Series(sev, vals) for sev, vals in per_slot.items()], unit="incidents", stacked=True,
              description=f"Incidents started per {unit_word} of the period, stacked by severity."),
        Chart("response", "MTTA and MTTR by severity (minutes)", "bar", list(SEVERITIES),
              [Series("MTTA", [row["mtta_minutes"] or 0.0 for row in sev_rows]),
               Series("MTTR", [row["mttr_minutes"] or 0.0 for row in sev_rows])], unit="minutes",
              description="Mean time to acknowledge and to resolve per severity, in minutes (0: no incident)."),
        Chart("slo", "SLO attainment vs target: error budget used", "bar", [s["service"] for s in with_data],
              [Series("budget used", [float(s["budget_used_pct"] or 0.0) for s in with_data])], unit="% of budget",
              threshold=100.0, threshold_label="target (100 % of budget)", every_label=True,
              description="Per service with data: the share of the period's error budget ((1 − target) × total) "
                          "spent; above the line the service missed its target."),
    ]
    notes = []
    if not incidents:
        notes.append("No incidents started in this period.")
    if services and not with_data:
        notes.append("No service has SLI samples or incidents on record for this period: SLO attainment cannot be "
                     "computed.")
    params = {"start": start, "end": end, "services": [f"{names.get(i, i)} (#{i})" for i in q.service_ids] or "all"}
    return Report(
        "incident-summary", "Incident summary", params, summary,
        [Section("response_times", "Response times", columns("measure", "scope", "count", "mean", "median",
                                                              ("p90", "P90"), ("mean_seconds", "Mean (s)")), times),
         Section("severity", "By severity", columns("severity", "incidents", "acknowledged", "resolved", "open",
                                                     ("mtta_minutes", "MTTA (min)"), ("mttr_minutes", "MTTR (min)")),
                 sev_rows),
         Section("services", "By service", columns("service", "incidents", ("critical_high", "Critical/high"),
                                                   "resolved", "open", ("mtta_minutes", "MTTA (min)"),
                                                   ("mttr_minutes", "MTTR (min)")), svc_rows),
         Section("slo", "SLO attainment", columns("service", ("target", "Target %"), ("attainment", "Attainment %"),
                                                  "met", ("budget_used_pct", "Budget used %"), "source", "unit"),
                 slo_table),
         Section("incidents", "Incidents", columns("ref", "title", "severity", "service", ("started_at", "Started"),
                                                   ("tta_minutes", "TTA (min)"), ("ttr_minutes", "TTR (min)")),
                 incident_rows)],
        ctx.now, notes=notes, charts=charts)
