"""Control testing evidence linker: every automation dry-run (its plan and guardrail checks) is a test of change
management; map each to its control tags and to the evidence bundles whose window holds it (the bundle that
carried it to the assessor), showing the links already recorded in the audit log and the ones still to record
(``POST /api/governance/compliance/testing-evidence-linker`` records them)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from zentro.audit.models import AuditEvent
from zentro.automations.models import DryRun
from zentro.automations.service import CHANGE_TAGS
from zentro.compliance.report_registry import ReportContext, WindowQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._evidence import (LINK_ACTION, BundleInfo, Link, aware, control_title, load_bundles,
                                                 recorded_links)
from zentro.extensions import db


@dataclass
class Test:
    id: int
    at: dt.datetime
    verdict: str
    plan_hash: str
    playbook_id: int | None
    checks: int
    failed_checks: int
    controls: tuple[str, ...]
    covering: list[BundleInfo]


def load_tests(org_id: int, start: dt.datetime | None, end: dt.datetime, ids: list[int] | None = None) -> list[Test]:
    """Dry-runs with created_at in [start, end] (or the given ids), with their control tags (CHANGE_TAGS plus the
    tags of the audit events about them: ONE query over audit_events by target) and the bundles covering them."""
    q = select(DryRun.id, DryRun.created_at, DryRun.verdict, DryRun.plan_hash, DryRun.playbook_id, DryRun.checks
               ).where(DryRun.org_id == org_id)
    if ids is not None:
        q = q.where(DryRun.id.in_(ids))
    else:
        q = q.where(DryRun.created_at >= start, DryRun.created_at <= end)
    rows = db.session.execute(q.order_by(DryRun.created_at, DryRun.id)).all()
    if not rows:
        return []
    extra: dict[str, set[str]] = defaultdict(set)
    ev = select(AuditEvent.target_id, AuditEvent.control_tags).where(
        AuditEvent.org_id == org_id, AuditEvent.target_type == "dry_run", AuditEvent.control_tags != "")
    if ids is not None:
        ev = ev.where(AuditEvent.target_id.in_([str(i) for i in ids]))
    else:
        ev = ev.where(AuditEvent.created_at >= start)
    for target_id, tags in db.session.execute(ev):
        extra[target_id].update(tags.split())
    bundles = load_bundles(org_id)
    out = []
    for r in rows:
        at = aware(r.created_at)
        checks = list(r.checks or [])
        tags = tuple(sorted(set(CHANGE_TAGS) | extra.get(str(r.id), set())))
        out.append(Test(r.id, at, r.verdict, r.plan_hash, r.playbook_id, len(checks),
                        sum(1 for c in checks if isinstance(c, dict) and c.get("verdict") not in (None, "pass")),
                        tags, [b for b in bundles if b.covers(at)]))
    return out


@report("testing-evidence-linker", title="Control testing evidence linker", category="Evidence & testing",
        query=WindowQuery,
        summary="Control testing evidence linker — automation dry-run outputs (plans and guardrail checks) mapped to "
                "change-management controls and to the evidence bundles that carried them, with recorded and "
                "suggested links (JSON or CSV).",
        inputs="automation dry-runs and the audit events about them, evidence bundles (windows), recorded "
               "compliance.test_evidence.linked audit events",
        window="dry-runs created within the `window` ending now; bundles and recorded links of any date",
        definitions={
            "tests": "Dry-runs created in the window. Each is a control test of change management: its plan and "
                     "every guardrail check with its verdict.",
            "controls": "Distinct control tags tested: the change-management tags every dry-run carries "
                        "(SOC2:CC8.1, ISO27001:A.8.32, PCIDSS:6.5) plus any other tag on audit events whose target is "
                        "the dry-run.",
            "covering bundles": "Evidence bundles (any kind) whose window [window_start, window_end] contains the "
                                "dry-run's created_at: their audit_events.csv holds the dry-run's audit event.",
            "linked_tests": "Tests with at least one recorded link (a compliance.test_evidence.linked audit event "
                            "naming the dry-run, target the bundle).",
            "suggested_links": "(test, covering bundle) pairs with no recorded link yet.",
            "tests_without_bundle": "Tests no bundle covers yet (not carried to an assessor).",
            "links_recorded": "Recorded links for tests in the window.",
            "status": "linked: a link is recorded; suggested: covered by a bundle but not linked; unlinked: no bundle "
                      "covers it yet.",
            "failed_checks": "Guardrail checks of the dry-run whose verdict is not pass (needs_approval or blocked).",
            "controls section": "Per control: tests in the window, the last one, the bundles covering them, tests "
                                "linked/unlinked; state linked (every test linked), partial, or unlinked.",
        })
def build(ctx: ReportContext) -> Report:
    q: WindowQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    start = now - dt.timedelta(days=q.days)
    tests = load_tests(ctx.org_id, start, now)
    links = recorded_links(ctx.org_id)
    by_test: dict[int, list[Link]] = defaultdict(list)
    for (dry_id, _), link in links.items():
        by_test[dry_id].append(link)
    bundle_by_id = {b.id: b for b in load_bundles(ctx.org_id)}

    test_rows, suggested, per_control = [], [], {}
    linked_tests = no_bundle = links_in_window = 0
    for t in tests:
        mine = by_test.get(t.id, [])
        linked_ids = {l.bundle_id for l in mine}
        links_in_window += len(mine)
        status = "linked" if mine else "suggested" if t.covering else "unlinked"
        linked_tests += bool(mine)
        no_bundle += not t.covering
        for b in t.covering:
            if b.id not in linked_ids:
                suggested.append({"dry_run_id": t.id, "at": t.at, "bundle_id": b.id, "bundle_seq": b.seq,
                                  "bundle_kind": b.kind, "controls": list(t.controls)})
        test_rows.append({
            "dry_run_id": t.id, "at": t.at, "verdict": t.verdict, "checks": t.checks,
            "failed_checks": t.failed_checks, "plan_hash": t.plan_hash, "playbook_id": t.playbook_id,
            "controls": list(t.controls), "covering_bundles": [b.seq for b in t.covering],
            "linked_bundles": sorted(bundle_by_id[i].seq for i in linked_ids if i in bundle_by_id),
            "status": status})
        for tag in t.controls:
            c = per_control.setdefault(tag, {"control": tag, "title": control_title(tag), "tests": 0,
                                             "last_test": None, "bundles": set(), "linked_tests": 0,
                                             "unlinked_tests": 0})
            c["tests"] += 1
            c["last_test"] = max(c["last_test"] or t.at, t.at)
            c["bundles"].update(b.seq for b in t.covering)
            if mine:
                c["linked_tests"] += 1
            else:
                c["unlinked_tests"] += 1
    control_rows = []
    for c in sorted(per_control.values(), key=lambda c: c["control"]):
        state = ("linked" if c["unlinked_tests"] == 0 else "unlinked" if c["linked_tests"] == 0 else "partial")
        control_rows.append({**c, "bundles": sorted(c["bundles"]), "state": state})
    test_rows.reverse()  # newest first
    summary = {"tests": len(tests), "controls": len(control_rows), "linked_tests": linked_tests,
               "suggested_links": len(suggested), "tests_without_bundle": no_bundle,
               "links_recorded": links_in_window}
    statuses = ("linked", "suggested", "unlinked")
    chart = Chart("status", "Dry-run tests by link status", "bar", [s.capitalize() for s in statuses],
                  [Series("Tests", [float(sum(1 for r in test_rows if r["status"] == s)) for s in statuses])],
                  unit="tests", description="Bars: dry-run tests with a recorded bundle link, covered by a bundle but "
                                            "not linked, and not yet in any bundle.")
    return Report(
        "testing-evidence-linker", "Control testing evidence linker",
        {"window": q.window, "from": start, "to": now}, summary,
        [Section("controls", "Controls tested", columns("control", "title", "tests", "last_test",
                                                        ("bundles", "Bundles covering"), "linked_tests",
                                                        "unlinked_tests", "state"), control_rows),
         Section("tests", "Dry-run tests", columns(("dry_run_id", "Dry-run"), "at", "verdict", "checks",
                                                   "failed_checks", "plan_hash", "playbook_id", "controls",
                                                   ("covering_bundles", "Covering bundles"),
                                                   ("linked_bundles", "Linked bundles"), "status"), test_rows),
         Section("suggested", "Suggested links", columns(("dry_run_id", "Dry-run"), "at", "bundle_id",
                                                         ("bundle_seq", "Bundle #"), "bundle_kind", "controls"),
                 suggested)],
        now, charts=[chart])


# --- recording links (POST /api/governance/compliance/testing-evidence-linker) --------------------------------

DEFAULT_LINK_DAYS = 90

def record_links(org_id: int, *, actor, window_days: int | None = None, dry_run_ids: list[int] | None = None,
                 bundle_id: int | None = None, now: dt.datetime | None = None) -> dict:
    """Record one ``compliance.test_evidence.linked`` audit event per new (dry-run, bundle) pair, tagged with the
    dry-run's controls, target the bundle. The dry-runs: ``dry_run_ids`` (ids of another org: 404), else those
    created in the last ``window_days`` (default 90); with both, the listed ones created in the window. The
    bundles: ``bundle_id`` (another org's: 404), else every bundle whose window covers the dry-run. Listing
    dry-runs explicitly with a bundle asserts that the bundle carries them: one outside its window is 409. A pair
    already recorded records nothing (idempotent). Commits."""
    from zentro.audit.service import lock_org, record
    from zentro.platform.errors import ApiError
    from zentro.platform.types import utcnow

    now = now or utcnow()
    bundle = None
    if bundle_id is not None:
        bundle = next((b for b in load_bundles(org_id) if b.id == bundle_id), None)
        if bundle is None:
            raise ApiError(404, f"Bundle: no evidence bundle #{bundle_id} in this organisation.",
                           errors=[{"loc": ["bundleId"], "msg": "bundle not found", "type": "not_found"}])
    start = now - dt.timedelta(days=window_days) if window_days is not None else None
    if dry_run_ids is not None:
        ids = list(dict.fromkeys(dry_run_ids))
        tests = load_tests(org_id, None, now, ids=ids)
        missing = sorted(set(ids) - {t.id for t in tests})
        if missing:
            raise ApiError(404, "Dry-runs: no dry-run " + ", ".join(f"#{i}" for i in missing[:20])
                           + " in this organisation.",
                           errors=[{"loc": ["dryRunIds"], "msg": "dry-run not found", "type": "not_found"}])
        if start is not None:
            tests = [t for t in tests if start <= t.at <= now]
        if bundle is not None:
            outside = [t for t in tests if not bundle.covers(t.at)]
            if outside:
                t = outside[0]
                raise ApiError(409, f"Bundle #{bundle.seq} covers {bundle.window_start:%Y-%m-%d %H:%M} to "
                                    f"{bundle.window_end:%Y-%m-%d %H:%M} UTC; dry-run #{t.id} ran at "
                                    f"{t.at:%Y-%m-%d %H:%M} UTC, so the bundle does not carry it.",
                               errors=[{"loc": ["dryRunIds"], "msg": "dry-run outside the bundle window",
                                        "type": "conflict"}])
    else:
        tests = load_tests(org_id, start or now - dt.timedelta(days=DEFAULT_LINK_DAYS), now)
    pairs = [(t, b) for t in tests for b in t.covering if bundle is None or b.id == bundle.id]
    lock_org(org_id)  # one linker at a time per org: the "already recorded" check and the writes are atomic
    existing = recorded_links(org_id)
    created, unchanged = [], []
    for t, b in pairs:
        item = {"dry_run_id": t.id, "bundle_id": b.id, "bundle_seq": b.seq, "controls": list(t.controls)}
        known = existing.get((t.id, b.id))
        if known is not None:
            unchanged.append({**item, "audit_event_id": known.event_id})
            continue
        ev = record(org_id, LINK_ACTION, actor, target_type="evidence_bundle", target_id=b.id,
                    control_tags=t.controls, now=now,
                    data={"dry_run_id": t.id, "dry_run_at": t.at.isoformat(), "plan_hash": t.plan_hash,
                          "verdict": t.verdict, "checks": t.checks, "bundle_seq": b.seq, "bundle_kind": b.kind,
                          "manifest_sha256": b.manifest_sha256})
        existing[(t.id, b.id)] = Link(t.id, b.id, ev.id, now)
        created.append({**item, "audit_event_id": ev.id})
    db.session.commit()
    if created:
        detail = f"Recorded {len(created)} link(s)" + (f"; {len(unchanged)} already recorded." if unchanged else ".")
    elif unchanged:
        detail = f"Nothing new: all {len(unchanged)} link(s) were already recorded."
    else:
        detail = "Nothing to link: no dry-run in the selection is covered by a bundle."
    return {"created": len(created), "unchanged": len(unchanged), "links": created, "already_linked": unchanged,
            "detail": detail}
