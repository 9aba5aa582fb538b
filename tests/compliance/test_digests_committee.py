"""The quarterly obligation committee digest (``committee-digest``) on a hand-built dataset at a fixed NOW (the
quarterly cron moment, Tuesday 2025-07-01 08:00 UTC): the forecast, the crossover clusters and the staffing SLA
rollup in one preview, each part exactly the existing report's; JSON, CSV and HTML; bad parameters; other orgs;
and its delivery to the committee once per quarter."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from zentro.compliance import digests
from zentro.compliance import report_registry as registry
from zentro.compliance.reporting import to_dict
from zentro.extensions import db
from zentro.notify.models import Delivery, DigestRun

from tests.compliance.analytics_helpers import (checkpoint, committee, csv_blocks, evidence_request, get_report,
                                                staffing_action)
from tests.compliance.engine_helpers import attestation

UTC = dt.timezone.utc
D = dt.date
NOW = dt.datetime(2025, 7, 1, 8, 0, tzinfo=UTC)  # the "0 8 1 1,4,7,10 *" run of 2025-Q3; week 0 starts 06-30
SLUG = "committee-digest"


def at(day: D, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def rows(report, key: str) -> list[dict]:
    return to_dict(report)["sections"][key]["rows"]


@pytest.fixture
def people(app, make_member):
    return SimpleNamespace(
        a=make_member("acme", "owner", email="a@acme.example", plan="enterprise"),
        adm=make_member("acme", "admin", email="adm@acme.example", plan="enterprise"),
        b=make_member("acme", "member", email="b@acme.example", plan="enterprise"),
        v=make_member("acme", "viewer", email="v@acme.example", plan="enterprise"),
        other=make_member("globex", "owner", email="boss@globex.example", plan="enterprise"))


def seed(org: int, p) -> dict:
    """Committee: capacity 10 h, warn 2, critical 3, completion SLA 10 days, no bundles, escalation list
    board@acme.example; effort attestation 2, checkpoint 6, evidence request 3.

    Open obligations: a1 SOC2:CC6.1 (a, 07-02, week 0); a2 ISO27001:A.5.15 (b, 07-08; a full crosswalk edge to
    CC6.1), checkpoint c1 'SOC 2 fieldwork' (a, 07-09), a3 SOC2:CC7.2 (a, 07-10), evidence request er SOC2:CC6.2
    (unassigned, 07-11): week 1, 4 obligations, 13 h (critical, over capacity); a4 PCIDSS:12.10 (b, 08-20, week
    7); a5 PCIDSS:12.10 (b, 06-10: overdue). One crossover cluster anchored at a1 over 14 days: a1, a2, c1, a3,
    er (15 h, largest 6 h: 9 h saved).

    Staffing actions (SLA due = week + 10 days): S1 completed on time 05-15 (a), S2 completed late 06-25 (b), S3
    completed 03-01 (a, before the 91 days), S4 tracked for 06-02 (b, past SLA), S5 proposed for 06-30 (a).
    """
    committee(org, capacity_hours_per_week=10.0, density_warn=2, density_critical=3, completion_sla_days=10,
              bundle_cadence_days=0, escalation_emails=["board@acme.example"],
              effort_hours={"attestation": 2, "checkpoint": 6, "evidence_request": 3})
    ids = {
        "a1": attestation(org, "SOC2:CC6.1", due_at=at(D(2025, 7, 2)), owner_id=p.a.user_id).id,
        "a2": attestation(org, "ISO27001:A.5.15", due_at=at(D(2025, 7, 8)), owner_id=p.b.user_id).id,
        "c1": checkpoint(org, "SOC 2 fieldwork", "SOC2", due_at=at(D(2025, 7, 9)), owner_id=p.a.user_id).id,
        "a3": attestation(org, "SOC2:CC7.2", due_at=at(D(2025, 7, 10)), owner_id=p.a.user_id).id,
        "er": evidence_request(org, "Access review export", ["SOC2:CC6.2"], due_at=at(D(2025, 7, 11))).id,
        "a4": attestation(org, "PCIDSS:12.10", due_at=at(D(2025, 8, 20)), owner_id=p.b.user_id).id,
        "a5": attestation(org, "PCIDSS:12.10", due_at=at(D(2025, 6, 10)), owner_id=p.b.user_id).id,
    }
    for name, week, status, owner, created, completed in (
            ("S1", D(2025, 5, 12), "completed", p.a, D(2025, 5, 9), D(2025, 5, 15)),
            ("S2", D(2025, 6, 9), "completed", p.b, D(2025, 6, 6), D(2025, 6, 25)),
            ("S3", D(2025, 2, 24), "completed", p.a, D(2025, 2, 20), D(2025, 3, 1)),
            ("S4", D(2025, 6, 2), "tracked", p.b, D(2025, 5, 30), None),
            ("S5", D(2025, 6, 30), "proposed", p.a, D(2025, 6, 28), None)):
        ids[name] = staffing_action(org, week, status=status, owner_id=owner.user_id, title=f"{name} relief",
                                    created_at=at(created), completed_at=at(completed) if completed else None).id
    db.session.commit()
    return ids


@pytest.fixture
def dataset(app, people):
    with app.app_context():
        ids = seed(people.a.org_id, people)
        db.session.remove()
    return people.a.org_id, ids


def test_committee_digest_pins_the_quarter(app, dataset):
    org, ids = dataset
    with app.app_context():
        rep = registry.build(SLUG, org, NOW)
    cluster = f"attestation:{ids['a1']}~14d"
    assert to_dict(rep)["summary"] == {
        "quarter": "2025-Q3", "forecast_obligations": 6, "forecast_owner_hours": 17.0, "overdue_open": 1,
        "peak_week": "2025-07-07", "peak_count": 4, "peak_level": "critical", "weeks_warn": 0, "weeks_critical": 1,
        "weeks_over_capacity": 1, "crossover_clusters": 1, "crossover_hours_saved": 9.0, "largest_cluster": cluster,
        "staffing_period_days": 91, "staffing_completed": 2, "staffing_on_time_rate_pct": 50.0,
        "staffing_completion_rate_pct": 60.0, "staffing_open": 2, "staffing_past_sla": 1}
    forecast = rows(rep, "forecast")
    assert len(forecast) == 13 and forecast[0]["week"] == "2025-06-30"
    w1 = forecast[1]
    assert (w1["week"], w1["count"], w1["owner_hours"], w1["level"], w1["capacity_pct"], w1["milestones"]) == \
        ("2025-07-07", 4, 13.0, "critical", 130, ["SOC 2 fieldwork"])
    assert [(r["week"], r["count"]) for r in forecast if r["count"]] == \
        [("2025-06-30", 1), ("2025-07-07", 4), ("2025-08-18", 1)]
    assert rows(rep, "milestones") == [{"due": "2025-07-09", "week": "2025-07-07", "name": "SOC 2 fieldwork",
                                        "framework": "SOC2", "state": "planned"}]
    (c,) = rows(rep, "clusters")
    assert c["cluster_key"] == cluster and c["members"] == 5
    assert set(c["member_keys"]) == {f"attestation:{ids['a1']}", f"attestation:{ids['a2']}",
                                     f"checkpoint:{ids['c1']}", f"attestation:{ids['a3']}",
                                     f"evidence-request:{ids['er']}"}
    assert (c["effort_hours"], c["largest_effort"], c["hours_saved"], c["frameworks"]) == \
        (15.0, 6.0, 9.0, ["ISO27001", "SOC2"])
    assert rows(rep, "staffing") == [
        {"owner": "a@acme.example", "open": 1, "past_sla": 0, "open_hours": 4.0, "completed_in_period": 1,
         "completed_within_sla": 1},
        {"owner": "b@acme.example", "open": 1, "past_sla": 1, "open_hours": 4.0, "completed_in_period": 1,
         "completed_within_sla": 0}]
    heads = {(r["report"], r["figure"]): r["value"] for r in rows(rep, "headlines")}
    assert heads[("obligation-forecast", "peak_hours")] == 13.0
    assert heads[("obligation-crossover", "candidate_obligations")] == 7  # a1..a4, c1, er and the overdue a5
    assert heads[("staffing-completion-rollup", "actions")] == 5
    assert [ch.key for ch in rep.charts] == ["density", "hours"]


def test_each_part_is_the_existing_report(app, dataset):
    """The digest reuses the forecast, the crossover and the rollup as they are (same rows, same figures)."""
    org, _ = dataset
    with app.app_context():
        rep = registry.build(SLUG, org, NOW, weeks=6, windowDays=3)
        forecast = registry.build("obligation-forecast", org, NOW, weeks=6)
        crossover = registry.build("obligation-crossover", org, NOW, weeks=6, windowDays=3)
        rollup = registry.build("staffing-completion-rollup", org, NOW, periodDays=42)
    assert rows(rep, "forecast") == rows(forecast, "weeks") and len(rows(rep, "forecast")) == 6
    assert rows(rep, "milestones") == rows(forecast, "milestones")
    assert rows(rep, "clusters") == rows(crossover, "clusters")
    assert rows(rep, "staffing") == rows(rollup, "owners")
    s = rep.summary
    assert (s["crossover_clusters"], s["crossover_hours_saved"]) == (crossover.summary["clusters"],
                                                                      crossover.summary["hours_saved"])
    assert s["staffing_period_days"] == 42 and s["staffing_completed"] == rollup.summary["completed_in_period"] == 1
    assert to_dict(rep)["params"]["windowDays"] == 3


def test_committee_digest_over_http(app, dataset, people, make_api_key):
    headers = {"Authorization": f"Bearer {make_api_key(people.v)}"}
    client = app.test_client()
    doc = get_report(client, SLUG, headers=headers).get_json()
    assert doc["report"] == SLUG and list(doc["sections"]) == ["forecast", "milestones", "clusters", "staffing",
                                                               "headlines"]
    assert len(doc["sections"]["forecast"]["rows"]) == 13 and doc["summary"]["staffing_open"] == 2
    resp = get_report(client, SLUG, headers=headers, format="csv", weeks=4)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert len(blocks["Obligation forecast (weekly density)"]) == 5
    assert ["staffing_period_days", "28"] in blocks["Summary"]
    assert blocks["Staffing SLA rollup by owner"][0][:2] == ["Owner", "Open"]
    resp = get_report(client, SLUG, headers=headers, format="html")
    assert resp.status_code == 200 and "Quarterly obligation committee digest" in resp.get_data(as_text=True)


@pytest.mark.parametrize("bad", [{"weeks": "0"}, {"weeks": "53"}, {"weeks": "a quarter"}, {"windowDays": "0"},
                                 {"windowDays": "61"}, {"periodDays": "91"}, {"format": "pdf"}, {"format": "ics"}])
def test_bad_parameters_are_400(app, dataset, people, make_api_key, bad):
    headers = {"Authorization": f"Bearer {make_api_key(people.a)}"}
    resp = get_report(app.test_client(), SLUG, headers=headers, **bad)
    assert resp.status_code == 400, (bad, resp.get_data(as_text=True)[:300])
    assert resp.get_json()["error_code"] == "VALIDATION_ERROR"


def test_committee_digest_reads_only_its_own_org(app, dataset, people):
    org, _ = dataset
    with app.app_context():
        before = to_dict(registry.build(SLUG, org, NOW))
        other = people.other.org_id
        committee(other, capacity_hours_per_week=1.0, density_warn=1, density_critical=2, completion_sla_days=1)
        attestation(other, "SOC2:CC6.1", due_at=at(D(2025, 7, 3)), owner_id=people.other.user_id)
        attestation(other, "ISO27001:A.5.15", due_at=at(D(2025, 7, 4)), owner_id=people.other.user_id)
        staffing_action(other, D(2025, 6, 2), status="completed", owner_id=people.other.user_id,
                        created_at=at(D(2025, 6, 1)), completed_at=at(D(2025, 6, 30)))
        db.session.commit()
        after = to_dict(registry.build(SLUG, org, NOW))
    assert before == after


def test_delivered_to_the_committee_once_a_quarter(app, dataset):
    org, _ = dataset
    with app.app_context():
        d = digests.get(SLUG)
        assert (d.period, d.channels, d.schedule, d.is_empty) == ("quarter", ("email", "webhook"), "0 8 1 1,4,7,10 *",
                                                                  None)
        first = digests.deliver(SLUG, org, now=NOW, trigger="schedule")
        assert first.period == "2025-Q3" and first.outcome == "not_sent"  # no SMTP, no webhook endpoint in tests
        email = next(x for x in first.deliveries if x.channel == "email")
        assert email.recipients == ["a@acme.example", "adm@acme.example", "board@acme.example"]
        assert "Quarterly obligation committee digest" in email.subject
        assert [x.channel for x in first.deliveries] == ["email", "webhook"]
        assert first.run.summary["forecast_obligations"] == 6
        count = db.session.scalar(select(func.count()).select_from(Delivery))
        again = digests.deliver(SLUG, org, now=dt.datetime(2025, 9, 30, 23, 0, tzinfo=UTC), trigger="schedule")
        assert again.outcome == "already_delivered" and again.run.id == first.run.id
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == count
        nextq = digests.deliver(SLUG, org, now=dt.datetime(2025, 10, 1, 8, 0, tzinfo=UTC), trigger="schedule")
        assert nextq.period == "2025-Q4" and nextq.outcome == "not_sent"
        assert db.session.scalar(select(func.count()).select_from(DigestRun)) == 2
