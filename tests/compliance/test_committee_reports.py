"""Committee & staffing reports on a hand-built dataset at a fixed NOW (Monday 2025-06-30 12:00 UTC): the capacity
budget, load balancing (peak weeks, slices, the greedy suggestions), the staffing action tracker, the density
trend history with recorded alerts, and the committee meeting pack ZIP; each format parsed; bad parameters."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile

import pytest

from zentro.compliance import report_registry as registry
from zentro.compliance.models import DensityAlert
from zentro.compliance.obligations import week_start
from zentro.compliance.reporting import to_dict
from zentro.extensions import db
from zentro.platform.types import utcnow

from tests.compliance.analytics_helpers import (NOW, checkpoint, committee, csv_blocks, evidence_request,
                                                get_report, staffing_action)
from tests.compliance.engine_helpers import attestation, vendor

D = dt.date
W0, W1, W2 = D(2025, 6, 30), D(2025, 7, 7), D(2025, 7, 14)


def at(day: D, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc)


@pytest.fixture
def people(app, make_member):
    a = make_member("acme", "owner", email="a@acme.example", plan="enterprise")
    b = make_member("acme", "member", email="b@acme.example", plan="enterprise")
    c = make_member("acme", "member", email="c@acme.example", plan="enterprise")
    return a, b, c


def seed(org: int, people, now: dt.datetime) -> dict:
    """Capacity 10 h/week; effort attestation 2, vendor review 4, checkpoint 6, evidence request 3; no bundles.
    Dates are relative to the Monday of ``now``'s week (W0; at NOW: 2025-06-30):

    - current week W0: c's attestation (2 h, Wednesday)
    - W1: a's checkpoint (6 h) and two attestations (2 + 2 h), b's attestation (2 h), an unassigned evidence
      request (3 h): 15 h, 5 over capacity
    - W2: b's vendor review (4 h)
    - overdue: a's attestation due W0 − 10 days (2 h); history: an attested attestation due W0 − 12 days, a
      checkpoint done W0 − 13 days, an evidence request fulfilled (due W0 − 5 days)
    """
    a, b, c = people
    w0 = week_start(now)

    def day(offset: int) -> dt.datetime:
        return at(w0 + dt.timedelta(days=offset))

    committee(org, capacity_hours_per_week=10.0, density_warn=2, density_critical=4, completion_sla_days=7,
              bundle_cadence_days=0, effort_hours={"attestation": 2, "vendor_review": 4, "checkpoint": 6,
                                                   "evidence_request": 3})
    attestation(org, "SOC2:CC6.2", due_at=day(2), owner_id=c.user_id)
    cp = checkpoint(org, "Fieldwork kick-off", "SOC2", due_at=day(8), owner_id=a.user_id)
    a1 = attestation(org, "SOC2:CC6.3", due_at=day(9), owner_id=a.user_id)
    a2 = attestation(org, "SOC2:CC7.2", due_at=day(10), owner_id=a.user_id)
    b1 = attestation(org, "SOC2:CC8.1", due_at=day(9), owner_id=b.user_id)
    er = evidence_request(org, "Access review export", ["SOC2:CC6.1"], due_at=day(11))
    vendor(org, "Cloudy", ["SOC2:CC6.1"], expires=None, next_review_at=day(16))
    vendor(org, "Mailer", ["SOC2:CC6.1"], expires=None, next_review_at=None)
    attestation(org, "SOC2:CC6.6", due_at=day(-10), owner_id=a.user_id)
    attestation(org, "SOC2:CC6.7", due_at=day(-12), status="attested", attested_at=day(-13),
                valid_until=now + dt.timedelta(days=200), owner_id=b.user_id)
    checkpoint(org, "Evidence freeze", "ISO27001", due_at=day(-13), status="done", done_at=day(-13),
               owner_id=a.user_id)
    evidence_request(org, "Policy set", ["SOC2:CC5.3"], due_at=day(-5), status="fulfilled", fulfilled_at=day(-6))
    ids = {"checkpoint": cp.id, "a1": a1.id, "a2": a2.id, "b1": b1.id, "er": er.id}
    db.session.commit()
    return ids


@pytest.fixture
def dataset(app, people):
    """The dataset at the fixed NOW: (org id, ids)."""
    with app.app_context():
        return people[0].org_id, seed(people[0].org_id, people, NOW)


@pytest.fixture
def live(app, people):
    """The same dataset relative to the real now, for the endpoint tests."""
    with app.app_context():
        return people[0].org_id, seed(people[0].org_id, people, utcnow())


def build(slug: str, org: int, **params):
    return registry.build(slug, org, NOW, **params)


def rows(report, key: str) -> list[dict]:
    return to_dict(report)["sections"][key]["rows"]


# --- committee-capacity-budget ------------------------------------------------------------------------------

def test_capacity_budget_pins_the_weekly_figures(app, dataset):
    org, ids = dataset
    with app.app_context():
        staffing_action(org, W1, kind="add_capacity", status="tracked", hours=3, created_at=NOW - dt.timedelta(days=2))
        staffing_action(org, W1, kind="rebalance", status="tracked", hours=5)  # moves hours, relieves nothing
        staffing_action(org, W2, kind="defer", status="proposed", hours=4)  # proposed: not counted
        db.session.commit()
        rep = build("committee-capacity-budget", org)
    s = rep.summary
    assert s["weeks"] == 13 and s["capacity_hours_per_week"] == 10.0 and s["settings"] == "stored"
    assert s["total_needed_hours"] == 21.0 and s["total_capacity_hours"] == 130.0
    assert s["utilisation_pct"] == 16.2  # 21 / 130
    assert s["peak_week"] == W1 and s["peak_hours"] == 15.0 and s["peak_utilisation_pct"] == 150.0
    assert s["shortfall_weeks"] == 1 and s["total_shortfall_hours"] == 5.0
    assert s["relief_hours"] == 3.0 and s["weeks_still_short"] == 1
    assert s["overdue_obligations"] == 1 and s["overdue_hours"] == 2.0
    weeks = {r["week"]: r for r in rows(rep, "weeks")}
    assert len(weeks) == 13
    w1 = weeks[W1.isoformat()]
    assert (w1["obligations"], w1["needed_hours"], w1["utilisation_pct"], w1["shortfall_hours"], w1["shortfall"],
            w1["relief_hours"], w1["residual_shortfall_hours"], w1["owners"], w1["unassigned_hours"],
            w1["density_level"]) == (5, 15.0, 150.0, 5.0, True, 3.0, 2.0, 2, 3.0, "critical")
    w0, w2 = weeks[W0.isoformat()], weeks[W2.isoformat()]
    assert (w0["needed_hours"], w0["headroom_hours"], w0["shortfall"], w0["density_level"]) == (2.0, 8.0, False, "ok")
    assert (w2["needed_hours"], w2["utilisation_pct"], w2["relief_hours"]) == (4.0, 40.0, 0.0)
    chart = rep.charts[0]
    assert chart.threshold == 10.0 and chart.stacked
    assert chart.series[0].values[1] == 10.0 and chart.series[1].values[1] == 5.0


def test_capacity_budget_on_defaults_and_an_empty_org(app, make_member):
    owner = make_member("empty", "owner")
    with app.app_context():
        rep = registry.build("committee-capacity-budget", owner.org_id, NOW, weeks=4)
    s = rep.summary
    # the default bundle cadence schedules a bundle now when the org never made one: 3 h in the current week
    assert s["settings"] == "defaults" and s["capacity_hours_per_week"] == 40.0 and s["weeks"] == 4
    assert s["total_needed_hours"] == 3.0 and s["shortfall_weeks"] == 0 and s["peak_week"] == W0
    assert len(rep.sections[0].rows) == 4


def test_capacity_budget_formats_over_http(app, live, make_api_key, people):
    headers = {"Authorization": f"Bearer {make_api_key(people[0])}"}
    client = app.test_client()
    doc = get_report(client, "committee-capacity-budget", headers=headers, weeks=5).get_json()
    assert doc["report"] == "committee-capacity-budget" and len(doc["sections"]["weeks"]["rows"]) == 5
    resp = get_report(client, "committee-capacity-budget", headers=headers, format="csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert blocks["Weekly capacity budget"][0][:3] == ["Week", "Obligations", "Needed (h)"]
    assert len(blocks["Weekly capacity budget"]) == 14
    assert ["capacity_hours_per_week", "10.0"] in blocks["Summary"]


@pytest.mark.parametrize("slug", ["committee-capacity-budget", "obligation-load-balancing", "staffing-actions",
                                  "obligation-density-trend-history", "committee-meeting-pack"])
def test_bad_parameters_are_400(app, make_member, make_api_key, slug):
    viewer = make_member("acme", "viewer")
    headers = {"Authorization": f"Bearer {make_api_key(viewer)}"}
    client = app.test_client()
    for params in ({"weeks": "0"}, {"weeks": "53"}, {"weeks": "many"}, {"bogus": "1"}, {"format": "pdf"}):
        resp = get_report(client, slug, headers=headers, **params)
        assert resp.status_code == 400, (slug, params, resp.get_data(as_text=True)[:300])
        body = resp.get_json()
        assert body["error_code"] == "VALIDATION_ERROR" and body["detail"]


# --- obligation-load-balancing ------------------------------------------------------------------------------

def test_load_balancing_slices_and_suggestions(app, dataset):
    org, ids = dataset
    with app.app_context():
        rep = build("obligation-load-balancing", org)
    s = rep.summary
    assert s["basis"] == "over_capacity" and s["peak_weeks"] == 1 and s["owners_in_pool"] == 3
    assert s["peak_hours"] == 15.0 and s["unassigned_hours"] == 3.0
    assert s["suggestions"] == 3 and s["hours_to_move"] == 11.0
    assert s["overload_hours_before"] == 5.0 and s["overload_hours_after"] == 1.0
    (week,) = rows(rep, "peak_weeks")
    assert (week["week"], week["hours"], week["fair_share_hours"], week["owners_with_load"], week["obligations"],
            week["max_owner_share_pct"]) == (W1.isoformat(), 15.0, 5.0, 2, 5, 66.7)
    slices = {r["owner"]: r for r in rows(rep, "slices")}
    assert (slices["a@acme.example"]["hours"], slices["a@acme.example"]["obligations"],
            slices["a@acme.example"]["share_pct"], slices["a@acme.example"]["above_fair_share"],
            slices["a@acme.example"]["hours_after"]) == (10.0, 3, 66.7, True, 4.0)
    assert (slices["b@acme.example"]["hours"], slices["b@acme.example"]["hours_after"]) == (2.0, 6.0)
    assert (slices["c@acme.example"]["hours"], slices["c@acme.example"]["hours_after"]) == (0.0, 5.0)
    assert (slices["(unassigned)"]["hours"], slices["(unassigned)"]["share_pct"]) == (3.0, 20.0)
    moves = [(m["obligation"], m["from"], m["to"], m["hours"], m["from_hours_after"], m["to_hours_after"])
             for m in rows(rep, "suggestions")]
    assert moves == [
        (f"evidence-request:{ids['er']}", "(unassigned)", "c@acme.example", 3.0, None, 3.0),
        (f"checkpoint:{ids['checkpoint']}", "a@acme.example", "b@acme.example", 6.0, 4.0, 8.0),
        (f"attestation:{ids['b1']}", "b@acme.example", "c@acme.example", 2.0, 6.0, 5.0),
    ]


def test_load_balancing_without_an_over_capacity_week_takes_the_top_three(app, dataset):
    org, _ = dataset
    with app.app_context():
        committee(org, capacity_hours_per_week=100.0)
        db.session.commit()
        rep = build("obligation-load-balancing", org)
    assert rep.summary["basis"] == "top_by_hours" and rep.summary["peak_weeks"] == 3
    assert [r["week"] for r in rows(rep, "peak_weeks")] == [W0.isoformat(), W1.isoformat(), W2.isoformat()]


def test_load_balancing_csv(app, live, make_api_key, people):
    headers = {"Authorization": f"Bearer {make_api_key(people[1])}"}
    resp = get_report(app.test_client(), "obligation-load-balancing", headers=headers, format="csv")
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert len(blocks["Rebalance suggestions"]) == 4 and blocks["Rebalance suggestions"][0][1] == "Obligation"
    assert len(blocks["Owner load slices"]) == 5


# --- staffing-actions ---------------------------------------------------------------------------------------

@pytest.fixture
def actions(app, dataset, people):
    org, ids = dataset
    a, b, _ = people
    with app.app_context():
        made = [
            staffing_action(org, W1, kind="add_capacity", status="tracked", hours=3, owner_id=a.user_id,
                            created_at=NOW - dt.timedelta(days=2)),
            staffing_action(org, W1, kind="rebalance", status="proposed", hours=6,
                            title=f"Move checkpoint:{ids['checkpoint']} from a to b",
                            created_at=NOW - dt.timedelta(days=1)),
            staffing_action(org, D(2025, 6, 2), kind="rebalance", status="tracked", hours=4, owner_id=b.user_id,
                            created_at=at(D(2025, 5, 30))),
            staffing_action(org, D(2025, 6, 9), kind="defer", status="completed", hours=2,
                            created_at=at(D(2025, 6, 5)), completed_at=at(D(2025, 6, 12))),
            staffing_action(org, D(2025, 6, 16), kind="consolidate", status="completed", hours=5,
                            created_at=at(D(2025, 6, 10)), completed_at=at(D(2025, 6, 28))),
            staffing_action(org, D(2025, 6, 23), kind="defer", status="dismissed", hours=1,
                            created_at=at(D(2025, 6, 20))),
        ]
        db.session.commit()
        return org, ids, [m.id for m in made]


def test_staffing_tracker_pins_counts_rates_and_sla(app, actions):
    org, ids, made = actions
    with app.app_context():
        rep = build("staffing-actions", org)
        tracked = build("staffing-actions", org, status="tracked")
    s = rep.summary
    assert (s["actions"], s["proposed"], s["tracked"], s["completed"], s["dismissed"], s["open"]) == (6, 1, 2, 2, 1, 3)
    assert s["past_sla"] == 1 and s["completion_rate_pct"] == 40.0
    assert s["completed_within_sla"] == 1 and s["on_time_rate_pct"] == 50.0
    assert s["open_hours"] == 13.0 and s["completed_hours"] == 7.0 and s["completion_sla_days"] == 7
    by_id = {r["id"]: r for r in rows(rep, "actions")}
    late = by_id[made[2]]
    assert (late["week"], late["owner"], late["past_sla"], late["days_past_sla"], late["age_days"],
            late["sla_due"]) == ("2025-06-02", "b@acme.example", True, 21, 31, "2025-06-09T00:00:00Z")
    assert by_id[made[0]]["past_sla"] is False and by_id[made[0]]["sla_due"] == "2025-07-14T00:00:00Z"
    assert (by_id[made[3]]["days_to_complete"], by_id[made[3]]["within_sla"]) == (7, True)
    assert (by_id[made[4]]["days_to_complete"], by_id[made[4]]["within_sla"]) == (18, False)
    assert by_id[made[5]]["past_sla"] is False  # dismissed actions are not open
    assert [r["id"] for r in rows(rep, "actions")][:2] == [made[1], made[0]]  # newest week first, then newest id
    counts = {r["status"]: (r["actions"], r["hours"]) for r in rows(rep, "status_counts")}
    assert counts == {"proposed": (1, 6.0), "tracked": (2, 7.0), "completed": (2, 7.0), "dismissed": (1, 1.0)}
    # the checkpoint move is tracked by action 2's title; W1 has an add_capacity action, so no capacity suggestion
    suggested = rows(rep, "suggested")
    assert s["suggested_untracked"] == 2
    assert [(g["kind"], g["obligation"], g["owner"], g["hours"]) for g in suggested] == [
        ("rebalance", f"attestation:{ids['b1']}", "c@acme.example", 2.0),
        ("rebalance", f"evidence-request:{ids['er']}", "c@acme.example", 3.0)]
    assert [r["id"] for r in rows(tracked, "actions")] == [made[0], made[2]] and tracked.summary["actions"] == 6


def test_staffing_tracker_suggests_capacity_for_uncovered_shortfall_weeks(app, dataset):
    org, ids = dataset
    with app.app_context():
        rep = build("staffing-actions", org)
    kinds = [(g["kind"], g["week"], g["hours"]) for g in rows(rep, "suggested")]
    assert ("add_capacity", W1.isoformat(), 5.0) in kinds and len(kinds) == 4
    assert rep.summary["actions"] == 0 and rep.summary["completion_rate_pct"] == 0.0


def test_staffing_tracker_formats(app, actions, make_api_key, people):
    headers = {"Authorization": f"Bearer {make_api_key(people[2])}"}
    client = app.test_client()
    doc = get_report(client, "staffing-actions", headers=headers).get_json()
    assert doc["summary"]["actions"] == 6 and len(doc["sections"]["actions"]["rows"]) == 6
    resp = get_report(client, "staffing-actions", headers=headers, format="csv")
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert len(blocks["Staffing actions"]) == 7 and "Past SLA" in blocks["Staffing actions"][0]
    assert len(blocks["Counts by status"]) == 5
    resp = get_report(client, "staffing-actions", headers=headers, format="html")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "<html" in html and "Staffing actions" in html and "Move checkpoint:" in html
    assert get_report(client, "staffing-actions", headers=headers, status="nope").status_code == 400


# --- obligation-density-trend-history -----------------------------------------------------------------------

def test_density_trend_history_counts_done_obligations_and_alerts(app, dataset):
    org, _ = dataset
    with app.app_context():
        db.session.add_all([
            DensityAlert(org_id=org, week_start=D(2025, 6, 16), level="warn", density=3, threshold=2,
                         channels=[{"channel": "email", "status": "sent"}, {"channel": "slack", "status": "failed"}],
                         created_at=at(D(2025, 6, 13))),
            DensityAlert(org_id=org, week_start=D(2025, 6, 16), level="critical", density=4, threshold=4,
                         channels=[{"channel": "email", "status": "sent"}], created_at=at(D(2025, 6, 15))),
            DensityAlert(org_id=org, week_start=D(2025, 5, 5), level="warn", density=2, threshold=2,
                         channels=[], created_at=at(D(2025, 5, 1))),  # outside the 4 weeks
        ])
        db.session.commit()
        rep = build("obligation-density-trend-history", org, weeks=4)
    weeks = {r["week"]: r for r in rows(rep, "weeks")}
    assert list(weeks) == ["2025-06-09", "2025-06-16", "2025-06-23", "2025-06-30"]
    w = weeks["2025-06-16"]  # overdue attestation (open), attested attestation and done checkpoint
    assert (w["density"], w["completed"], w["open"], w["hours"], w["level"]) == (3, 2, 1, 10.0, "warn")
    assert (w["alerts"], w["alert_level"], w["channels"], w["deliveries"], w["failed_deliveries"]) == \
        (2, "critical", ["email", "slack"], 3, 1)
    assert (weeks["2025-06-23"]["density"], weeks["2025-06-23"]["completed"]) == (1, 1)  # fulfilled request
    assert (weeks["2025-06-30"]["density"], weeks["2025-06-30"]["open"]) == (1, 1)
    assert weeks["2025-06-09"]["density"] == 0 and weeks["2025-06-09"]["alerts"] == 0
    s = rep.summary
    assert (s["total_due"], s["average_density"], s["peak_week"], s["peak_density"]) == (5, 1.2, D(2025, 6, 16), 3)
    assert (s["weeks_warn"], s["weeks_critical"], s["alerts"], s["alert_weeks"], s["breached_without_alert"]) == \
        (1, 0, 2, 1, 0)
    assert (s["density_warn"], s["density_critical"]) == (2, 4)
    assert rep.charts[0].threshold == 2 and rep.charts[0].kind == "line"


def test_density_trend_history_default_is_a_quarter_and_csv_parses(app, dataset, make_api_key, people):
    with app.app_context():
        rep = build("obligation-density-trend-history", dataset[0])
    assert rep.summary["weeks"] == 13 and rows(rep, "weeks")[0]["week"] == "2025-04-07"
    headers = {"Authorization": f"Bearer {make_api_key(people[0])}"}
    resp = get_report(app.test_client(), "obligation-density-trend-history", headers=headers, format="csv")
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert len(blocks["Weekly density"]) == 14 and blocks["Weekly density"][0][:2] == ["Week", "Density"]
    assert any(r and r[0].startswith("# Note:") for r in csv.reader(io.StringIO(resp.get_data(as_text=True))))


# --- committee-meeting-pack ---------------------------------------------------------------------------------

PACK_FILES = {"README.txt", "summary.html", "manifest.json", *(f"{s}.{ext}" for s in (
    "control-health-scorecard", "posture-score", "exception-register", "gap-remediations",
    "committee-capacity-budget") for ext in ("html", "csv"))}


def test_meeting_pack_zip(app, live, make_api_key, people):
    headers = {"Authorization": f"Bearer {make_api_key(people[0])}"}
    resp = get_report(app.test_client(), "committee-meeting-pack", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == "application/zip" and ".zip" in resp.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(resp.get_data())) as zf:
        assert zf.testzip() is None and set(zf.namelist()) == PACK_FILES
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["org"] == "acme" and {f["name"] for f in manifest["files"]} == PACK_FILES - {"manifest.json"}
        for f in manifest["files"]:
            data = zf.read(f["name"])
            assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]
        readme = zf.read("README.txt").decode()
        assert "acme" in readme and manifest["generated_at"] in readme and "posture-score.csv" in readme
        summary = zf.read("summary.html").decode()
        assert "<html" in summary and "Committee meeting pack" in summary
        budget = csv_blocks(zf.read("committee-capacity-budget.csv").decode())
        assert ["total_shortfall_hours", "5.0"] in budget["Summary"]
        for slug in ("control-health-scorecard", "posture-score", "exception-register", "gap-remediations"):
            assert list(csv.reader(io.StringIO(zf.read(f"{slug}.csv").decode())))
            assert "<html" in zf.read(f"{slug}.html").decode()


def test_meeting_pack_summary_figures(app, dataset):
    org, _ = dataset
    with app.app_context():
        rep = build("committee-meeting-pack", org)
    assert rep.summary == {"reports": 5, "files": 13, "capacity_peak_week": W1, "capacity_shortfall_weeks": 1,
                           "capacity_total_shortfall_hours": 5.0}
    heads = [r for r in rows(rep, "headlines") if r["slug"] == "committee-capacity-budget"]
    assert {"figure": "peak_hours", "value": 15.0} in [{k: r[k] for k in ("figure", "value")} for r in heads]


def test_meeting_pack_refuses_to_go_out_with_a_part_missing(app, dataset, monkeypatch):
    from zentro.compliance.reports import committee_meeting_pack as pack

    monkeypatch.setattr(pack, "PARTS", pack.PARTS + (("no-such-report", "Missing"),))
    with app.app_context(), pytest.raises(RuntimeError, match="no-such-report"):
        build("committee-meeting-pack", dataset[0])


def test_reports_read_only_their_own_org(app, dataset, make_member):
    """Another org's staffing actions, alerts and settings change none of these reports."""
    org, _ = dataset
    other = make_member("globex", "owner")
    slugs = ["committee-capacity-budget", "obligation-load-balancing", "staffing-actions",
             "obligation-density-trend-history"]
    with app.app_context():
        before = {s: to_dict(build(s, org)) for s in slugs}
        committee(other.org_id, capacity_hours_per_week=1.0, density_warn=1, density_critical=2)
        staffing_action(other.org_id, W1, kind="add_capacity", status="tracked", hours=50)
        db.session.add(DensityAlert(org_id=other.org_id, week_start=W0, level="critical", density=9, threshold=2,
                                    channels=[{"channel": "email", "status": "sent"}]))
        attestation(other.org_id, "SOC2:CC6.1", due_at=at(D(2025, 7, 8)))
        db.session.commit()
        after = {s: to_dict(build(s, org)) for s in slugs}
    assert before == after


def test_the_reports_answer_for_real_time_too(app, make_member, make_api_key):
    """Built at the real now on the demo seed (relative dates): every report answers and figures are consistent."""
    from zentro.compliance.demo_committee import seed_committee

    owner = make_member("demo", "owner")
    make_member("demo", "member")
    with app.app_context():
        assert seed_committee(owner.org_id) == ["Committee settings and five staffing actions seeded."]
        assert seed_committee(owner.org_id)[0].startswith("Committee settings already seeded")
        rep = registry.build("staffing-actions", owner.org_id, utcnow())
    s = rep.summary
    assert (s["actions"], s["proposed"], s["tracked"], s["completed"], s["dismissed"]) == (5, 1, 2, 1, 1)
    assert s["past_sla"] == 1  # the rebalance four weeks ago, still tracked
    headers = {"Authorization": f"Bearer {make_api_key(owner)}"}
    budget = get_report(app.test_client(), "committee-capacity-budget", headers=headers).get_json()
    assert budget["summary"]["capacity_hours_per_week"] == 24.0 and budget["summary"]["settings"] == "stored"
