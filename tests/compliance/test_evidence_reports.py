"""The "Evidence & testing" reports (evidence-requests, exception-register, testing-evidence-linker, testing-schedules,
evidence-lineage): key numbers pinned on hand-built datasets at a fixed NOW, every format parsed at the endpoint,
bad parameters, and the linker POST (idempotent, ownership, window checks)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from zentro.audit.service import SYSTEM, record
from zentro.automations.models import DryRun
from zentro.compliance import report_registry as registry
from zentro.compliance.catalog import load_catalog
from zentro.compliance.reports import testing_evidence_linker as linker
from zentro.extensions import db
from zentro.platform.types import utcnow

from .analytics_helpers import checkpoint, csv_blocks, evidence_request, gap_remediation, get_report
from .engine_helpers import NOW, attestation, bundle, days_ago, evidence, exception, policy
from .register_helpers import (Api, admin, admin_api, api, error_of, member, member_api,  # noqa: F401
                               other_api, owner, rows, stranger, viewer, viewer_api)

DAY = dt.timedelta(days=1)
LINKER = "/api/governance/compliance/testing-evidence-linker"


def rows_of(report, key):
    return list(report.section(key).iter_rows())


def dry_run(org_id: int, at: dt.datetime, *, verdict: str = "pass", checks: list | None = None,
            extra_tags: tuple[str, ...] = ()) -> int:
    row = DryRun(org_id=org_id, plan=[], plan_hash="a" * 64, blast_radius={}, slo_impact=[], checks=checks or [],
                 verdict=verdict, created_at=at, expires_at=at + dt.timedelta(minutes=15))
    db.session.add(row)
    db.session.flush()
    if extra_tags:
        record(org_id, "automation.dry_run", SYSTEM, target_type="dry_run", target_id=row.id,
               control_tags=extra_tags, now=at)
    return row.id


# --- evidence-requests -------------------------------------------------------------------------------

def seed_requests(org_id: int, owner_id: int, now: dt.datetime = NOW) -> dict:
    def ago(n):
        return days_ago(n, now)
    evidence(org_id, "SOC2:CC6.1", at=ago(1))
    ids = {
        "soon": evidence_request(org_id, "Access review export", ["SOC2:CC6.1", "SOC2:CC7.2"], due_at=ago(-3),
                                 requested_at=ago(10), owner_id=owner_id).id,
        "late": evidence_request(org_id, "Vulnerability scans", ["ISO27001:A.8.8"], due_at=ago(2),
                                 requested_at=ago(12)).id,
        "later": evidence_request(org_id, "Joiner/leaver tickets", ["SOC2:CC6.1"], due_at=ago(-20),
                                  requested_at=ago(1)).id,
        "on_time": evidence_request(org_id, "Change tickets", ["SOC2:CC8.1"], requested_at=ago(20), due_at=ago(5),
                                    status="fulfilled", fulfilled_at=ago(8)).id,
        "late_done": evidence_request(org_id, "Backup tests", ["SOC2:A1.2"], requested_at=ago(30), due_at=ago(15),
                                      status="fulfilled", fulfilled_at=ago(10)).id,
        "old": evidence_request(org_id, "Old request", ["SOC2:CC1.1"], requested_at=ago(200), due_at=ago(160),
                                status="fulfilled", fulfilled_at=ago(150)).id,
        "cancelled": evidence_request(org_id, "Withdrawn", ["SOC2:CC2.1"], requested_at=ago(9), due_at=ago(-9),
                                      status="cancelled").id,
    }
    db.session.commit()
    return ids


def test_evidence_requests_numbers(ctx, owner):
    ids = seed_requests(owner.org_id, owner.user_id)
    r = registry.build("evidence-requests", owner.org_id, NOW)
    assert r.summary == {"open": 3, "overdue": 1, "due_in_7_days": 1, "fulfilled_in_window": 2,
                         "median_days_to_fulfil": 16.0, "on_time_rate": 50.0, "cancelled": 1}
    open_rows = rows_of(r, "open")
    assert [o["id"] for o in open_rows] == [ids["late"], ids["soon"], ids["later"]]
    late, soon = open_rows[0], open_rows[1]
    assert late["overdue"] and late["days_to_due"] == -2 and late["state"] == "overdue"
    assert soon["days_to_due"] == 3 and soon["owner"] == owner.email
    # CC6.1 has fresh direct evidence (70, passing), CC7.2 none (0, failing): the worst is failing
    assert soon["control_states"] == ["SOC2:CC6.1=passing", "SOC2:CC7.2=failing"]
    assert soon["worst_state"] == "failing"
    fulfilled = {f["id"]: f for f in rows_of(r, "fulfilled")}
    assert set(fulfilled) == {ids["on_time"], ids["late_done"]}
    assert fulfilled[ids["on_time"]]["days_to_fulfil"] == 12.0 and fulfilled[ids["on_time"]]["on_time"] is True
    assert fulfilled[ids["late_done"]]["days_to_fulfil"] == 20.0 and fulfilled[ids["late_done"]]["on_time"] is False
    controls = {c["control"]: c for c in rows_of(r, "controls")}
    assert controls["SOC2:CC6.1"]["open_requests"] == 2 and controls["SOC2:CC6.1"]["state"] == "passing"
    assert controls["SOC2:CC6.1"]["next_due"] == days_ago(-3)
    assert controls["ISO27001:A.8.8"]["overdue_requests"] == 1
    assert [c["control"] for c in rows_of(r, "controls")][0] in ("SOC2:CC7.2", "ISO27001:A.8.8")  # failing first
    assert r.charts[0].series[0].values == [1.0, 1.0, 1.0, 0.0]

    week = registry.build("evidence-requests", owner.org_id, NOW, window="7d")
    assert week.summary["fulfilled_in_window"] == 0 and week.summary["median_days_to_fulfil"] is None
    assert week.summary["on_time_rate"] is None and week.summary["open"] == 3
    overdue_only = registry.build("evidence-requests", owner.org_id, NOW, status="overdue")
    assert [o["id"] for o in rows_of(overdue_only, "open")] == [ids["late"]]
    assert rows_of(overdue_only, "fulfilled") == [] and overdue_only.summary["open"] == 3
    assert [c["id"] for c in rows_of(registry.build("evidence-requests", owner.org_id, NOW, status="cancelled"),
                                     "cancelled")] == [ids["cancelled"]]


def test_evidence_requests_empty_org(ctx, owner):
    r = registry.build("evidence-requests", owner.org_id, NOW)
    assert r.summary["open"] == 0 and r.summary["median_days_to_fulfil"] is None
    assert all(rows_of(r, s.key) == [] for s in r.sections)


def test_evidence_requests_endpoint_formats(app, api, owner):
    with app.app_context():
        ids = seed_requests(owner.org_id, owner.user_id, utcnow())
    body = get_report(api.client, "evidence-requests", headers=api.headers).get_json()
    assert body["summary"]["open"] == 3 and body["summary"]["on_time_rate"] == 50.0
    assert body["sections"]["open"]["rows"][0]["id"] == ids["late"]
    resp = get_report(api.client, "evidence-requests", headers=api.headers, format="csv", window="30d")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    blocks = csv_blocks(resp.get_data(as_text=True))
    summary = dict(blocks["Summary"][1:])
    assert summary["open"] == "3" and summary["fulfilled_in_window"] == "2"
    assert summary["median_days_to_fulfil"] == "16.0"
    assert len(blocks["Open requests"]) == 4 and blocks["Open requests"][0][0] == "Id"


@pytest.mark.parametrize("params", [{"window": "14d"}, {"status": "late"}, {"format": "pdf"}, {"bogus": "1"}])
def test_evidence_requests_bad_params(api, params):
    error_of(get_report(api.client, "evidence-requests", headers=api.headers, **params), 400, "VALIDATION_ERROR")


# --- exception-register ------------------------------------------------------------------------------

def seed_register(org_id: int, now: dt.datetime = NOW) -> dict:
    def ago(n):
        return days_ago(n, now)
    evidence(org_id, "SOC2:CC6.1", at=ago(1))
    out = {
        "open": exception(org_id, "SOC2:CC6.6", opened_at=ago(10), expires_at=ago(-20)).id,
        "expired": exception(org_id, "ISO27001:A.8.8", opened_at=ago(100), expires_at=ago(1)).id,
        "closed": exception(org_id, "SOC2:CC6.7", opened_at=ago(100), expires_at=ago(-50), status="closed",
                            closed_at=ago(3)).id,
        "later": exception(org_id, "SOC2:CC9.2", opened_at=ago(5), expires_at=ago(-90)).id,
    }
    policy(org_id, "Risk policy", ["SOC2:CC6.1", "SOC2:CC3.2"], accepted_at=ago(5), updated_at=ago(5))
    policy(org_id, "Draft policy", ["SOC2:CC3.1"], status="draft", accepted_at=None, updated_at=ago(5))
    gap_remediation(org_id, "SOC2:CC7.2", status="in_progress", runbook_url="https://wiki.example.com/cc72",
                    due_at=ago(-10))
    gap_remediation(org_id, "SOC2:CC3.2", status="wont_fix")
    db.session.commit()
    return out


def test_exception_register_numbers(ctx, owner):
    ids = seed_register(owner.org_id)
    r = registry.build("exception-register", owner.org_id, NOW)
    soc2 = load_catalog().tags_for("SOC2")
    iso = load_catalog().tags_for("ISO27001")
    s = r.summary
    assert s["frameworks"] == ["SOC2", "ISO27001"]
    assert (s["exceptions_open"], s["exceptions_expired"], s["exceptions_closed"], s["expiring_in_30_days"]) == \
        (2, 1, 1, 1)
    exc = {e["id"]: e for e in rows_of(r, "exceptions")}
    assert exc[ids["open"]]["days_to_expiry"] == 20 and exc[ids["expired"]]["days_to_expiry"] == -1
    assert exc[ids["closed"]]["days_to_expiry"] is None
    assert [e["id"] for e in rows_of(r, "exceptions")][0] == ids["expired"]  # expired first
    # policy drift: CC3.2 has only the policy (partial evidence, 50) -> at_risk; CC6.1 is passing
    drift = rows_of(r, "policy_drift")
    assert [(d["policy"], d["control"], d["score"], d["state"]) for d in drift] == \
        [("Risk policy", "SOC2:CC3.2", 50.0, "at_risk")]
    assert s["policy_drift"] == 1
    gaps = {g["control"] for g in rows_of(r, "unmanaged_gaps")}
    # managed: CC6.6 and CC9.2 (open exceptions), CC7.2 (remediation in progress); passing: CC6.1
    assert not gaps & {"SOC2:CC6.6", "SOC2:CC9.2", "SOC2:CC7.2", "SOC2:CC6.1"}
    # the expired exception and the wont_fix remediation manage nothing
    assert {"ISO27001:A.8.8", "SOC2:CC3.2"} <= gaps
    passing = {g for g in soc2 + iso if g not in gaps} - {"SOC2:CC6.6", "SOC2:CC9.2", "SOC2:CC7.2"}
    assert "SOC2:CC6.1" in passing
    assert s["unmanaged_gaps"] == len(gaps) == len(soc2) + len(iso) - 3 - len(passing)
    rems = {m["control"]: m for m in rows_of(r, "remediations")}
    assert set(rems) == {"SOC2:CC3.2"}  # CC7.2 is in no section (managed, no exception, no drift)
    assert s["entries"] == 4 + s["unmanaged_gaps"] + 1

    soc_only = registry.build("exception-register", owner.org_id, NOW, framework="soc2")
    assert registry.build("exception-register", owner.org_id, NOW, framework="pci-dss").summary["frameworks"] == \
        ["PCIDSS"]
    soc_gaps = [g["control"] for g in rows_of(soc_only, "unmanaged_gaps")]
    assert all(t.startswith("SOC2:") for t in soc_gaps)
    assert len(soc_gaps) == len(soc2) - 4  # CC6.1 passing, CC6.6 / CC9.2 excepted, CC7.2 remediated
    assert soc_only.summary["frameworks"] == ["SOC2"]


def test_exception_register_empty_org(ctx, owner):
    r = registry.build("exception-register", owner.org_id, NOW)
    assert r.summary["frameworks"] == [] and r.summary["entries"] == 0 and r.summary["unmanaged_gaps"] == 0
    # an open evidence request is enough to put its controls' frameworks in the program; a cancelled one is not
    evidence_request(owner.org_id, "Cardholder data flows", ["PCIDSS:1.2", "HIPAA:164.308(a)(1)(i)"],
                     due_at=days_ago(-5), status="cancelled")
    evidence_request(owner.org_id, "Network diagrams", ["PCIDSS:1.2"], due_at=days_ago(-5))
    db.session.commit()
    r = registry.build("exception-register", owner.org_id, NOW)
    assert r.summary["frameworks"] == ["PCIDSS"]
    assert r.summary["unmanaged_gaps"] == len(load_catalog().tags_for("PCIDSS"))


def test_exception_register_endpoint(app, api, owner):
    with app.app_context():
        seed_register(owner.org_id, utcnow())
    body = get_report(api.client, "exception-register", headers=api.headers, framework="soc2").get_json()
    assert body["summary"]["exceptions_open"] == 2 and body["summary"]["policy_drift"] == 1
    resp = get_report(api.client, "exception-register", headers=api.headers, format="csv", periodDays=60)
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert dict(blocks["Summary"][1:])["exceptions_expired"] == "1"
    assert blocks["Policy drift"][1][1] == "Risk policy"
    for params in ({"framework": "nope"}, {"framework": "soc2,iso27001"}, {"periodDays": 0}, {"periodDays": 731},
                   {"format": "html"},
                   {"window": "30d"}):
        error_of(get_report(api.client, "exception-register", headers=api.headers, **params), 400,
                 "VALIDATION_ERROR")


# --- testing-evidence-linker -------------------------------------------------------------------------

def seed_linker(org_id: int, now: dt.datetime = NOW) -> dict:
    def ago(n):
        return days_ago(n, now)
    b1 = bundle(org_id, 1, created_at=ago(10))  # window [-40d, -10d]
    b2 = bundle(org_id, 2, created_at=ago(2), kind="workbook")  # window [-32d, -2d]
    ids = {
        "b1": b1.id, "b2": b2.id,
        "d1": dry_run(org_id, ago(35), verdict="needs_approval", checks=[
            {"guardrail_id": 1, "name": "tier 0", "kind": "tier_protection", "verdict": "needs_approval",
             "reason": "tier 0"}, {"guardrail_id": 2, "name": "freeze", "kind": "change_freeze", "verdict": "pass",
                                   "reason": ""}]),
        "d2": dry_run(org_id, ago(20), extra_tags=("SOC2:CC7.1",)),
        "d3": dry_run(org_id, ago(1)),
        "d4": dry_run(org_id, ago(100)),
    }
    db.session.commit()
    return ids


def test_linker_numbers_and_links(ctx, owner):
    ids = seed_linker(owner.org_id)
    actor = SYSTEM
    out = linker.record_links(owner.org_id, actor=actor, dry_run_ids=[ids["d1"]], bundle_id=ids["b1"], now=NOW)
    assert out["created"] == 1 and out["links"][0]["bundle_seq"] == 1
    assert set(out["links"][0]["controls"]) == {"SOC2:CC8.1", "ISO27001:A.8.32", "PCIDSS:6.5"}
    r = registry.build("testing-evidence-linker", owner.org_id, NOW)
    assert r.summary == {"tests": 3, "controls": 4, "linked_tests": 1, "suggested_links": 2,
                         "tests_without_bundle": 1, "links_recorded": 1}
    tests = {t["dry_run_id"]: t for t in rows_of(r, "tests")}
    assert set(tests) == {ids["d1"], ids["d2"], ids["d3"]}
    assert tests[ids["d1"]]["status"] == "linked" and tests[ids["d1"]]["linked_bundles"] == [1]
    assert tests[ids["d1"]]["checks"] == 2 and tests[ids["d1"]]["failed_checks"] == 1
    assert tests[ids["d2"]]["covering_bundles"] == [1, 2] and tests[ids["d2"]]["status"] == "suggested"
    assert "SOC2:CC7.1" in tests[ids["d2"]]["controls"]
    assert tests[ids["d3"]]["status"] == "unlinked" and tests[ids["d3"]]["covering_bundles"] == []
    controls = {c["control"]: c for c in rows_of(r, "controls")}
    assert controls["SOC2:CC8.1"] == {"control": "SOC2:CC8.1", "title": controls["SOC2:CC8.1"]["title"], "tests": 3,
                                      "last_test": days_ago(1), "bundles": [1, 2], "linked_tests": 1,
                                      "unlinked_tests": 2, "state": "partial"}
    assert controls["SOC2:CC7.1"]["tests"] == 1 and controls["SOC2:CC7.1"]["state"] == "unlinked"
    assert sorted((s["dry_run_id"], s["bundle_seq"]) for s in rows_of(r, "suggested")) == \
        [(ids["d2"], 1), (ids["d2"], 2)]

    # the window form links every suggestion; doing it again records nothing new
    out = linker.record_links(owner.org_id, actor=actor, window_days=90, now=NOW)
    assert (out["created"], out["unchanged"]) == (2, 1)
    again = linker.record_links(owner.org_id, actor=actor, window_days=90, now=NOW)
    assert (again["created"], again["unchanged"]) == (0, 3) and "already recorded" in again["detail"]
    r = registry.build("testing-evidence-linker", owner.org_id, NOW)
    assert r.summary["suggested_links"] == 0 and r.summary["links_recorded"] == 3 and r.summary["linked_tests"] == 2


def test_linker_endpoint(app, api, admin_api, member_api, other_api, owner, rows):
    with app.app_context():
        ids = seed_linker(owner.org_id, utcnow())
    body = get_report(api.client, "testing-evidence-linker", headers=api.headers).get_json()
    assert body["summary"]["tests"] == 3 and body["summary"]["suggested_links"] == 3
    blocks = csv_blocks(get_report(api.client, "testing-evidence-linker", headers=api.headers, format="csv",
                                   window="30d").get_data(as_text=True))
    assert dict(blocks["Summary"][1:])["tests"] == "2"  # d1 ran 35 days ago
    error_of(get_report(api.client, "testing-evidence-linker", headers=api.headers, window="1d"), 400,
             "VALIDATION_ERROR")

    before = rows("audit_events")
    error_of(member_api.post(LINKER, json={"window": "90d"}), 403, "FORBIDDEN")
    error_of(admin_api.post(LINKER, json={"window": "14d"}), 400, "VALIDATION_ERROR")
    error_of(admin_api.post(LINKER, json={"dryRunIds": []}), 400, "VALIDATION_ERROR")
    error_of(admin_api.post(LINKER, json={"dryRunIds": ["1"]}), 400, "VALIDATION_ERROR")
    error_of(admin_api.post(LINKER, json={"bundle": 1}), 400, "VALIDATION_ERROR")
    error_of(admin_api.post(LINKER, json={"dryRunIds": [ids["d3"]], "bundleId": ids["b1"]}), 409, "CONFLICT")
    error_of(admin_api.post(LINKER, json={"dryRunIds": [ids["d1"]], "bundleId": 999999}), 404, "NOT_FOUND")
    # another org cannot link org A's rows (their ids are 404 there)
    error_of(other_api.post(LINKER, json={"dryRunIds": [ids["d1"]], "bundleId": ids["b1"]}), 404, "NOT_FOUND")
    assert rows("audit_events") == before

    resp = admin_api.post(LINKER, json={"dryRunIds": [ids["d2"]], "bundleId": ids["b2"]})
    assert resp.status_code == 200 and resp.get_json()["created"] == 1
    resp = admin_api.post(LINKER, json={"window": "90d", "bundleId": ids["b2"]})
    assert resp.get_json()["created"] == 0 and resp.get_json()["unchanged"] == 1
    # listed dry-runs outside the window are left out; d3 is in no bundle: nothing to link
    resp = admin_api.post(LINKER, json={"window": "7d", "dryRunIds": [ids["d1"], ids["d3"]]})
    assert resp.get_json()["created"] == 0 and "Nothing to link" in resp.get_json()["detail"]
    resp = admin_api.post(LINKER, json={"dryRunIds": [ids["d1"]]})  # every bundle covering d1: b1
    assert [(x["dry_run_id"], x["bundle_id"]) for x in resp.get_json()["links"]] == [(ids["d1"], ids["b1"])]
    resp = admin_api.post(LINKER, json={})  # every dry-run of the last 90 days with every covering bundle
    assert resp.get_json()["created"] == 1 and resp.get_json()["unchanged"] == 2
    assert rows("audit_events", action="compliance.test_evidence.linked") == 3
    body = get_report(api.client, "testing-evidence-linker", headers=api.headers).get_json()
    assert body["summary"]["suggested_links"] == 0 and body["summary"]["links_recorded"] == 3


# --- testing-schedules -------------------------------------------------------------------------------

def test_testing_schedules_numbers(ctx, owner):
    org = owner.org_id
    evidence(org, "SOC2:CC6.1", at=days_ago(1))
    evidence(org, "SOC2:CC7.2", at=days_ago(40))
    attestation(org, "SOC2:CC6.1", due_at=days_ago(35), status="attested", attested_at=days_ago(30),
                valid_until=days_ago(-60), owner_id=owner.user_id)
    attestation(org, "SOC2:CC1.1", due_at=days_ago(-5))
    checkpoint(org, "ISO fieldwork", "ISO27001", due_at=days_ago(-14))
    checkpoint(org, "Old kick-off", "PCIDSS", due_at=days_ago(30), status="done", done_at=days_ago(30))
    db.session.commit()
    iso = load_catalog().tags_for("ISO27001")
    r = registry.build("testing-schedules", org, NOW)
    assert r.summary == {"controls": 3 + len(iso), "overdue": 1, "due_this_week": 1, "due_in_horizon": 2 + len(iso),
                         "by_source": {"attestation renewal": 2, "freshness SLA": 1, "audit checkpoint": len(iso)}}
    sched = {s["control"]: s for s in rows_of(r, "schedule")}
    cc61 = sched["SOC2:CC6.1"]
    assert (cc61["source"], cc61["next_due"], cc61["cadence_days"], cc61["last_tested"], cc61["owner"]) == \
        ("attestation renewal", days_ago(-60), 90, days_ago(1), owner.email)
    cc72 = sched["SOC2:CC7.2"]
    assert (cc72["source"], cc72["next_due"], cc72["days_to_due"], cc72["overdue"], cc72["cadence_days"]) == \
        ("freshness SLA", days_ago(10), -10, True, 30)
    assert sched["SOC2:CC1.1"]["source"] == "attestation renewal" and sched["SOC2:CC1.1"]["last_tested"] is None
    assert sched[iso[0]]["source"] == "audit checkpoint" and sched[iso[0]]["next_due"] == days_ago(-14)
    assert [o["control"] for o in rows_of(r, "overdue")] == ["SOC2:CC7.2"]
    assert rows_of(r, "overdue")[0]["days_overdue"] == 10
    weeks = rows_of(r, "weeks")
    assert len(weeks) == 13 and weeks[0]["week"] == dt.date(2025, 6, 30) and weeks[0]["tests_due"] == 1
    assert weeks[2]["audit_checkpoint"] == len(iso)  # NOW + 14 days is in the third week
    assert sum(w["tests_due"] for w in weeks) == r.summary["due_in_horizon"]
    short = registry.build("testing-schedules", org, NOW, weeks=1)
    assert short.summary["due_in_horizon"] == 1


def test_testing_schedules_empty_and_endpoint(app, api, owner):
    with app.app_context():
        r = registry.build("testing-schedules", owner.org_id, NOW)
        assert r.summary["controls"] == 0 and len(rows_of(r, "weeks")) == 13
        evidence(owner.org_id, "SOC2:CC7.2", at=utcnow() - 40 * DAY)
        db.session.commit()
    body = get_report(api.client, "testing-schedules", headers=api.headers, weeks=4).get_json()
    assert body["summary"]["overdue"] == 1 and len(body["sections"]["weeks"]["rows"]) == 4
    rows = list(csv.reader(io.StringIO(get_report(api.client, "testing-schedules", headers=api.headers,
                                                  format="csv").get_data(as_text=True))))
    assert ["metric", "value"] != rows[1] and ["overdue", "1"] in rows
    for params in ({"weeks": 0}, {"weeks": 53}, {"weeks": "x"}, {"format": "ics"}, {"extra": "1"}):
        error_of(get_report(api.client, "testing-schedules", headers=api.headers, **params), 400, "VALIDATION_ERROR")


# --- evidence-lineage --------------------------------------------------------------------------------

def seed_lineage(org_id: int, now: dt.datetime = NOW) -> None:
    def ago(n):
        return days_ago(n, now)
    evidence(org_id, "SOC2:CC7.2", at=ago(5), action="incident.status_changed", n=3)
    evidence(org_id, "SOC2:CC6.1", "ISO27001:A.5.15", at=ago(20), action="access.reviewed", n=2)
    evidence(org_id, "SOC2:CC6.1", at=ago(50), action="access.reviewed")
    evidence(org_id, "SOC2:CC7.3", at=ago(0.5), action="alert.triaged")
    evidence(org_id, "SOC2:CC9.1", at=ago(200), action="bcp.tested")
    record(org_id, "user.login", SYSTEM, now=ago(3))  # untagged: not a source
    policy(org_id, "Access control policy", ["SOC2:CC6.2"], accepted_at=ago(25), updated_at=ago(25))
    bundle(org_id, 1, created_at=ago(300))
    bundle(org_id, 2, created_at=ago(15))  # window [-45d, -15d]
    bundle(org_id, 3, created_at=ago(1), kind="workbook")  # window [-31d, -1d]
    db.session.commit()


def test_evidence_lineage_numbers(ctx, owner):
    seed_lineage(owner.org_id)
    r = registry.build("evidence-lineage", owner.org_id, NOW)
    assert r.summary == {"sources": 4, "tagged_events": 7, "policies": 1, "controls": 5, "bundles": 2,
                         "workbooks": 1, "latest_workbook_seq": 3, "controls_in_latest_workbook": 4,
                         "controls_in_no_bundle": 1}
    c = {x["control"]: x for x in rows_of(r, "controls")}
    assert (c["SOC2:CC6.1"]["events"], c["SOC2:CC6.1"]["bundles"], c["SOC2:CC6.1"]["first_at"],
            c["SOC2:CC6.1"]["last_at"]) == (3, [2, 3], days_ago(50), days_ago(20))
    assert c["SOC2:CC6.1"]["by_action"] == {"access.reviewed": 3}
    assert c["SOC2:CC7.2"]["bundles"] == [3] and c["SOC2:CC7.2"]["top_action"] == "incident.status_changed"
    assert c["SOC2:CC6.2"]["policies"] == 1 and c["SOC2:CC6.2"]["bundles"] == [2, 3]
    assert c["SOC2:CC7.3"]["bundles"] == [] and c["SOC2:CC7.3"]["in_latest_workbook"] is False
    assert c["SOC2:CC6.1"]["in_latest_workbook"] is True
    b = {x["seq"]: x for x in rows_of(r, "bundles")}
    assert (b[2]["controls"], b[2]["evidence_items"]) == (3, 5)
    assert (b[3]["controls"], b[3]["evidence_items"], b[3]["latest_workbook"]) == (4, 8, True)
    src = {s["source"]: s for s in rows_of(r, "sources")}
    assert src["access.reviewed"]["events"] == 3 and src["access.reviewed"]["controls"] == 2
    assert src["Access control policy"]["source_kind"] == "policy"
    edges = rows_of(r, "edges")
    assert {"from_kind": "audit_action", "from": "incident.status_changed", "to_kind": "control",
            "to": "SOC2:CC7.2", "weight": 3} in edges
    assert {"from_kind": "control", "from": "SOC2:CC7.2", "to_kind": "workbook", "to": "#3", "weight": 3} in edges
    assert {"from_kind": "policy", "from": "Access control policy", "to_kind": "control", "to": "SOC2:CC6.2",
            "weight": 1} in edges
    year = registry.build("evidence-lineage", owner.org_id, NOW, window="365d")
    assert year.summary["tagged_events"] == 8 and year.summary["bundles"] == 3


def test_evidence_lineage_empty_and_endpoint(app, api, owner):
    with app.app_context():
        r = registry.build("evidence-lineage", owner.org_id, NOW)
        assert r.summary["controls"] == 0 and r.summary["latest_workbook_seq"] is None
    # the API key's own creation is a tagged audit event: measure it first
    base = get_report(api.client, "evidence-lineage", headers=api.headers, window="7d").get_json()["summary"]
    with app.app_context():
        seed_lineage(owner.org_id, utcnow())
    body = json.loads(get_report(api.client, "evidence-lineage", headers=api.headers).get_data(as_text=True))
    controls = {c["control"] for c in body["sections"]["controls"]["rows"]}
    assert {"SOC2:CC7.2", "SOC2:CC6.1", "ISO27001:A.5.15", "SOC2:CC6.2", "SOC2:CC7.3"} <= controls
    assert body["summary"]["controls"] == len(controls) and len(body["sections"]["edges"]["rows"]) > 5
    assert body["summary"]["latest_workbook_seq"] == 3
    blocks = csv_blocks(get_report(api.client, "evidence-lineage", headers=api.headers, format="csv",
                                   window="7d").get_data(as_text=True))
    # CC7.2 x3 five days ago and CC7.3 today
    assert dict(blocks["Summary"][1:])["tagged_events"] == str(4 + base["tagged_events"])
    assert blocks["Lineage edges"][0] == ["From kind", "From", "To kind", "To", "Weight"]
    for params in ({"window": "2d"}, {"format": "markdown"}, {"periodDays": 30}):
        error_of(get_report(api.client, "evidence-lineage", headers=api.headers, **params), 400, "VALIDATION_ERROR")


def test_reports_are_viewer_readable_and_tenant_scoped(app, viewer_api, other_api, owner):
    with app.app_context():
        seed_requests(owner.org_id, owner.user_id, utcnow())
        seed_linker(owner.org_id, utcnow())
    for slug in ("evidence-requests", "exception-register", "testing-evidence-linker", "testing-schedules",
                 "evidence-lineage"):
        assert get_report(viewer_api.client, slug, headers=viewer_api.headers).status_code == 200
        other = get_report(other_api.client, slug, headers=other_api.headers).get_data(as_text=True)
        assert "Access review export" not in other and "Vulnerability scans" not in other, slug
    other = get_report(other_api.client, "evidence-requests", headers=other_api.headers).get_json()
    assert other["summary"]["open"] == 0
    assert get_report(other_api.client, "testing-evidence-linker", headers=other_api.headers).get_json()[
        "summary"]["tests"] == 0
