"""SLO arithmetic: error budgets, burn rates, multiwindow burn-rate alert rules, and the windows a
service's SLO page and the overview show.

Definitions (DESIGN.md, Reliability), for a window with ``total`` events of which ``bad`` failed and an
SLO target ``t`` (a fraction, 99.9 % → 0.999):

* error budget  = (1 − t) × total          (bad events the SLO allows in the window)
* consumed      = bad
* remaining     = budget − consumed;  remaining_ratio = remaining / budget  (1 when total is 0)
* burn rate     = (bad / total) / (1 − t)  (1 = spending exactly the budget; 0 when total is 0)

Where SLI samples come from: a sample counts ``good``/``total`` over [window_start, window_end). A
window takes the share of each overlapping sample proportional to the overlap (a one-hour sample half
inside the window contributes half its counts), summed in SQL.

When a service has no SLI sample in a window, the window is derived from incidents (``source:
"derived_from_incidents"``, ``unit: "minutes"``): total = the window's minutes, bad = the minutes
covered by at least one critical or high incident on the service (started_at → the first of
mitigated_at / resolved_at / closed_at, or now while it is still open; overlapping incidents count once).
A service with neither SLI samples in the window nor any incident on record reports ``no_data``.

Burn-rate alert rules (Google SRE workbook, "Alerting on SLOs", multiwindow, multi-burn-rate): a
rule fires when the burn rate is at least its threshold over BOTH its long and its short window
(burn rates are rounded to 6 decimals first, so a burn exactly at the threshold fires).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Sequence

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, select

from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.platform.types import utcnow
from zentro.reliability.models import Service, SliSample

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
MAX_SAMPLE_SPAN = dt.timedelta(days=31)
DERIVING_SEVERITIES = ("critical", "high")
SUMMARY_WINDOWS = {"1h": HOUR, "6h": 6 * HOUR, "30d": 30 * DAY}
SLO_WINDOWS = {"7d": 7 * DAY, "30d": 30 * DAY}
CHART_WINDOWS = {"5m": 5 * MINUTE, "30m": 30 * MINUTE, "1h": HOUR, "6h": 6 * HOUR, "1d": DAY, "3d": 3 * DAY,
                 "7d": 7 * DAY, "30d": 30 * DAY}
CRITICAL_BURN = 14.4
WARNING_BURN = 6.0
WARNING_REMAINING = 0.25
STATUS_RULES = {
    "critical": f"burn rate ≥ {CRITICAL_BURN}× over the last hour, or the 30-day error budget is exhausted",
    "warning": f"burn rate ≥ {WARNING_BURN:g}× over the last hour or 6 hours, or less than "
               f"{WARNING_REMAINING:.0%} of the 30-day error budget remains",
    "ok": "none of the above",
    "no_data": "no SLI samples and no incidents on record for the service",
}


def label(span: dt.timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def budget_fraction(target_percent: float) -> float:
    """1 − target as a fraction, e.g. 99.9 → 0.001 (computed from the percent to limit float error)."""
    return round((100.0 - target_percent) / 100.0, 12)


def burn_rate(bad: float, total: float, target_percent: float) -> float:
    if total <= 0:
        return 0.0
    return round((bad / total) / budget_fraction(target_percent), 6)


@dataclass
class Window:
    window: str
    start: dt.datetime
    end: dt.datetime
    source: str  # sli | derived_from_incidents | no_data
    unit: str | None = None  # events | minutes
    total: float | None = None
    good: float | None = None
    bad: float | None = None
    budget: float | None = None
    consumed: float | None = None
    remaining: float | None = None
    remaining_ratio: float | None = None
    burn_rate: float | None = None

    @property
    def has_data(self) -> bool:
        return self.source != "no_data"

    def as_dict(self) -> dict:
        return asdict(self)


def make_window(name: str, start: dt.datetime, end: dt.datetime, source: str, total: float, bad: float,
                target_percent: float) -> Window:
    """The budget arithmetic for one window (module docstring)."""
    if source == "no_data":
        return Window(name, start, end, source)
    total, bad = max(0.0, float(total)), max(0.0, float(bad))
    bad = min(bad, total)
    budget = budget_fraction(target_percent) * total
    remaining = budget - bad
    return Window(
        window=name, start=start, end=end, source=source,
        unit="events" if source == "sli" else "minutes",
        total=_r(total), good=_r(total - bad), bad=_r(bad), budget=_r(budget), consumed=_r(bad),
        remaining=_r(remaining), remaining_ratio=round(remaining / budget, 6) if budget > 0 else 1.0,
        burn_rate=burn_rate(bad, total, target_percent),
    )


def _r(x: float) -> float:
    return round(x, 4)


# --- SLI sums in SQL ------------------------------------------------------------------------------

def _epoch(column):
    """Seconds since 1970 of a UTC timestamp column, as a float, on either backend. SQLite: whole
    seconds from strftime('%s') plus the millisecond fraction of strftime('%f') (julianday() would lose
    precision in the sixth significant digit of a 5-minute window)."""
    if db.session.get_bind().dialect.name == "sqlite":
        seconds_with_fraction = cast(func.strftime("%f", column), Float)
        return (cast(func.strftime("%s", column), Float)
                + (seconds_with_fraction - cast(cast(func.strftime("%f", column), Integer), Float)))
    return cast(func.extract("epoch", column), Float)


def sli_sums(org_id: int, service_ids: Sequence[int], ranges: Sequence[tuple[dt.datetime, dt.datetime]]
             ) -> dict[int, list[tuple[float, float, int]]]:
    """For each service and each [start, end) range: (total, bad, samples overlapping), each sample
    weighted by the fraction of its own window inside the range. One SQL query, whatever the number of
    ranges (SUM(CASE …) per range); services without samples are absent from the result."""
    if not service_ids or not ranges:
        return {}
    ws, we = _epoch(SliSample.window_start), _epoch(SliSample.window_end)
    duration = case((we - ws > 0, we - ws), else_=literal(1.0))
    columns = []
    for start, end in ranges:
        s, e = start.timestamp(), end.timestamp()
        lo = case((ws > s, ws), else_=literal(s))
        hi = case((we < e, we), else_=literal(e))
        inside = and_(SliSample.window_end > start, SliSample.window_start < end)
        frac = (hi - lo) / duration
        columns += [
            func.coalesce(func.sum(case((inside, cast(SliSample.total, Float) * frac), else_=literal(0.0))), 0.0),
            func.coalesce(func.sum(case((inside, cast(SliSample.total - SliSample.good, Float) * frac),
                                        else_=literal(0.0))), 0.0),
            func.coalesce(func.sum(case((inside, 1), else_=0)), 0),
        ]
    lo_all = min(s for s, _ in ranges)
    hi_all = max(e for _, e in ranges)
    query = (select(SliSample.service_id, *columns)
             .where(SliSample.org_id == org_id, SliSample.service_id.in_(list(service_ids)),
                    SliSample.window_start >= lo_all - MAX_SAMPLE_SPAN, SliSample.window_start < hi_all,
                    SliSample.window_end > lo_all)
             .group_by(SliSample.service_id))
    out: dict[int, list[tuple[float, float, int]]] = {}
    for row in db.session.execute(query):
        values = list(row)[1:]
        out[row[0]] = [(float(values[i]), float(values[i + 1]), int(values[i + 2])) for i in range(0, len(values), 3)]
    return out


# --- incidents as the fallback signal -------------------------------------------------------------

def _incident_end(inc: Incident, now: dt.datetime) -> dt.datetime:
    for stamp in (inc.mitigated_at, inc.resolved_at, inc.closed_at):
        if stamp is not None:
            return min(stamp, now)
    return now


def incident_intervals(org_id: int, service_ids: Sequence[int], start: dt.datetime, end: dt.datetime,
                       now: dt.datetime) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
    """Merged [from, to) intervals, clipped to [start, end), during which a critical/high incident was
    open on each service."""
    rows = db.session.execute(
        select(Incident.service_id, Incident.started_at, Incident.mitigated_at, Incident.resolved_at,
               Incident.closed_at)
        .where(Incident.org_id == org_id, Incident.service_id.in_(list(service_ids)),
               Incident.severity.in_(DERIVING_SEVERITIES), Incident.started_at < end)
        .order_by(Incident.service_id, Incident.started_at)
    ).all()
    raw: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for sid, started, mitigated, resolved, closed in rows:
        stop = now
        for stamp in (mitigated, resolved, closed):
            if stamp is not None:
                stop = min(stamp, now)
                break
        lo, hi = max(started, start), min(stop, end)
        if hi > lo:
            raw.setdefault(sid, []).append((lo, hi))
    return {sid: merge(spans) for sid, spans in raw.items()}


def merge(spans: Iterable[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[list[dt.datetime]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def covered_minutes(spans: Sequence[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime) -> float:
    seconds = 0.0
    for lo, hi in spans:
        a, b = max(lo, start), min(hi, end)
        if b > a:
            seconds += (b - a).total_seconds()
    return seconds / 60.0


def services_with_incidents(org_id: int, service_ids: Sequence[int], before: dt.datetime) -> set[int]:
    return set(db.session.scalars(
        select(Incident.service_id).where(Incident.org_id == org_id, Incident.service_id.in_(list(service_ids)),
                                          Incident.started_at < before).distinct()))


# --- windows for one or many services -------------------------------------------------------------

def windows_for(org_id: int, services: Sequence[Service], spans: dict[str, dt.timedelta],
                now: dt.datetime | None = None) -> dict[int, dict[str, Window]]:
    """{service_id: {window name: Window}} for windows ending now: SLI where samples exist, else
    derived from incidents, else no_data (module docstring)."""
    now = now or utcnow()
    ids = [s.id for s in services]
    names = list(spans)
    ranges = [(now - spans[n], now) for n in names]
    sums = sli_sums(org_id, ids, ranges)
    longest = now - max(spans.values()) if spans else now
    known = services_with_incidents(org_id, ids, now)
    intervals = incident_intervals(org_id, ids, longest, now, now) if known else {}
    out: dict[int, dict[str, Window]] = {}
    for svc in services:
        per = {}
        for i, name in enumerate(names):
            start, end = ranges[i]
            total, bad, n = sums.get(svc.id, [(0.0, 0.0, 0)] * len(names))[i]
            if n > 0:
                per[name] = make_window(name, start, end, "sli", total, bad, svc.slo_target)
            elif svc.id in known:
                minutes = (end - start).total_seconds() / 60.0
                per[name] = make_window(name, start, end, "derived_from_incidents", minutes,
                                        covered_minutes(intervals.get(svc.id, []), start, end), svc.slo_target)
            else:
                per[name] = Window(name, start, end, "no_data")
        out[svc.id] = per
    return out


def status_of(windows: dict[str, Window]) -> tuple[str, list[str]]:
    """critical / warning / ok / no_data from the 1h, 6h and 30d windows (STATUS_RULES)."""
    month, hour, six = windows.get("30d"), windows.get("1h"), windows.get("6h")
    if not any(w is not None and w.has_data for w in (month, hour, six)):
        return "no_data", []
    critical, warning = [], []
    if hour is not None and hour.has_data and hour.burn_rate >= CRITICAL_BURN:
        critical.append(f"burning {hour.burn_rate:.1f}× over 1h (≥ {CRITICAL_BURN}×)")
    if month is not None and month.has_data and month.bad > 0 and month.remaining <= 0:
        critical.append("30-day error budget exhausted")
    if critical:
        return "critical", critical
    for w in (hour, six):
        if w is not None and w.has_data and w.burn_rate >= WARNING_BURN:
            warning.append(f"burning {w.burn_rate:.1f}× over {w.window} (≥ {WARNING_BURN:g}×)")
    if month is not None and month.has_data and month.remaining_ratio < WARNING_REMAINING:
        warning.append(f"{max(month.remaining_ratio, 0):.0%} of the 30-day budget left (< {WARNING_REMAINING:.0%})")
    return ("warning", warning) if warning else ("ok", [])


# --- multiwindow burn-rate rules ------------------------------------------------------------------

@dataclass(frozen=True)
class BurnRule:
    name: str
    severity: str  # incident severity when it fires
    kind: str  # page | ticket
    long: dt.timedelta
    short: dt.timedelta
    threshold: float


# Google SRE workbook, "Alerting on SLOs", table 5-8 (recommended parameters for a 30-day SLO).
BURN_RULES = (
    BurnRule("page-1h", "critical", "page", HOUR, 5 * MINUTE, 14.4),    # 2 % of the budget in 1 hour
    BurnRule("page-6h", "critical", "page", 6 * HOUR, 30 * MINUTE, 6.0),  # 5 % of the budget in 6 hours
    BurnRule("ticket-3d", "medium", "ticket", 3 * DAY, 6 * HOUR, 1.0),  # 10 % of the budget in 3 days
)


@dataclass
class BurnResult:
    rule: str
    severity: str
    kind: str
    long_window: str
    short_window: str
    threshold: float
    long_burn: float
    short_burn: float
    fired: bool

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "kind"}

    @property
    def title(self) -> str:
        return (f"SLO burn {self.rule}: {self.long_burn:.1f}× over {self.long_window} and {self.short_burn:.1f}× over "
                f"{self.short_window} (threshold {self.threshold:g}×)")


CountsFn = Callable[[Sequence[tuple[dt.datetime, dt.datetime]]], Sequence[tuple[float, float]]]


def evaluate_burn(target_percent: float, counts: CountsFn, now: dt.datetime,
                  rules: Sequence[BurnRule] = BURN_RULES) -> list[BurnResult]:
    """Evaluate every rule at ``now``. Pure: ``counts`` receives the [start, end) ranges the rules need
    and returns (total, bad) for each (SQL in production, a list in tests). A rule fires when the burn
    rate is ≥ its threshold over both its long and its short window; a window without events burns 0."""
    ranges: list[tuple[dt.datetime, dt.datetime]] = []
    for rule in rules:
        ranges += [(now - rule.long, now), (now - rule.short, now)]
    values = list(counts(ranges))
    out = []
    for i, rule in enumerate(rules):
        (lt, lb), (st, sb) = values[2 * i], values[2 * i + 1]
        long_burn, short_burn = burn_rate(lb, lt, target_percent), burn_rate(sb, st, target_percent)
        out.append(BurnResult(rule.name, rule.severity, rule.kind, label(rule.long), label(rule.short), rule.threshold,
                              long_burn, short_burn, long_burn >= rule.threshold and short_burn >= rule.threshold))
    return out


def sql_counts(org_id: int, service_id: int) -> CountsFn:
    def counts(ranges):
        sums = sli_sums(org_id, [service_id], ranges).get(service_id)
        return [(t, b) for t, b, _ in sums] if sums else [(0.0, 0.0)] * len(ranges)

    return counts


def counts_from_samples(samples: Iterable[tuple[dt.datetime, dt.datetime, int, int]]) -> CountsFn:
    """The same proration as sli_sums over in-memory (window_start, window_end, good, total) tuples."""
    samples = list(samples)

    def counts(ranges):
        out = []
        for start, end in ranges:
            total = bad = 0.0
            for ws, we, good, tot in samples:
                lo, hi = max(ws, start), min(we, end)
                if hi > lo:
                    frac = (hi - lo) / (we - ws)
                    total += tot * frac
                    bad += (tot - good) * frac
            out.append((total, bad))
        return out

    return counts


# --- daily series for the charts ------------------------------------------------------------------

@dataclass
class Day:
    day: dt.date
    total: float
    bad: float
    burn_rate: float
    remaining_ratio: float | None  # cumulative, against the whole 30-day budget


def daily_series(org_id: int, svc: Service, source: str, now: dt.datetime | None = None, days: int = 30) -> list[Day]:
    """Per UTC day over the last ``days`` days (partial days at both ends): events and bad events,
    the day's burn rate, and the 30-day error budget remaining at the end of the day (the burndown: 1 −
    bad so far ÷ the budget of the whole window). Uses the same source as the service's 30d window."""
    now = now or utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    window_start = now - days * DAY
    starts = [today - (days - i) * DAY for i in range(days + 1)]  # the first day is partial
    edges = [(max(s, window_start), min(s + DAY, now)) for s in starts]
    edges = [(s, e) for s, e in edges if e > s]
    if source == "sli":
        per = sli_sums(org_id, [svc.id], [(window_start, now), *edges]).get(svc.id)
        if not per:
            return []
        (month_total, month_bad, _), per = per[0], per[1:]
        values = [(t, b) for t, b, _ in per]
    elif source == "derived_from_incidents":
        spans = incident_intervals(org_id, [svc.id], window_start, now, now).get(svc.id, [])
        values = [((e - s).total_seconds() / 60.0, covered_minutes(spans, s, e)) for s, e in edges]
        month_total = sum(t for t, _ in values)
    else:
        return []
    budget = budget_fraction(svc.slo_target) * month_total
    out, spent = [], 0.0
    for (s, _), (total, bad) in zip(edges, values):
        spent += bad
        out.append(Day(s.date(), _r(total), _r(bad), burn_rate(bad, total, svc.slo_target),
                       round(1 - spent / budget, 6) if budget > 0 else None))
    return out
