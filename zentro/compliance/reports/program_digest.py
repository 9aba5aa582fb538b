"""Compliance program digest (slug ``digest``): each framework's readiness now against the org's last delivered
program digest (delta and direction), the attestations that became overdue since then, and the gaps per
framework.

State: every delivery of the ``digest`` digest saves a snapshot (``snapshot_data``; written by the declaration in
``zentro.compliance.digests.program_digest``) holding each framework's readiness and gap count, the program
readiness, the evidence window it was computed with and the ids of the attestations overdue at the time. This report
compares with the newest snapshot (``digests.last_snapshot``); before the first delivery there is none, so every
delta and "newly overdue" figure is empty and the summary says "no prior snapshot".

Readiness comes from the evidence engine through ``_program.load`` (the same arithmetic as executive-summary and
posture-score); overdue attestations are ``engine.overdue_attestations`` (state overdue now: assigned or rejected
and past due).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from zentro.compliance import digests, engine
from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog
from zentro.platform.types import iso

SLUG = "digest"
NO_SNAPSHOT = "no prior snapshot"


def direction(delta: float | None) -> str | None:
    if delta is None:
        return None
    return "up" if delta > 0 else "down" if delta < 0 else "unchanged"


def _prior(org_id: int) -> tuple[dict[str, Any] | None, Any]:
    """(the last snapshot's data, the snapshot row) or (None, None)."""
    snap = digests.last_snapshot(org_id, SLUG)
    if snap is None or not isinstance(snap.data, dict):
        return None, None
    return snap.data, snap


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def snapshot_data(report: Report) -> dict:
    """What a delivery keeps for the next one: readiness and gaps per framework, program readiness, the evidence
    window and the overdue attestation ids, all read off the delivered report."""
    frameworks = list(report.section("frameworks").iter_rows())
    overdue = list(report.section("overdue").iter_rows())
    return {
        "as_of": iso(report.params["as_of"]), "period_days": report.params["periodDays"],
        "program_readiness": report.summary["program_readiness"],
        "readiness": {r["framework"]: r["readiness"] for r in frameworks},
        "gaps": {r["framework"]: r["gaps"] for r in frameworks},
        "overdue_attestation_ids": sorted(r["id"] for r in overdue),
    }


DEFINITIONS = {
    "period_days": "Evidence window (days ending now) the readiness figures are computed over.",
    "baseline": f"What the figures are compared with: '{NO_SNAPSHOT}' before the first delivery, else 'snapshot of "
                "<time>': the snapshot saved by the org's last delivery of this digest.",
    "snapshot_at": "When that snapshot was taken (the delivery's time); empty without one.",
    "snapshot_period_days": "The evidence window the snapshot was computed with (a note says so when it differs "
                            "from period_days).",
    "program_readiness": "Control-weight-weighted mean score over every control of every framework, now "
                         "(the executive summary's program readiness).",
    "prior_program_readiness": "Program readiness recorded in the snapshot; empty without one.",
    "readiness_change": "program_readiness − prior_program_readiness (points); empty without a snapshot.",
    "frameworks_up": "Frameworks whose readiness is higher than in the snapshot; empty without one.",
    "frameworks_down": "Frameworks whose readiness is lower than in the snapshot; empty without one.",
    "frameworks_unchanged": "Frameworks whose readiness equals the snapshot's; empty without one.",
    "gaps": "Controls scoring under 70 now, over every framework.",
    "gaps_change": "gaps − the snapshot's total gaps; empty without a snapshot.",
    "overdue_attestations": "Attestations overdue now: assigned or rejected (not attested) and past their due date.",
    "newly_overdue": "Overdue attestations that were not overdue in the snapshot (new since the last delivery); "
                     "empty without a snapshot.",
    "no_longer_overdue": "Attestations overdue in the snapshot that are not overdue now (attested, re-assigned "
                         "with a later due date, or deleted); empty without a snapshot.",
    "frameworks.readiness": "The framework's readiness now: weight-weighted mean of its control scores (0-100).",
    "frameworks.prior_readiness": "The framework's readiness in the snapshot.",
    "frameworks.delta": "readiness − prior_readiness (points, one decimal).",
    "frameworks.direction": "up (delta > 0), down (delta < 0), unchanged (0); empty without a snapshot.",
    "frameworks.state": "passing ≥ 70, at_risk 40–69.9, failing < 40.",
    "frameworks.gaps": "The framework's controls scoring under 70 now.",
    "frameworks.prior_gaps / gaps_change": "Its gap count in the snapshot and the difference.",
    "overdue.new": "True when the attestation was not overdue in the snapshot; empty without a snapshot.",
    "overdue.days_overdue": "Whole days since the due date.",
    "no_longer_overdue.state_now": "The attestation's state now (attested, assigned, expired) or removed.",
    "chart": "Readiness per framework in the snapshot (when there is one) and now.",
}


@report(SLUG, title="Compliance program digest", category="Digests", query=PeriodQuery,
        formats=("json", "csv", "html"),
        summary="Compliance program digest: readiness per framework now against the last delivered digest (delta "
                "and direction), attestations newly overdue since then, and gaps per framework (JSON, CSV or "
                "printable HTML).",
        inputs="the evidence engine over every framework (evidence window periodDays), attestations, the org's "
               "last program-digest snapshot",
        window="as of now (evidence window periodDays ending now), compared with the snapshot saved by the last "
               "delivery of this digest",
        definitions=DEFINITIONS)
def build(ctx: ReportContext) -> Report:
    q: PeriodQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    program = prog.load(ctx.org_id, now, q.period_days)
    prior, snap = _prior(ctx.org_id)
    has_prior = prior is not None
    prior_readiness = prior.get("readiness", {}) if has_prior and isinstance(prior.get("readiness"), dict) else {}
    prior_gaps = prior.get("gaps", {}) if has_prior and isinstance(prior.get("gaps"), dict) else {}
    prior_overdue = {int(i) for i in (prior.get("overdue_attestation_ids") or []) if isinstance(i, int)} \
        if has_prior else set()

    fw_rows = []
    for key, fr in program.results.items():
        before = _number(prior_readiness.get(key))
        delta = round(fr.readiness - before, 1) if before is not None else None
        gaps = len(fr.gaps)
        gaps_before = prior_gaps.get(key) if isinstance(prior_gaps.get(key), int) else None
        fw_rows.append({"framework": key, "name": fr.name, "readiness": fr.readiness, "prior_readiness": before,
                        "delta": delta, "direction": direction(delta), "state": engine.state_for(fr.readiness),
                        "gaps": gaps, "prior_gaps": gaps_before,
                        "gaps_change": gaps - gaps_before if gaps_before is not None else None,
                        **fr.counts})

    registers = program.registers
    every = sum(len(items) for items in registers.attestations.values())
    overdue = engine.overdue_attestations(ctx.org_id, now, registers, limit=every)
    overdue_rows = [{**r, "framework": r["control"].split(":", 1)[0], "owner": program.email(r["owner_id"]),
                     "new": (r["id"] not in prior_overdue) if has_prior else None,
                     "link": f"/compliance/attestations/{r['id']}"} for r in overdue]
    for r in overdue_rows:
        r.pop("owner_id", None)
    newly = [r for r in overdue_rows if r["new"]]
    now_ids = {r["id"] for r in overdue_rows}
    by_id = {a.id: a for items in registers.attestations.values() for a in items}
    resolved = []
    for aid in sorted(prior_overdue - now_ids):
        a = by_id.get(aid)
        resolved.append({"id": aid, "control": a.control if a else "",
                         "state_now": (a.state_at(now) or "removed") if a else "removed",
                         "owner": program.email(a.owner_id) if a else "",
                         "link": f"/compliance/attestations/{aid}" if a else ""})

    readiness = program.readiness
    before_program = _number(prior.get("program_readiness")) if has_prior else None
    snap_at = snap.created_at if snap is not None else None
    if snap_at is not None and snap_at.tzinfo is None:
        snap_at = snap_at.replace(tzinfo=dt.timezone.utc)
    snap_period = prior.get("period_days") if has_prior else None
    gaps_total = sum(r["gaps"] for r in fw_rows)
    prior_gap_total = sum(v for v in prior_gaps.values() if isinstance(v, int)) if prior_gaps else None
    deltas = [r["direction"] for r in fw_rows if r["direction"] is not None]
    summary = {
        "period_days": q.period_days,
        "baseline": f"snapshot of {iso(snap_at.replace(microsecond=0))}" if has_prior else NO_SNAPSHOT,
        "snapshot_at": snap_at, "snapshot_period_days": snap_period,
        "program_readiness": readiness, "prior_program_readiness": before_program,
        "readiness_change": round(readiness - before_program, 1) if before_program is not None else None,
        "frameworks_up": deltas.count("up") if has_prior else None,
        "frameworks_down": deltas.count("down") if has_prior else None,
        "frameworks_unchanged": deltas.count("unchanged") if has_prior else None,
        "gaps": gaps_total,
        "gaps_change": gaps_total - prior_gap_total if prior_gap_total is not None else None,
        "overdue_attestations": len(overdue_rows),
        "newly_overdue": len(newly) if has_prior else None,
        "no_longer_overdue": len(resolved) if has_prior else None,
    }
    notes = []
    if has_prior and snap_period is not None and snap_period != q.period_days:
        notes.append(f"The last snapshot was computed over a {snap_period}-day evidence window; the figures now use "
                     f"{q.period_days} days.")
    labels = [r["framework"] for r in fw_rows]
    series = ([Series("last digest", [r["prior_readiness"] or 0.0 for r in fw_rows])] if has_prior else []) + \
        [Series("now", [r["readiness"] for r in fw_rows])]
    chart = Chart("frameworks", "Readiness by framework: last digest and now", "bar", labels, series, unit="0-100",
                  threshold=engine.PASSING, threshold_label="passing (70)",
                  description="Per framework: readiness in the last delivered digest (when there is one) and now.")
    overdue_cols = columns("id", "control", "framework", "title", "owner", ("due_at", "Due"),
                           ("days_overdue", "Days overdue"), "new", "link")
    return Report(
        SLUG, "Compliance program digest", {"periodDays": q.period_days, "as_of": now, "snapshot_at": snap_at},
        summary,
        [Section("frameworks", "Readiness by framework", columns(
            "framework", "name", "readiness", ("prior_readiness", "Last digest"), "delta", "direction", "state",
            "gaps", ("prior_gaps", "Gaps (last digest)"), ("gaps_change", "Gaps change"), "passing",
            ("at_risk", "At risk"), "failing"), fw_rows),
         Section("newly_overdue", "Attestations newly overdue since the last digest", overdue_cols, newly),
         Section("overdue", "All overdue attestations", overdue_cols, overdue_rows),
         Section("no_longer_overdue", "No longer overdue", columns("id", "control", ("state_now", "State now"),
                                                                   "owner", "link"), resolved)],
        now, charts=[chart], notes=notes)
