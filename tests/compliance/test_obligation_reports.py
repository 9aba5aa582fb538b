"""The obligation reports (ics, heatmap, crossover, consolidation, forecast, what-if, rollup) on a hand-built
dataset at a fixed NOW (service level, via ``registry.build``), then each endpoint in each of its formats, with
bad parameters and the consolidation write path."""
from __future__ import annotations

import datetime as dt
import json

import icalendar
import pytest

from zentro.compliance import report_registry as registry
from zentro.compliance.models import ConsolidationPlayStep
from zentro.compliance.reporting import to_dict
from zentro.extensions import db
from zentro.platform.types import utcnow

from tests.compliance.analytics_helpers import checkpoint, committee, csv_blocks, evidence_request, get_report
from tests.compliance.engine_helpers import attestation, bundle, vendor
from tests.compliance.register_helpers import (Api, admin, admin_api, api, error_of, member, member_api,  # noqa: F401
                                               other_api, owner, rows, stranger, viewer, viewer_api)

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday; the current ISO week starts 2026-11-23
W0, W1, W2 = dt.date(2026, 11, 23), dt.date(2026, 11, 30), dt.date(2026, 12, 7)


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def seed(org_id: int, owner_id: int, member_id: int, now: dt.datetime = NOW) -> dict:
    """Committee: warn 3, critical 5, capacity 10 h, bundles every 30 days. Open obligations:

    - er1  evidence request (SOC2:CC7.2), due 2026-11-10: overdue, before the horizon
    - a3   attestation PCIDSS:10.2, due 2026-11-23 09:00: overdue, week 0 (crosswalk neighbour of SOC2:CC7.2)
    - a1   attestation SOC2:CC6.1, due 2026-11-28, week 0
    - v2r  vendor review 'Logship' (low tier, inherits ISO27001:A.8.15), due 2026-12-01 10:00, week 1
    - a2   attestation ISO27001:A.5.15 (full crosswalk edge to SOC2:CC6.1), due 2026-12-01, week 1
    - c1   checkpoint 'SOC 2 fieldwork' (SOC2), due 2026-12-02, week 1
    - v1r  vendor review 'Acme Cloud' (critical, SOC2:CC6.4 + ISO27001:A.7.1), due 2026-12-03, week 1
    - bundles every 30 days from the last bundle (2026-11-06): 2026-12-06 (week 1), 2027-01-05, 2027-02-04, ...
    - v1p  vendor report renewal 'Acme Cloud', due 2027-01-25
    - a4r  renewal of the attested ISO27001:A.8.13, due 2027-02-14
    Completed: a4 attested 2026-11-16 (due 11-18: on time), checkpoint c2 done 10-27 (due 10-29: on time),
    er2 fulfilled 10-22 (due 10-17: late), the bundle made 11-06.
    """
    committee(org_id, density_warn=3, density_critical=5, capacity_hours_per_week=10.0, bundle_cadence_days=30)
    ids = {}
    ids["er1"] = evidence_request(org_id, "Alert triage samples", ["SOC2:CC7.2"], due_at=at("2026-11-10"),
                                  owner_id=member_id).id
    ids["er2"] = evidence_request(org_id, "Access review export", ["SOC2:CC6.2"], due_at=at("2026-10-17"),
                                  status="fulfilled", fulfilled_at=at("2026-10-22"), owner_id=member_id).id
    ids["a3"] = attestation(org_id, "PCIDSS:10.2", due_at=at("2026-11-23", 9), owner_id=owner_id).id
    ids["a1"] = attestation(org_id, "SOC2:CC6.1", due_at=at("2026-11-28"), owner_id=member_id).id
    ids["a2"] = attestation(org_id, "ISO27001:A.5.15", due_at=at("2026-12-01"), owner_id=member_id).id
    ids["a4"] = attestation(org_id, "ISO27001:A.8.13", due_at=at("2026-11-18"), status="attested",
                            attested_at=at("2026-11-16"), valid_until=at("2027-02-14"), owner_id=member_id).id
    ids["v1"] = vendor(org_id, "Acme Cloud", ["SOC2:CC6.4", "ISO27001:A.7.1"], expires=at("2027-01-25"),
                       tier="critical", next_review_at=at("2026-12-03")).id
    ids["v2"] = vendor(org_id, "Logship", ["ISO27001:A.8.15"], expires=None, tier="low",
                       next_review_at=at("2026-12-01", 10)).id
    ids["c1"] = checkpoint(org_id, "SOC 2 fieldwork", "SOC2", due_at=at("2026-12-02"), owner_id=owner_id).id
    ids["c2"] = checkpoint(org_id, "ISO stage 1 audit", "ISO27001", due_at=at("2026-10-29"), status="done",
                           done_at=at("2026-10-27")).id
    bundle(org_id, 1, created_at=at("2026-11-06"))
    db.session.commit()
    return ids


@pytest.fixture
def data(app, owner, member):
    with app.app_context():
        ids = seed(owner.org_id, owner.user_id, member.user_id)
        db.session.remove()
    return ids


def build(app, org_id, slug, **params):
    with app.app_context():
        report = registry.build(slug, org_id, NOW, **params)
        doc = to_dict(report)
        db.session.remove()
    return report, doc


def section_rows(doc, section):
    return doc["sections"][section]["rows"]


# --- service level: pinned numbers ---------------------------------------------------------------------------

def test_forecast_weeks_thresholds_and_milestones(app, data, owner):
    _, doc = build(app, owner.org_id, "obligation-forecast")
    s = doc["summary"]
    assert (s["obligations"], s["owner_hours"], s["overdue_open"]) == (11, 32.0, 1)
    assert (s["peak_week"], s["peak_count"], s["peak_hours"], s["peak_level"]) == ("2026-11-30", 5, 19.0, "critical")
    assert (s["weeks_warn"], s["weeks_critical"], s["weeks_over_capacity"], s["milestones"]) == (0, 1, 1, 1)
    weeks = {r["week"]: r for r in section_rows(doc, "weeks")}
    assert len(weeks) == 13
    assert (weeks["2026-11-23"]["count"], weeks["2026-11-23"]["owner_hours"], weeks["2026-11-23"]["level"]) == (2, 4.0, "ok")
    w1 = weeks["2026-11-30"]
    assert (w1["count"], w1["owner_hours"], w1["capacity_pct"], w1["milestones"]) == (5, 19.0, 190, ["SOC 2 fieldwork"])
    assert (w1["attestation"], w1["vendor_review"], w1["checkpoint"], w1["bundle"]) == (1, 2, 1, 1)
    assert weeks["2027-02-08"]["count"] == 1  # the A.8.13 renewal
    assert section_rows(doc, "milestones") == [{"due": "2026-12-02", "week": "2026-11-30", "name": "SOC 2 fieldwork",
                                        "framework": "SOC2", "state": "planned"}]
    report, _ = build(app, owner.org_id, "obligation-forecast", weeks=1)
    assert report.summary["obligations"] == 2 and report.charts[0].threshold == 3


def test_whatif_shift_and_descope(app, data, owner):
    _, doc = build(app, owner.org_id, "obligation-whatif", shiftWeeks=1, shiftKind="vendor_review")
    s = doc["summary"]
    assert (s["baseline_peak_count"], s["scenario_peak_count"], s["peak_change"]) == (5, 3, -2)
    assert (s["weeks_over_critical_before"], s["weeks_over_critical_after"]) == (1, 0)
    assert (s["weeks_over_warn_before"], s["weeks_over_warn_after"], s["shifted_obligations"]) == (1, 1, 2)
    weeks = {r["week"]: r for r in section_rows(doc, "weeks")}
    assert (weeks["2026-11-30"]["scenario_count"], weeks["2026-11-30"]["delta_count"]) == (3, -2)
    assert (weeks["2026-12-07"]["baseline_count"], weeks["2026-12-07"]["scenario_count"]) == (0, 2)
    assert weeks["2026-11-30"]["scenario_level"] == "warn" and weeks["2026-11-30"]["baseline_level"] == "critical"

    _, doc = build(app, owner.org_id, "obligation-whatif", descope="iso27001")
    s = doc["summary"]
    # a2 (A.5.15), the Logship review (A.8.15) and the A.8.13 renewal need only ISO 27001; the Acme Cloud review
    # also needs SOC 2 and stays, as do the bundles (program-wide)
    assert (s["descoped_obligations"], s["hours_removed_by_descoping"]) == (3, 8.0)
    assert (s["baseline_obligations"], s["scenario_obligations"], s["scenario_hours"]) == (11, 8, 24.0)
    assert sorted(r["title"] for r in section_rows(doc, "descoped")) == [
        "Attest ISO27001:A.5.15", "Renew attestation of ISO27001:A.8.13", "Review vendor Logship"]

    _, doc = build(app, owner.org_id, "obligation-whatif", shiftWeeks=-1)
    assert doc["summary"]["scenario_obligations"] == 9  # a1 and a3 (week 0) leave; the 2027-03-06 bundle stays out


def test_heatmap_by_framework_tier_and_kind(app, data, owner):
    _, doc = build(app, owner.org_id, "obligation-heatmap")
    s = doc["summary"]
    assert (s["obligations"], s["frameworks"], s["vendor_obligations"]) == (11, 3, 3)
    assert (s["hottest_framework"], s["hottest_week"], s["hottest_count"]) == ("ISO27001", "2026-11-30", 3)
    assert (s["hottest_tier"], s["hottest_tier_week"], s["hottest_tier_count"]) == ("critical", "2026-11-30", 1)
    fw = {r["framework"]: r for r in section_rows(doc, "by_framework")}
    assert list(fw) == ["SOC2", "ISO27001", "PCIDSS", "(program-wide)"]  # catalog order, program-wide last
    assert {k: r["total"] for k, r in fw.items()} == {"SOC2": 4, "ISO27001": 5, "PCIDSS": 1, "(program-wide)": 3}
    assert (fw["SOC2"]["2026-11-23"], fw["SOC2"]["2026-11-30"], fw["SOC2"]["2027-01-25"]) == (1, 2, 1)
    tiers = {r["tier"]: r for r in section_rows(doc, "by_vendor_tier")}
    assert {k: r["total"] for k, r in tiers.items()} == {"critical": 2, "low": 1}
    kinds = {r["kind"]: r["total"] for r in section_rows(doc, "testing_schedule")}
    assert kinds == {"Attestation": 4, "Vendor review": 2, "Vendor report renewal": 1, "Evidence bundle": 3,
                     "Audit checkpoint": 1, "Evidence request": 0}
    report, _ = build(app, owner.org_id, "obligation-heatmap")
    assert [c.kind for c in report.charts] == ["heatmap"] * 3


def test_crossover_clusters(app, data, owner):
    ids = data
    _, doc = build(app, owner.org_id, "obligation-crossover")
    s = doc["summary"]
    assert (s["clusters"], s["multi_framework_clusters"], s["crosswalk_clusters"]) == (2, 2, 2)
    assert (s["clustered_obligations"], s["candidate_obligations"], s["effort_hours"], s["hours_saved"]) == \
        (7, 9, 22.0, 14.0)
    first, second = section_rows(doc, "clusters")
    # er1 (SOC2:CC7.2) anchors 2026-11-10..24 and pulls in a3 (PCIDSS:10.2, a crosswalk neighbour)
    assert first["cluster_key"] == f"evidence-request:{ids['er1']}~14d"
    assert first["member_keys"] == [f"evidence-request:{ids['er1']}", f"attestation:{ids['a3']}"]
    assert (first["shared_controls"], first["shared_frameworks"], first["link"]) == \
        (["PCIDSS:10.2", "SOC2:CC7.2"], [], "crosswalk")
    assert (first["effort_hours"], first["largest_effort"], first["hours_saved"], first["overdue_members"]) == \
        (4.0, 2.0, 2.0, 2)
    # a1 (SOC2:CC6.1) anchors 2026-11-28..12-12: a2 by the crosswalk, c1 and the Acme review by SOC 2, then the
    # Logship review by ISO 27001 (which a2 brought in)
    assert second["cluster_key"] == f"attestation:{ids['a1']}~14d" == s["largest_cluster"]
    assert second["member_keys"] == [f"attestation:{ids['a1']}", f"vendor-review:{ids['v2']}",
                                     f"attestation:{ids['a2']}", f"checkpoint:{ids['c1']}",
                                     f"vendor-review:{ids['v1']}"]
    assert (second["frameworks"], second["shared_frameworks"]) == (["ISO27001", "SOC2"], ["ISO27001", "SOC2"])
    assert (second["shared_controls"], second["link"]) == (["ISO27001:A.5.15", "SOC2:CC6.1"], "crosswalk+framework")
    assert (second["effort_hours"], second["largest_effort"], second["hours_saved"]) == (18.0, 6.0, 12.0)
    assert len(section_rows(doc, "members")) == 7

    # a narrower window splits the second cluster: a1 (11-28) + window 3 days reaches 12-01 12:00 only
    _, doc = build(app, owner.org_id, "obligation-crossover", windowDays=3)
    keys = [r["member_keys"] for r in section_rows(doc, "clusters")]
    assert [f"attestation:{ids['a1']}", f"vendor-review:{ids['v2']}", f"attestation:{ids['a2']}"] in keys
    # the key does not depend on the horizon: a one-week horizon lists the clusters anchored in it, same keys
    _, short = build(app, owner.org_id, "obligation-crossover", weeks=1)
    assert [r["cluster_key"] for r in section_rows(short, "clusters")] == [first["cluster_key"], second["cluster_key"]]


def test_consolidation_tracks_step_status(app, data, owner, member):
    from zentro.audit.service import Actor
    from zentro.compliance import checkpoints as cp

    key = f"attestation:{data['a1']}~14d"
    with app.app_context():
        actor = Actor("user", str(member.user_id), member.email)
        cp.set_play_step(owner.org_id, cluster_key=key, step=1, status="done", user_id=member.user_id, actor=actor,
                         now=NOW)
        cp.set_play_step(owner.org_id, cluster_key=key, step=2, status="skipped", user_id=member.user_id,
                         actor=actor, now=NOW)
        play = cp.set_play_step(owner.org_id, cluster_key=key, step=3, status="in_progress", user_id=member.user_id,
                                actor=actor, now=NOW)
        assert (play["state"], play["steps_complete"], play["progress_pct"], play["next_step"]) == \
            ("in_progress", 2, 33, 3)
        db.session.add(ConsolidationPlayStep(org_id=owner.org_id, cluster_key="attestation:999999~14d", step=1,
                                             status="done"))
        db.session.commit()
        db.session.remove()
    _, doc = build(app, owner.org_id, "obligation-consolidation")
    s = doc["summary"]
    assert (s["plays"], s["plays_complete"], s["plays_in_progress"], s["plays_not_started"]) == (2, 0, 1, 1)
    assert (s["steps_complete"], s["steps_total"], s["progress_pct"]) == (2, 12, 17)
    assert (s["hours_saved"], s["hours_saved_realised"], s["orphaned_tracked_plays"]) == (14.0, 0.0, 1)
    plays = {r["cluster_key"]: r for r in section_rows(doc, "plays")}
    assert (plays[key]["progress_pct"], plays[key]["state"], plays[key]["next_step"]) == (33, "in_progress", 3)
    steps = [r for r in section_rows(doc, "steps") if r["cluster_key"] == key]
    assert [r["status"] for r in steps] == ["done", "skipped", "in_progress", "todo", "todo", "todo"]
    assert steps[0]["updated_by"] == member.email and steps[3]["updated_by"] == ""
    assert len(section_rows(doc, "steps")) == 12

    with app.app_context():
        for n in range(3, 7):
            cp.set_play_step(owner.org_id, cluster_key=key, step=n, status="done", user_id=member.user_id,
                             actor=Actor("user", str(member.user_id), member.email), now=NOW)
        db.session.remove()
    _, doc = build(app, owner.org_id, "obligation-consolidation")
    assert (doc["summary"]["plays_complete"], doc["summary"]["hours_saved_realised"]) == (1, 12.0)
    # another window forms other clusters: the tracked 14-day play is not counted as orphaned there
    _, doc = build(app, owner.org_id, "obligation-consolidation", windowDays=3)
    assert doc["summary"]["orphaned_tracked_plays"] == 0


def test_rollup_by_kind_framework_owner_and_completion(app, data, owner, member):
    _, doc = build(app, owner.org_id, "obligation-rollup")
    s = doc["summary"]
    # 9 open register obligations + 14 scheduled bundles (2026-12-06 every 30 days up to 400 days ahead)
    assert (s["open"], s["overdue"], s["due_next_4_weeks"], s["hours_next_4_weeks"]) == (23, 2, 6, 21.0)
    assert (s["completed_in_window"], s["completed_on_time"], s["on_time_pct"], s["owners"]) == (4, 2, 67, 3)
    kinds = {r["label"]: r for r in section_rows(doc, "by_kind")}
    assert (kinds["Attestation"]["open"], kinds["Attestation"]["overdue"], kinds["Evidence bundle"]["open"]) == \
        (4, 1, 14)
    fw = {r["framework"]: r["open"] for r in section_rows(doc, "by_framework")}
    assert fw == {"(program-wide)": 14, "ISO27001": 5, "SOC2": 5, "PCIDSS": 1}
    owners = section_rows(doc, "by_owner")
    assert [(r["owner"], r["open"]) for r in owners] == [("(unassigned)", 17), (member.email, 4),
                                                          (owner.email, 2)]
    assert [r["key"] for r in section_rows(doc, "overdue")] == [f"evidence-request:{data['er1']}", f"attestation:{data['a3']}"]
    assert section_rows(doc, "overdue")[0]["days_overdue"] == 16
    completion = {r["label"]: r for r in section_rows(doc, "completion")}
    assert (completion["Attestation"]["completed"], completion["Attestation"]["on_time"]) == (1, 1)
    assert (completion["Evidence request"]["completed"], completion["Evidence request"]["late"]) == (1, 1)
    assert (completion["Evidence bundle"]["completed"], completion["Evidence bundle"]["on_time"]) == (1, None)
    _, doc = build(app, owner.org_id, "obligation-rollup", window="30d")
    assert doc["summary"]["completed_in_window"] == 3  # er2 (fulfilled 10-22) falls out


def test_ics_events(app, data, owner):
    report, doc = build(app, owner.org_id, "obligation-ics")
    s = doc["summary"]
    assert (s["events"], s["overdue"]) == (15, 2)  # 26 weeks: up to 2027-05-24, six bundles
    assert s["by_kind"] == {"attestation": 4, "vendor_review": 2, "vendor_report": 1, "bundle": 6, "checkpoint": 1,
                            "evidence_request": 1}
    ev = {r["key"]: r for r in section_rows(doc, "events")}
    a1 = ev[f"attestation:{data['a1']}"]
    assert a1["uid"] == f"attestation:{data['a1']}@acme.zentro"
    assert a1["due"] == "2026-11-28" and a1["sequence"] == (dt.date(2026, 11, 28) - dt.date(2000, 1, 1)).days
    assert a1["summary"] == "Attestation: Attest SOC2:CC6.1"
    assert ev[f"attestation:{data['a3']}"]["summary"].startswith("[Overdue] ")


# --- endpoints -----------------------------------------------------------------------------------------------

@pytest.fixture
def live(app, owner, member):
    """The same dataset shifted to the real clock (endpoints build at utcnow())."""
    shift = utcnow() - NOW
    with app.app_context():
        ids = seed(owner.org_id, owner.user_id, member.user_id)
        from zentro.compliance.models import (Attestation, AuditCheckpoint, EvidenceBundle, EvidenceRequest,
                                              Vendor)
        for model, cols in ((Attestation, ("due_at", "attested_at", "valid_until")),
                            (Vendor, ("next_review_at", "report_expires_at")),
                            (AuditCheckpoint, ("due_at", "done_at")), (EvidenceBundle, ("created_at",)),
                            (EvidenceRequest, ("due_at", "fulfilled_at", "requested_at"))):
            for row in db.session.scalars(db.select(model).where(model.org_id == owner.org_id)):
                for col in cols:
                    if getattr(row, col) is not None:
                        setattr(row, col, getattr(row, col) + shift)
        db.session.commit()
        db.session.remove()
    return ids


SLUGS_FORMATS = [("obligation-heatmap", "json"), ("obligation-heatmap", "csv"),
                 ("obligation-crossover", "json"), ("obligation-crossover", "csv"),
                 ("obligation-consolidation", "json"), ("obligation-consolidation", "csv"),
                 ("obligation-forecast", "json"), ("obligation-forecast", "csv"),
                 ("obligation-whatif", "json"), ("obligation-whatif", "csv"),
                 ("obligation-rollup", "json"), ("obligation-rollup", "csv"), ("obligation-rollup", "html")]


@pytest.mark.parametrize("slug,fmt", SLUGS_FORMATS)
def test_each_format_parses(app, api, live, slug, fmt):
    resp = get_report(api.client, slug, headers=api.headers, format=fmt)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:400]
    text = resp.get_data(as_text=True)
    if fmt == "json":
        doc = json.loads(text)
        assert doc["report"] == slug and doc["summary"]
        if slug == "obligation-crossover":
            assert doc["summary"]["clusters"] == 2 and doc["summary"]["hours_saved"] == 14.0
        if slug == "obligation-forecast":
            assert doc["summary"]["obligations"] >= 10
    elif fmt == "csv":
        assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
        blocks = csv_blocks(text)
        assert "Summary" in blocks
        metrics = {r[0]: r[1] for r in blocks["Summary"][1:]}
        if slug == "obligation-rollup":
            assert (metrics["open"], metrics["overdue"]) == ("23", "2")
            assert blocks["Overdue obligations"][0][:3] == ["Due", "Kind", "Title"]
            assert len(blocks["Overdue obligations"]) == 3
        if slug == "obligation-consolidation":
            assert len(blocks["Play steps"]) == 1 + 12
    else:
        assert resp.mimetype == "text/html"
        assert "Obligation executive rollup" in text and "<table" in text


def test_empty_org_reports(app, api):
    for slug in ("obligation-heatmap", "obligation-crossover", "obligation-consolidation", "obligation-forecast",
                 "obligation-whatif", "obligation-rollup"):
        resp = get_report(api.client, slug, headers=api.headers)
        assert resp.status_code == 200 and json.loads(resp.get_data(as_text=True))["report"] == slug, slug
    resp = get_report(api.client, "obligation-ics", headers=api.headers)
    cal = icalendar.Calendar.from_ical(resp.data)
    assert cal.get("VERSION") == "2.0"
    # an empty org still has its scheduled bundles (the first due now: it never made one, then every 30 days)
    kinds = [str(e.get("CATEGORIES").cats[0]) for e in cal.walk("VEVENT")]
    assert set(kinds) == {"bundle"} and len(kinds) == 6


@pytest.mark.parametrize("slug,params", [
    ("obligation-heatmap", {"weeks": "0"}), ("obligation-heatmap", {"weeks": "53"}),
    ("obligation-heatmap", {"format": "pdf"}), ("obligation-forecast", {"bogus": "1"}),
    ("obligation-crossover", {"windowDays": "0"}), ("obligation-crossover", {"windowDays": "61"}),
    ("obligation-consolidation", {"windowDays": "many"}), ("obligation-whatif", {"shiftWeeks": "13"}),
    ("obligation-whatif", {"shiftKind": "meeting"}), ("obligation-whatif", {"descope": "sox"}),
    ("obligation-rollup", {"window": "14d"}), ("obligation-rollup", {"format": "markdown"}),
    ("obligation-ics", {"format": "json"}), ("obligation-ics", {"weeks": "100"}),
])
def test_bad_parameters(app, api, slug, params):
    error_of(get_report(api.client, slug, headers=api.headers, **params), 400, "VALIDATION_ERROR")


def test_viewer_reads_and_signed_out_is_401(app, viewer_api):
    assert get_report(viewer_api.client, "obligation-forecast", headers=viewer_api.headers).status_code == 200
    error_of(get_report(viewer_api.client, "obligation-forecast"), 401, "UNAUTHORIZED")


# --- the ICS feed --------------------------------------------------------------------------------------------

def _events(resp) -> dict:
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.headers["Content-Type"] == "text/calendar; charset=utf-8"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and disposition.endswith('.ics"')
    cal = icalendar.Calendar.from_ical(resp.data)
    assert cal.get("VERSION") == "2.0" and cal.get("PRODID") == "-//Zentro//Compliance obligations//EN"
    assert "acme" in str(cal.get("X-WR-CALNAME")).lower()
    return {str(e.get("UID")): e for e in cal.walk("VEVENT")}


def test_ics_is_a_valid_calendar_with_stable_uids(app, api, live, owner, member):
    ids = live
    first = _events(get_report(api.client, "obligation-ics", headers=api.headers))
    assert len(first) == 15
    uid = f"attestation:{ids['a1']}@acme.zentro"
    ev = first[uid]
    due = (NOW + (utcnow() - NOW)).date() + dt.timedelta(days=2)  # a1 is due two days after "now"
    assert ev.decoded("DTSTART") == due and ev.decoded("DTEND") == due + dt.timedelta(days=1)
    assert str(ev.get("SUMMARY")) == "Attestation: Attest SOC2:CC6.1"
    assert [str(c) for c in ev.get("CATEGORIES").cats] == ["attestation"]
    description = str(ev.get("DESCRIPTION"))
    assert "SOC 2" in description and "SOC2:CC6.1" in description and member.email in description
    assert "Effort: 2 h" in description and f"/compliance/attestations/{ids['a1']}" in description
    alarm = ev.subcomponents[0]
    assert alarm.name == "VALARM" and alarm.decoded("TRIGGER") == -dt.timedelta(days=1)
    assert str(alarm.get("ACTION")) == "DISPLAY"
    assert ev.get("DTSTAMP") is not None
    seq = int(ev.get("SEQUENCE"))

    # a second fetch: same UIDs, same sequences
    second = _events(get_report(api.client, "obligation-ics", headers=api.headers))
    assert set(second) == set(first)
    assert {u: int(e.get("SEQUENCE")) for u, e in second.items()} == {u: int(e.get("SEQUENCE"))
                                                                      for u, e in first.items()}
    # another obligation appears: every existing UID is unchanged, one more event
    with app.app_context():
        new = attestation(owner.org_id, "SOC2:CC8.1", due_at=utcnow() + dt.timedelta(days=9)).id
        db.session.commit()
    third = _events(get_report(api.client, "obligation-ics", headers=api.headers))
    assert set(third) == set(first) | {f"attestation:{new}@acme.zentro"}
    # the attestation's due date moves: same UID, new date, higher sequence
    with app.app_context():
        from zentro.compliance.models import Attestation

        row = db.session.get(Attestation, ids["a1"])
        row.due_at = row.due_at + dt.timedelta(days=5)
        db.session.commit()
    fourth = _events(get_report(api.client, "obligation-ics", headers=api.headers))
    assert set(fourth) == set(third)
    assert fourth[uid].decoded("DTSTART") == due + dt.timedelta(days=5)
    assert int(fourth[uid].get("SEQUENCE")) == seq + 5


def test_ics_horizon_and_overdue(app, api, live):
    short = _events(get_report(api.client, "obligation-ics", headers=api.headers, weeks=1))
    # week 0 (a1, a3) plus the overdue evidence request from before it
    assert sorted(u.split("@")[0].split(":")[0] for u in short) == ["attestation", "attestation", "evidence-request"]
    overdue = [e for e in short.values() if str(e.get("SUMMARY")).startswith("[Overdue] ")]
    assert len(overdue) == 2


# --- the consolidation write path ----------------------------------------------------------------------------

STEPS = "/api/governance/compliance/obligation-consolidation/steps"


def test_play_step_updates_are_tracked_and_audited(app, live, member_api, viewer_api, other_api, rows):
    key = f"attestation:{live['a1']}~14d"
    resp = member_api.post(STEPS, json={"cluster_key": key, "step": 1, "status": "done"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert (body["state"], body["steps_complete"], body["progress_pct"], body["next_step"]) == \
        ("in_progress", 1, 17, 2)
    assert [s["status"] for s in body["steps"]] == ["done"] + ["todo"] * 5 and len(body["members"]) == 5
    assert body["steps"][0]["updated_by"]["id"] and body["steps"][0]["name"] == "Confirm shared scope"
    assert rows("consolidation_play_steps", cluster_key=key, step=1, status="done") == 1
    assert rows("audit_events", action="consolidation.step_updated") == 1
    # the same status again changes nothing and records nothing
    assert member_api.post(STEPS, json={"cluster_key": key, "step": 1, "status": "done"}).status_code == 200
    assert rows("audit_events", action="consolidation.step_updated") == 1
    with app.app_context():
        tags = db.session.execute(db.text("SELECT tag FROM audit_tags t JOIN audit_events e ON e.id = t.event_id "
                                          "WHERE e.action = 'consolidation.step_updated' ORDER BY tag")).scalars()
        assert list(tags) == ["ISO27001:A.5.36", "SOC2:CC4.1"]
    report = get_report(member_api.client, "obligation-consolidation", headers=member_api.headers).get_json()
    play = next(p for p in report["sections"]["plays"]["rows"] if p["cluster_key"] == key)
    assert (play["steps_complete"], play["state"]) == (1, "in_progress")

    error_of(viewer_api.post(STEPS, json={"cluster_key": key, "step": 2, "status": "done"}), 403, "FORBIDDEN")
    error_of(other_api.post(STEPS, json={"cluster_key": key, "step": 2, "status": "done"}), 404, "NOT_FOUND")
    error_of(member_api.post(STEPS, json={"cluster_key": "attestation:999999~14d", "step": 2, "status": "done"}),
             404, "NOT_FOUND")
    error_of(member_api.post(STEPS, json={"cluster_key": "nonsense", "step": 2, "status": "done"}), 404, "NOT_FOUND")
    for bad in ({"cluster_key": key, "step": 7, "status": "done"}, {"cluster_key": key, "step": 1, "status": "ok"},
                {"cluster_key": key, "step": "1", "status": "done"}, {"cluster_key": key, "step": 1},
                {"cluster_key": key, "step": 1, "status": "done", "extra": 1}):
        error_of(member_api.post(STEPS, json=bad), 400, "VALIDATION_ERROR")
    assert rows("consolidation_play_steps") == 1


def test_ics_folds_long_lines_and_escapes_text():
    from zentro.compliance.reports.obligation_ics import _text, fold

    line = "DESCRIPTION:" + _text("Frameworks: SOC 2; ISO, éé\nnext") + "x" * 120
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "").rstrip("\r\n") == line
    assert "\\;" in line and "\\," in line and "\\n" in line
    ascii_line = "DESCRIPTION:" + "y" * 200
    assert all(len(p) <= 75 for p in fold(ascii_line).split("\r\n"))
    assert fold(ascii_line).replace("\r\n ", "").rstrip("\r\n") == ascii_line
