"""Shared arithmetic of the program-level reports (gap-remediations, risk-heatmap, executive-summary, benchmarking,
posture-score, control-health-scorecard, kpi-trends): one read of the org's data per report, and the figures
several reports show (program readiness, weight at risk, hotspots, vendor report status, posture components).

Definitions (docs/reports.md repeats them per report):

- Program readiness = the control-weight-weighted mean score over every control of every catalog framework, i.e.
  each framework's readiness weighted by the sum of its control weights (Σ_f Σ_c w_c·s_c / Σ_f Σ_c w_c).
- Weight at risk of a gap (a control scoring under 70) = weight × (70 − score): the engine's gap priority, the
  weighted points it lacks to pass.
- Hotspot: a gap control ranked by its *combined* weight at risk = its own weight at risk plus that of every
  crosswalk neighbour (``catalog.equivalents``, one hop) that is also a gap. Evidence tagged with the hotspot
  counts for all of them, so it is where new evidence lifts the most weight across frameworks.
- Vendor report status now: ``missing`` (no report type or no expiry), ``expired`` (expiry ≤ now), ``expiring``
  (expires within 30 days), ``valid`` (later) — the vendor register's statuses, with "none" shown as "missing".
"""
from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from zentro.compliance import engine
from zentro.compliance.catalog import Catalog, load_catalog
from zentro.compliance.engine import PASSING, FrameworkResult
from zentro.compliance.models import GapRemediation, Vendor
from zentro.compliance.obligations import owner_emails
from zentro.extensions import db

EXPIRING_DAYS = 30
REPORT_STATUSES = ("valid", "expiring", "expired", "missing")
TIERS = ("critical", "high", "medium", "low")
# Gap severity bands by control score (possible scores under 70 are 0, 15, 25, 30, 40, 50, 55, 65).
BANDS = (("critical", 0.0, 25.0, "0–24"), ("high", 25.0, 40.0, "25–39"), ("medium", 40.0, 55.0, "40–54"),
         ("low", 55.0, PASSING, "55–69"))
OPEN_STATUSES = ("open", "in_progress")
CLOSED_STATUSES = ("done", "wont_fix")


def band_of(score: float) -> str:
    for name, lo, hi, _ in BANDS:
        if lo <= score < hi:
            return name
    return "passing"


def band_label(name: str) -> str:
    return next(f"{n} ({label})" for n, _, _, label in BANDS if n == name)


def weight_at_risk(c: engine.ControlResult) -> float:
    return round(c.weight * (PASSING - c.score), 1) if c.score < PASSING else 0.0


# --- the org's rows ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VendorRow:
    id: int
    name: str
    tier: str
    report_type: str
    report_expires_at: dt.datetime | None
    next_review_at: dt.datetime | None
    owner_id: int | None
    handles_phi: bool
    baa: bool
    handles_personal_data: bool
    dpa: bool
    created_at: dt.datetime

    def status_at(self, at: dt.datetime) -> str:
        """valid | expiring | expired | missing as of ``at``."""
        if (self.report_type or "none") == "none" or self.report_expires_at is None:
            return "missing"
        if self.report_expires_at <= at:
            return "expired"
        if self.report_expires_at <= at + dt.timedelta(days=EXPIRING_DAYS):
            return "expiring"
        return "valid"

    def review_overdue_at(self, at: dt.datetime) -> bool:
        return self.next_review_at is not None and self.next_review_at <= at

    def healthy_at(self, at: dt.datetime) -> bool:
        """Report in force (valid or expiring) and review not overdue."""
        return self.status_at(at) in ("valid", "expiring") and not self.review_overdue_at(at)


@dataclass(frozen=True)
class RemediationRow:
    id: int
    control: str
    status: str
    owner_id: int | None
    playbook_id: int | None
    runbook_url: str
    due_at: dt.datetime | None
    note: str
    created_at: dt.datetime
    closed_at: dt.datetime | None

    def overdue(self, now: dt.datetime) -> bool:
        return self.status in OPEN_STATUSES and self.due_at is not None and self.due_at < now


def load_vendors(org_id: int) -> list[VendorRow]:
    rows = db.session.execute(select(
        Vendor.id, Vendor.name, Vendor.risk_tier, Vendor.report_type, Vendor.report_expires_at, Vendor.next_review_at,
        Vendor.owner_id, Vendor.handles_phi, Vendor.baa, Vendor.handles_personal_data, Vendor.dpa,
        Vendor.created_at).where(Vendor.org_id == org_id).order_by(Vendor.name, Vendor.id))
    return [VendorRow(r[0], r[1], r[2], r[3] or "none", r[4], r[5], r[6], bool(r[7]), bool(r[8]), bool(r[9]),
                      bool(r[10]), r[11]) for r in rows]


def load_remediations(org_id: int) -> list[RemediationRow]:
    rows = db.session.execute(select(
        GapRemediation.id, GapRemediation.control, GapRemediation.status, GapRemediation.owner_id,
        GapRemediation.playbook_id, GapRemediation.runbook_url, GapRemediation.due_at, GapRemediation.note,
        GapRemediation.created_at, GapRemediation.closed_at).where(GapRemediation.org_id == org_id)
        .order_by(GapRemediation.id))
    return [RemediationRow(r[0], r[1], r[2], r[3], r[4], r[5] or "", r[6], r[7] or "", r[8], r[9]) for r in rows]


@dataclass
class Program:
    """One read of everything the program reports need, as of ``now`` (vendors, remediations and owner emails are
    read on first use)."""
    org_id: int
    now: dt.datetime
    period_days: int
    snap: engine.Snapshot
    results: dict[str, FrameworkResult]
    prior: engine.Snapshot | None = None
    _gaps: dict[str, engine.ControlResult] | None = field(default=None, repr=False)

    @functools.cached_property
    def vendors(self) -> list[VendorRow]:
        return load_vendors(self.org_id)

    @functools.cached_property
    def remediations(self) -> list[RemediationRow]:
        return load_remediations(self.org_id)

    @functools.cached_property
    def emails(self) -> dict[int, str]:
        return owner_emails(self.org_id)

    @functools.cached_property
    def baselines(self) -> list[engine.Baseline]:
        """Every framework now vs as of now − period_days (needs ``load(..., with_prior=True)``)."""
        assert self.prior is not None, "load the program with_prior=True"
        return [engine.Baseline(key, fw.name, fw.slug, self.results[key], self.prior.assess(key, with_trend=False))
                for key, fw in self.catalog.frameworks.items()]

    @property
    def catalog(self) -> Catalog:
        return self.snap.catalog

    @property
    def registers(self) -> engine.Registers:
        return self.snap.registers

    def email(self, user_id: int | None) -> str:
        return self.emails.get(user_id, "") if user_id else ""

    @property
    def gaps(self) -> dict[str, engine.ControlResult]:
        """Every gap of every framework by tag (each tag belongs to one framework)."""
        if self._gaps is None:
            self._gaps = {g.tag: g for fr in self.results.values() for g in fr.gaps}
        return self._gaps

    @property
    def controls(self) -> int:
        return sum(len(fr.controls) for fr in self.results.values())

    @property
    def readiness(self) -> float:
        return program_readiness(self.results.values())


def load(org_id: int, now: dt.datetime, period_days: int = engine.DEFAULT_PERIOD_DAYS, *,
         trend_weeks: int = 0, with_prior: bool = False) -> Program:
    """The engine snapshot (and assessment of every framework) as of ``now``; with ``with_prior``, also the snapshot
    as of ``now − period_days`` — ``engine.baseline_comparison``'s arithmetic, sharing this read of the registers
    and the grouped audit-tag queries (two windows and two cut-offs in one statement each)."""
    if not with_prior:
        snap = engine.snapshot(org_id, period_days, now, trend_weeks=trend_weeks)
        prior = None
    else:
        now = engine._as_utc(now)
        catalog = load_catalog()
        span = dt.timedelta(days=period_days)
        prior_now = now - span
        tw = engine.trend_window(now, trend_weeks) if trend_weeks > 0 else None
        window, prior_window = engine.tag_window_aggregates(org_id, [(now - span, now), (prior_now - span, prior_now)])
        cutoffs = [now, prior_now] + ([tw.start] if tw else [])
        lasts = engine.tag_last_evidence(org_id, cutoffs)
        registers = engine.load_registers(org_id)
        snap = engine.Snapshot(org_id, now, period_days, now - span, window, lasts[0], registers, catalog)
        prior = engine.Snapshot(org_id, prior_now, period_days, prior_now - span, prior_window, lasts[1], registers,
                                catalog)
        if tw is not None:
            snap.trend, snap.last_before_trend = tw, lasts[2]
            snap.weekly = engine.tag_weekly_aggregates(org_id, tw)
    results = {key: snap.assess(key) for key in snap.catalog.frameworks}
    return Program(org_id, snap.now, period_days, snap, results, prior)


# --- shared figures ------------------------------------------------------------------------------------------

def program_readiness(results) -> float:
    """Control-weight-weighted mean score over every control of the given framework results."""
    return engine.weighted_mean((c.weight, c.score) for fr in results for c in fr.controls)


def weighted_readiness(pairs) -> float:
    """(framework total weight, readiness) pairs → the weighted mean (same figure as ``program_readiness``)."""
    return engine.weighted_mean(pairs)


def framework_weights(catalog: Catalog) -> dict[str, float]:
    return {key: sum(c.weight for c in fw.controls) for key, fw in catalog.frameworks.items()}


def hotspots(program: Program, limit: int = 10) -> list[dict]:
    """Gap controls by combined weight at risk (their own plus their gap crosswalk neighbours'), largest first."""
    gaps = program.gaps
    catalog = program.catalog
    out = []
    for tag, g in gaps.items():
        linked = [t for t, _ in catalog.neighbours(tag) if t in gaps]
        own = weight_at_risk(g)
        combined = round(own + sum(weight_at_risk(gaps[t]) for t in linked), 1)
        frameworks = sorted({g.framework, *(gaps[t].framework for t in linked)})
        out.append({"control": tag, "framework": g.framework, "title": g.title, "family": g.family,
                    "score": g.score, "state": g.state, "weight_at_risk": own, "linked_gaps": len(linked),
                    "linked_controls": linked, "frameworks": frameworks, "frameworks_touched": len(frameworks),
                    "combined_weight_at_risk": combined, "reason": g.reason})
    out.sort(key=lambda r: (-r["combined_weight_at_risk"], -r["weight_at_risk"], r["control"]))
    for i, r in enumerate(out, 1):
        r["rank"] = i
    return out[:limit] if limit else out


def vendor_matrix(vendors: list[VendorRow], now: dt.datetime) -> dict[str, dict[str, int]]:
    """tier → report status → vendors (tiers outside the four known ones are left out)."""
    out = {t: {s: 0 for s in REPORT_STATUSES} for t in TIERS}
    for v in vendors:
        if v.tier in out:
            out[v.tier][v.status_at(now)] += 1
    return out


def attestation_health_at(registers: engine.Registers, at: dt.datetime) -> tuple[int, int]:
    """(attested and valid at ``at``, attestation rows existing at ``at``) — rejected rows count as not attested."""
    return attestation_health_series(registers, [at])[0]


def attestation_health_series(registers: engine.Registers, moments: list[dt.datetime]) -> list[tuple[int, int]]:
    """``attestation_health_at`` for many moments in one pass: a row exists from created_at and is attested and valid
    from max(created_at, attested_at) until valid_until (``AttestationItem.state_at``), so each count is a difference
    of two sorted-list bisections."""
    lists = registers._state_cache.get("health_lists")
    if lists is None:
        lists = registers._state_cache["health_lists"] = _health_lists(registers)  # type: ignore[assignment]
    created, starts, ends = lists
    return [(bisect.bisect_right(starts, at) - bisect.bisect_right(ends, at), bisect.bisect_right(created, at))
            for at in moments]


def _health_lists(registers: engine.Registers) -> tuple[list, list, list]:
    """The sorted created / attested-from / valid-until lists behind ``attestation_health_series`` (built once per
    registers: posture-score asks for now and for every trend week)."""
    created, starts, ends = [], [], []
    for items in registers.attestations.values():
        for a in items:
            created.append(a.created_at)
            if a.status == "attested" and a.attested_at is not None:
                start = max(a.created_at, a.attested_at)
                if a.valid_until is None or a.valid_until > start:
                    starts.append(start)
                    if a.valid_until is not None:
                        ends.append(a.valid_until)
    created.sort()
    starts.sort()
    ends.sort()
    return created, starts, ends


def vendor_health_series(vendors: list[VendorRow], moments: list[dt.datetime]) -> list[tuple[int, int, int]]:
    """Per moment: (vendors healthy, vendors existing, vendors with an expired report) among those created by then —
    ``healthy_at``, ``created_at <= at`` and ``status_at(at) == "expired"`` counted by bisection. A vendor with a
    report (type not none, an expiry) is healthy on [created_at, min(report_expires_at, next_review_at)) (in force:
    expiry > at; review not overdue: next review > at) and expired from max(created_at, report_expires_at) on."""
    created, healthy_from, healthy_to, expired_from = [], [], [], []
    for v in vendors:
        created.append(v.created_at)
        if (v.report_type or "none") == "none" or v.report_expires_at is None:
            continue
        end = v.report_expires_at if v.next_review_at is None else min(v.report_expires_at, v.next_review_at)
        if end > v.created_at:
            healthy_from.append(v.created_at)
            healthy_to.append(end)
        expired_from.append(max(v.created_at, v.report_expires_at))
    for values in (created, healthy_from, healthy_to, expired_from):
        values.sort()
    right = bisect.bisect_right
    return [(right(healthy_from, at) - right(healthy_to, at), right(created, at), right(expired_from, at))
            for at in moments]


def open_exceptions_at(registers: engine.Registers, at: dt.datetime) -> list[engine.ExceptionItem]:
    return [e for items in registers.exceptions.values() for e in items if e.open_at(at)]


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


# --- posture score -------------------------------------------------------------------------------------------

POSTURE_WEIGHTS = {"readiness": 0.35, "attestations": 0.15, "vendors": 0.15, "gap_pressure": 0.20, "risk": 0.15}
RISK_PENALTY = {"open_exception": 10.0, "expired_vendor_report": 10.0}


@dataclass
class Component:
    key: str
    label: str
    value: float | None  # 0-100, None = not applicable (no attestations / no vendors)
    weight: float
    basis: str

    def effective_weight(self, components: list["Component"]) -> float:
        if self.value is None:
            return 0.0
        live = sum(c.weight for c in components if c.value is not None)
        return round(self.weight / live, 4) if live else 0.0


def posture_components(readiness: float, attested: int, attestations: int, vendors_healthy: int, vendors: int,
                       gaps: int, controls: int, open_exceptions: int, expired_reports: int) -> list[Component]:
    risk_points = RISK_PENALTY["open_exception"] * open_exceptions + RISK_PENALTY["expired_vendor_report"] * expired_reports
    return [
        Component("readiness", "Program readiness", readiness, POSTURE_WEIGHTS["readiness"],
                  "control-weight-weighted mean score over every framework"),
        Component("attestations", "Attestation health", pct(attested, attestations) if attestations else None,
                  POSTURE_WEIGHTS["attestations"], f"{attested} of {attestations} attestations attested and valid"),
        Component("vendors", "Vendor health", pct(vendors_healthy, vendors) if vendors else None,
                  POSTURE_WEIGHTS["vendors"],
                  f"{vendors_healthy} of {vendors} vendors with a report in force and no overdue review"),
        Component("gap_pressure", "Gap pressure", round(100.0 * (1 - gaps / controls), 1) if controls else 0.0,
                  POSTURE_WEIGHTS["gap_pressure"], f"100 × (1 − {gaps} gaps / {controls} controls)"),
        Component("risk", "Risk", max(0.0, 100.0 - risk_points), POSTURE_WEIGHTS["risk"],
                  f"100 − 10 × {open_exceptions} open exceptions − 10 × {expired_reports} expired vendor reports"),
    ]


def posture_score(components: list[Component]) -> float:
    live = [c for c in components if c.value is not None]
    total = sum(c.weight for c in live)
    return round(sum(c.weight * c.value for c in live) / total, 1) if total else 0.0


def posture_now(program: Program) -> list[Component]:
    now = program.now
    attested, attestations = attestation_health_at(program.registers, now)
    ((healthy, live, expired),) = vendor_health_series(program.vendors, [now])
    return posture_components(
        program.readiness, attested, attestations, healthy, live,
        len(program.gaps), program.controls, len(open_exceptions_at(program.registers, now)), expired)


def posture_trend(program: Program) -> list[dict]:
    """The posture score per engine trend week (needs ``load(..., trend_weeks=N)``), every component re-derived
    as of the week's end: readiness and gaps from the engine's weekly control scores, attestations, exceptions
    and vendor reports from their dates."""
    tw = program.snap.trend
    if tw is None:
        return []
    weights = {c.tag: c.weight for fr in program.results.values() for c in fr.controls}
    out = []
    health = attestation_health_series(program.registers, [tw.week_end(w) for w in range(tw.weeks)])
    vendor_health = vendor_health_series(program.vendors, [tw.week_end(w) for w in range(tw.weeks)])
    for week in range(tw.weeks):
        at = tw.week_end(week)
        total_w = weighted = 0.0
        gaps = controls = 0
        for fr in program.results.values():
            for tag, scores in fr.control_trends.items():
                score = scores[week]
                w = weights[tag]
                total_w += w
                weighted += w * score
                controls += 1
                gaps += score < PASSING
        readiness = round(weighted / total_w, 1) if total_w else 0.0
        attested, attestations = health[week]
        healthy, live, expired = vendor_health[week]
        comps = posture_components(readiness, attested, attestations, healthy, live, gaps, controls,
                                   len(open_exceptions_at(program.registers, at)), expired)
        out.append({"week": week, "week_start": tw.week_start(week), "assessed_at": at,
                    "score": posture_score(comps), **{c.key: c.value for c in comps}})
    return out


def state_of(readiness: float) -> str:
    return engine.state_for(readiness)


def group_by(items, key) -> dict:
    out: dict = defaultdict(list)
    for item in items:
        out[key(item)].append(item)
    return out
