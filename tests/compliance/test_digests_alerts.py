"""The alerting digests on hand-built datasets at a fixed NOW (Monday 2025-06-30 12:00 UTC): obligation density
alerts (forecast weeks over the committee thresholds, with their largest obligations and owners; each delivery
records a DensityAlert per breached week that the density trend history shows) and the attestation renewal calendar
(waves by due window, framework rollup, the owners of the current waves as recipients). Previews pinned, the GET
endpoint in JSON and CSV, bad parameters, viewer access and tenant isolation, deliveries through ``digests.deliver``."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from zentro.compliance import digests
from zentro.compliance.models import Attestation, DensityAlert
from zentro.compliance.obligations import week_start
from zentro.extensions import db
from zentro.platform.types import utcnow

from tests.compliance.digest_helpers import build, headers_for, people, rows, summary  # noqa: F401 (fixture)
from tests.compliance.analytics_helpers import NOW, checkpoint, committee, csv_blocks, evidence_request, get_report
from tests.compliance.engine_helpers import attestation, vendor

D = dt.date
DAY = dt.timedelta(days=1)
W0, W1, W2 = D(2025, 6, 30), D(2025, 7, 7), D(2025, 7, 14)
NOT_SENT = [{"channel": "email", "status": "not_sent"}, {"channel": "slack", "status": "not_sent"},
            {"channel": "webhook", "status": "not_sent"}]


# === obligation density alerts ==================================================================================

def seed_density(org: int, people, now: dt.datetime) -> dict:
    """Thresholds warn 3, critical 5; effort attestation 2, vendor review 4, checkpoint 6, evidence request 3; no
    scheduled bundles. Relative to W0, the Monday of ``now``'s week:

    - W0: c's attestation (1: ok)
    - W1: a's checkpoint (6 h) and two attestations, b's attestation, an unassigned evidence request (3 h):
      5 obligations, 15 h → critical (threshold 5)
    - W2: b's vendor review (4 h), c's two attestations: 3, 8 h → warn (threshold 3)
    - W3: two of a's attestations (2: ok); overdue before W0: a's attestation (in no forecast week)
    """
    a, b, c = people["a"], people["b"], people["c"]
    w0 = week_start(now)

    def day(offset: float) -> dt.datetime:
        return dt.datetime.combine(w0, dt.time(12), dt.timezone.utc) + offset * DAY

    committee(org, density_warn=3, density_critical=5, bundle_cadence_days=0, capacity_hours_per_week=40.0,
              escalation_emails=["grc@acme.example"],
              effort_hours={"attestation": 2, "vendor_review": 4, "checkpoint": 6, "evidence_request": 3})
    attestation(org, "SOC2:CC6.2", due_at=day(2), owner_id=c.user_id)
    cp = checkpoint(org, "Fieldwork kick-off", "SOC2", due_at=day(8), owner_id=a.user_id)
    a1 = attestation(org, "SOC2:CC6.3", due_at=day(9), owner_id=a.user_id)
    a2 = attestation(org, "SOC2:CC7.2", due_at=day(10), owner_id=a.user_id)
    b1 = attestation(org, "SOC2:CC8.1", due_at=day(9), owner_id=b.user_id)
    er = evidence_request(org, "Access review export", ["SOC2:CC6.1"], due_at=day(11))
    vr = vendor(org, "Cloudy", ["SOC2:CC6.1"], expires=None, next_review_at=day(15))
    vr.owner_id = b.user_id
    c1 = attestation(org, "ISO27001:A.5.1", due_at=day(16), owner_id=c.user_id)
    c2 = attestation(org, "ISO27001:A.5.2", due_at=day(17), owner_id=c.user_id)
    attestation(org, "ISO27001:A.5.3", due_at=day(22), owner_id=a.user_id)
    attestation(org, "ISO27001:A.5.4", due_at=day(23), owner_id=a.user_id)
    attestation(org, "SOC2:CC6.6", due_at=day(-10), owner_id=a.user_id)
    db.session.commit()
    return {"checkpoint": cp.id, "a1": a1.id, "a2": a2.id, "b1": b1.id, "er": er.id, "vendor": vr.id, "c1": c1.id,
            "c2": c2.id}


@pytest.fixture
def density(app, people):
    with app.app_context():
        return people["a"].org_id, seed_density(people["a"].org_id, people, NOW)


def test_density_alerts_pin_breached_weeks_obligations_and_owners(app, density):
    org, ids = density
    with app.app_context():
        rep = build("obligation-density-alerts", org)
    assert summary(rep) == {
        "weeks": 13, "density_warn": 3, "density_critical": 5, "breached_weeks": 2, "critical_weeks": 1,
        "warn_weeks": 1, "first_breach": "2025-07-07", "worst_week": "2025-07-07", "worst_density": 5,
        "obligations_in_breach": 8, "hours_in_breach": 23.0}
    assert rows(rep, "breaches") == [
        {"week": "2025-07-07", "level": "critical", "density": 5, "threshold": 5, "over_by": 0, "owner_hours": 15.0,
         "owners": 3, "top_owners": ["a@acme.example (3)", "(unassigned) (1)", "b@acme.example (1)"],
         "kinds": {"attestation": 3, "checkpoint": 1, "evidence_request": 1}, "alerts_recorded": 0},
        {"week": "2025-07-14", "level": "warn", "density": 3, "threshold": 3, "over_by": 0, "owner_hours": 8.0,
         "owners": 2, "top_owners": ["c@acme.example (2)", "b@acme.example (1)"],
         "kinds": {"attestation": 2, "vendor_review": 1}, "alerts_recorded": 0}]
    assert [(r["week"], r["key"], r["owner"], r["effort_hours"]) for r in rows(rep, "obligations")] == [
        ("2025-07-07", f"checkpoint:{ids['checkpoint']}", "a@acme.example", 6.0),
        ("2025-07-07", f"evidence-request:{ids['er']}", "(unassigned)", 3.0),
        ("2025-07-07", f"attestation:{ids['a1']}", "a@acme.example", 2.0),
        ("2025-07-07", f"attestation:{ids['b1']}", "b@acme.example", 2.0),
        ("2025-07-07", f"attestation:{ids['a2']}", "a@acme.example", 2.0),
        ("2025-07-14", f"vendor-review:{ids['vendor']}", "b@acme.example", 4.0),
        ("2025-07-14", f"attestation:{ids['c1']}", "c@acme.example", 2.0),
        ("2025-07-14", f"attestation:{ids['c2']}", "c@acme.example", 2.0)]
    first = rows(rep, "obligations")[0]
    assert (first["kind"], first["title"], first["due"], first["frameworks"], first["link"]) == (
        "checkpoint", "Fieldwork kick-off", "2025-07-08", ["SOC2"], "/compliance/checkpoints")
    assert rows(rep, "owners") == [
        {"week": "2025-07-07", "owner": "a@acme.example", "obligations": 3, "hours": 10.0},
        {"week": "2025-07-07", "owner": "(unassigned)", "obligations": 1, "hours": 3.0},
        {"week": "2025-07-07", "owner": "b@acme.example", "obligations": 1, "hours": 2.0},
        {"week": "2025-07-14", "owner": "c@acme.example", "obligations": 2, "hours": 4.0},
        {"week": "2025-07-14", "owner": "b@acme.example", "obligations": 1, "hours": 4.0}]
    chart = rep.charts[0]
    assert chart.threshold == 3.0 and chart.series[0].values[:4] == [1.0, 5.0, 3.0, 2.0]
    # a shorter horizon sees only the first breach
    with app.app_context():
        short = summary(build("obligation-density-alerts", org, weeks=2))
    assert (short["weeks"], short["breached_weeks"], short["warn_weeks"], short["hours_in_breach"]) == (2, 1, 0, 15.0)


def test_density_alerts_follow_the_org_thresholds(app, density):
    org, _ = density
    with app.app_context():
        committee(org, density_warn=6, density_critical=9)
        db.session.commit()
        s = summary(build("obligation-density-alerts", org))
    assert (s["density_warn"], s["breached_weeks"], s["first_breach"], s["worst_density"]) == (6, 0, None, 0)


def test_density_alert_deliveries_record_alerts_the_trend_history_shows(app, density, people):
    org, _ = density
    with app.app_context():
        result = digests.deliver("obligation-density-alerts", org, now=NOW)
        assert result.outcome == "not_sent" and [x.channel for x in result.deliveries] == ["email", "slack",
                                                                                            "webhook"]
        # the committee: escalation e-mails and the org's owners and admins
        assert result.deliveries[0].recipients == ["a@acme.example", "d@acme.example", "grc@acme.example"]
        alerts = db.session.scalars(select(DensityAlert).where(DensityAlert.org_id == org)
                                    .order_by(DensityAlert.week_start)).all()
        assert [(x.week_start, x.level, x.density, x.threshold, x.channels, x.created_at) for x in alerts] == [
            (W1, "critical", 5, 5, NOT_SENT, NOW), (W2, "warn", 3, 3, NOT_SENT, NOW)]
        again = build("obligation-density-alerts", org, NOW + DAY)
        assert [r["alerts_recorded"] for r in rows(again, "breaches")] == [1, 1]

        # two weeks on, W1 and W2 are trailing weeks of the density trend history, with their alerts and channels
        history = build("obligation-density-trend-history", org, NOW + 14 * DAY, weeks=3)
        weeks = {r["week"]: r for r in rows(history, "weeks")}
        assert list(weeks) == ["2025-06-30", "2025-07-07", "2025-07-14"]
        w1, w2 = weeks["2025-07-07"], weeks["2025-07-14"]
        assert (w1["alerts"], w1["alert_level"], w1["channels"], w1["deliveries"], w1["failed_deliveries"]) == (
            1, "critical", ["email", "slack", "webhook"], 3, 0)
        assert (w2["alerts"], w2["alert_level"], w2["deliveries"]) == (1, "warn", 3)
        assert (summary(history)["alerts"], summary(history)["alert_weeks"]) == (2, 2)

        # no breach: nothing is sent and no alert is recorded
        quiet = digests.deliver("obligation-density-alerts", people["g"].org_id, now=NOW)
        assert quiet.outcome == "nothing_to_send" and quiet.deliveries == []
        assert db.session.scalars(select(DensityAlert).where(DensityAlert.org_id == people["g"].org_id)).all() == []


def test_density_alert_channel_statuses_are_those_of_the_deliveries(app, density, monkeypatch):
    """Only the channels of this delivery, with their statuses: e-mail only, to an SMTP address nobody listens on
    (failed); the trend history counts the failed deliveries."""
    org, _ = density
    monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", "smtp://127.0.0.1:1")
    with app.app_context():
        result = digests.deliver("obligation-density-alerts", org, now=NOW, channels=["email"])
        assert result.outcome == "failed" and [(x.channel, x.status) for x in result.deliveries] == [
            ("email", "failed")]
        alerts = db.session.scalars(select(DensityAlert).where(DensityAlert.org_id == org)).all()
        assert len(alerts) == 2 and all(x.channels == [{"channel": "email", "status": "failed"}] for x in alerts)
        history = build("obligation-density-trend-history", org, NOW + 14 * DAY, weeks=2)
        assert [(r["week"], r["alerts"], r["channels"], r["deliveries"], r["failed_deliveries"])
                for r in rows(history, "weeks")] == [("2025-07-07", 1, ["email"], 1, 1),
                                                      ("2025-07-14", 1, ["email"], 1, 1)]


def test_density_alerts_preview_over_http(app, people, make_api_key):
    with app.app_context():
        seed_density(people["a"].org_id, people, utcnow())
    client = app.test_client()
    viewer = headers_for(make_api_key, people["v"])
    doc = get_report(client, "obligation-density-alerts", headers=viewer).get_json()
    assert doc["report"] == "obligation-density-alerts"
    assert (doc["summary"]["breached_weeks"], doc["summary"]["critical_weeks"]) == (2, 1)
    resp = get_report(client, "obligation-density-alerts", headers=viewer, format="csv", weeks=4)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert ["breached_weeks", "2"] in blocks["Summary"] and len(blocks["Breached weeks"]) == 3
    assert blocks["Breached weeks"][0][:4] == ["Week", "Level", "Density", "Threshold"]
    html = get_report(client, "obligation-density-alerts", headers=viewer, format="html")
    assert html.status_code == 200 and "Obligation density alerts" in html.get_data(as_text=True)
    theirs = get_report(client, "obligation-density-alerts", headers=headers_for(make_api_key, people["g"]))
    assert theirs.get_json()["summary"]["breached_weeks"] == 0


# === attestation renewal calendar ===============================================================================

def seed_renewals(org: int, people, now: dt.datetime) -> dict:
    """Latest attestation per control, attested, renewal due at valid_until:

    - SOC2:CC6.1 (b) expired 5 days ago → overdue; SOC2:CC6.2 (c) in 10 days and ISO27001:A.5.1 (nobody) in 30
      days 6 hours (30 whole days) → 0-30; SOC2:CC7.2 (b) in 45 → 31-60; HIPAA:164.308(a)(1)(i) (a) in 75 → 61-90;
    - SOC2:CC8.1 in 120 days: beyond the calendar;
    - SOC2:CC6.3: an attested row that expired 40 days ago, superseded by a newer assigned row: not a renewal;
    - GDPR:32(2): assigned only, never attested: not a renewal."""
    a, b, c = people["a"], people["b"], people["c"]

    def attested(tag: str, valid_for: dt.timedelta, owner=None, created: float = 200):
        return attestation(org, tag, due_at=now - 300 * DAY, status="attested", attested_at=now - 100 * DAY,
                           valid_until=now + valid_for, owner_id=owner.user_id if owner else None,
                           created_at=now - created * DAY)

    ids = {
        "cc61": attested("SOC2:CC6.1", -5 * DAY, b).id,
        "cc62": attested("SOC2:CC6.2", 10 * DAY, c).id,
        "a51": attested("ISO27001:A.5.1", 30.25 * DAY).id,
        "cc72": attested("SOC2:CC7.2", 45 * DAY, b).id,
        "hipaa": attested("HIPAA:164.308(a)(1)(i)", 75 * DAY, a).id,
        "cc81": attested("SOC2:CC8.1", 120 * DAY, c).id,
        "cc63_old": attested("SOC2:CC6.3", -40 * DAY, b, created=400).id,
    }
    ids["cc63_new"] = attestation(org, "SOC2:CC6.3", due_at=now + 5 * DAY, owner_id=b.user_id,
                                  created_at=now - 10 * DAY).id
    attestation(org, "GDPR:32(2)", due_at=now + 3 * DAY, owner_id=c.user_id)
    db.session.commit()
    return ids


@pytest.fixture
def renewals(app, people):
    with app.app_context():
        return people["a"].org_id, seed_renewals(people["a"].org_id, people, NOW)


def test_renewal_calendar_pins_waves_rollup_and_owners(app, renewals):
    org, ids = renewals
    with app.app_context():
        rep = build("attestation-renewal", org)
    assert summary(rep) == {"overdue": 1, "due_0_30": 2, "due_31_60": 1, "due_61_90": 1, "total": 5, "current": 3,
                            "owners": 2, "unassigned_current": 1, "frameworks": 3}
    renewal_rows = rows(rep, "renewals")
    assert [(r["wave"], r["id"], r["control"], r["framework"], r["owner"], r["days_left"]) for r in renewal_rows] == [
        ("overdue", ids["cc61"], "SOC2:CC6.1", "SOC2", "b@acme.example", -5),
        ("0-30", ids["cc62"], "SOC2:CC6.2", "SOC2", "c@acme.example", 10),
        ("0-30", ids["a51"], "ISO27001:A.5.1", "ISO27001", "", 30),
        ("31-60", ids["cc72"], "SOC2:CC7.2", "SOC2", "b@acme.example", 45),
        ("61-90", ids["hipaa"], "HIPAA:164.308(a)(1)(i)", "HIPAA", "a@acme.example", 75)]
    first = renewal_rows[0]
    assert (first["attested_at"], first["valid_until"], first["link"]) == (
        "2025-03-22T12:00:00Z", "2025-06-25T12:00:00Z", f"/compliance/attestations/{ids['cc61']}")
    assert first["title"]
    assert rows(rep, "frameworks") == [
        {"framework": "SOC2", "overdue": 1, "due_0_30": 1, "due_31_60": 1, "due_61_90": 0, "total": 3, "current": 2},
        {"framework": "ISO27001", "overdue": 0, "due_0_30": 1, "due_31_60": 0, "due_61_90": 0, "total": 1,
         "current": 1},
        {"framework": "HIPAA", "overdue": 0, "due_0_30": 0, "due_31_60": 0, "due_61_90": 1, "total": 1,
         "current": 0}]
    assert rows(rep, "owners") == [
        {"owner": "b@acme.example", "overdue": 1, "due_0_30": 0, "first_due": "2025-06-25T12:00:00Z",
         "controls": ["SOC2:CC6.1"]},
        {"owner": "c@acme.example", "overdue": 0, "due_0_30": 1, "first_due": "2025-07-10T12:00:00Z",
         "controls": ["SOC2:CC6.2"]},
        {"owner": "(unassigned)", "overdue": 0, "due_0_30": 1, "first_due": "2025-07-30T18:00:00Z",
         "controls": ["ISO27001:A.5.1"]}]
    assert rep.charts[0].series[0].values == [1.0, 2.0, 1.0, 1.0]


def test_renewal_digest_emails_the_current_owners_and_admins_for_unassigned_ones(app, renewals, people):
    org, ids = renewals
    with app.app_context():
        result = digests.deliver("attestation-renewal", org, now=NOW)
        (email,) = result.deliveries  # e-mail only
        assert email.channel == "email" and email.status == "not_sent"
        # b and c own current-wave renewals; A.5.1 has no owner, so the owner a and the admin d get it too;
        # a's HIPAA renewal (61-90) alone would not have made a a recipient
        assert email.recipients == ["a@acme.example", "b@acme.example", "c@acme.example", "d@acme.example"]
        assert result.run.period_key == "2025-W27" and result.run.summary["current"] == 3

        db.session.get(Attestation, ids["a51"]).owner_id = people["c"].user_id
        db.session.commit()
        again = digests.deliver("attestation-renewal", org, now=NOW + 7 * DAY)
        assert again.deliveries[0].recipients == ["b@acme.example", "c@acme.example"]

        # only later waves: nothing to send
        g = people["g"]
        attestation(g.org_id, "SOC2:CC6.1", due_at=NOW - 300 * DAY, status="attested", attested_at=NOW - 100 * DAY,
                    valid_until=NOW + 45 * DAY, owner_id=g.user_id)
        db.session.commit()
        quiet = digests.deliver("attestation-renewal", g.org_id, now=NOW)
        assert quiet.outcome == "nothing_to_send" and quiet.deliveries == []
        assert summary(build("attestation-renewal", g.org_id))["due_31_60"] == 1


def test_renewal_calendar_over_http(app, people, make_api_key):
    with app.app_context():
        seed_renewals(people["a"].org_id, people, utcnow())
    client = app.test_client()
    viewer = headers_for(make_api_key, people["v"])
    doc = get_report(client, "attestation-renewal", headers=viewer).get_json()
    assert (doc["summary"]["current"], doc["summary"]["total"]) == (3, 5)
    resp = get_report(client, "attestation-renewal", headers=viewer, format="csv")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert blocks["Renewals by wave"][0][:3] == ["Wave", "Id", "Control"] and len(blocks["Renewals by wave"]) == 6
    assert blocks["Framework rollup"][1][:2] == ["SOC2", "1"]
    assert get_report(client, "attestation-renewal", headers=viewer, format="html").status_code == 200
    theirs = get_report(client, "attestation-renewal", headers=headers_for(make_api_key, people["g"])).get_json()
    assert theirs["summary"]["total"] == 0 and theirs["sections"]["renewals"]["rows"] == []


@pytest.mark.parametrize("slug,params", [
    ("obligation-density-alerts", {"weeks": "0"}), ("obligation-density-alerts", {"weeks": "53"}),
    ("obligation-density-alerts", {"weeks": "many"}), ("obligation-density-alerts", {"format": "pdf"}),
    ("obligation-density-alerts", {"densityWarn": "2"}), ("attestation-renewal", {"weeks": "4"}),
    ("attestation-renewal", {"format": "xml"}), ("attestation-renewal", {"days": "30"}),
])
def test_bad_parameters_are_400(app, people, make_api_key, slug, params):
    resp = get_report(app.test_client(), slug, headers=headers_for(make_api_key, people["v"]), **params)
    assert resp.status_code == 400, (slug, params, resp.get_data(as_text=True)[:300])
    body = resp.get_json()
    assert body["error_code"] == "VALIDATION_ERROR" and body["detail"]
