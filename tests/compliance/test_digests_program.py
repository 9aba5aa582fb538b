"""The program-side digests on hand-built datasets at a fixed NOW (Monday 2025-06-30 12:00 UTC): the compliance
program digest (``digest``), the SLA reminders, the evidence request SLA digest and the regulatory mapping change
digest. Each preview's summary and rows are pinned; the GET preview answers JSON and CSV, refuses bad parameters,
is readable by a viewer and shows only the caller's org; delivering through ``digests.deliver`` keeps the state the
next delivery compares with (program digest snapshots, the mapping baseline) and goes to the right people."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from sqlalchemy import func, select

from zentro.compliance import catalog as catalog_module
from zentro.compliance import digests
from zentro.compliance.models import Attestation
from zentro.extensions import db
from zentro.notify.models import Delivery, DigestRun, DigestSchedule, DigestSnapshot
from zentro.platform.types import utcnow

from tests.compliance.digest_helpers import build, headers_for, people, rows, summary  # noqa: F401 (fixture)
from tests.compliance.analytics_helpers import NOW, csv_blocks, evidence_request, get_report
from tests.compliance.engine_helpers import attestation, evidence

DAY = dt.timedelta(days=1)


# === compliance program digest ================================================================================

def seed_program(org: int, people, now: dt.datetime) -> dict:
    """Readiness arithmetic (weights: SOC2 67.5 in all, ISO27001 102, GDPR 16, every catalog 1053.5):

    - GDPR:32(2) (weight 1): evidence 2 days ago (full, 70) + attested and valid (30) = 100 → GDPR 100/16 = 6.2;
      its crosswalk neighbours SOC2:CC3.2 and ISO27001:A.5.34 (partial edges, weight 1 each) get partial
      evidence = 50;
    - SOC2:CC6.1 (weight 1.5): assigned, due in 5 days = 15 → SOC2 (50 + 22.5) / 67.5 = 1.1;
    - ISO27001:A.5.1: assigned, due 5 days ago: overdue = 0 → ISO27001 50 / 102 = 0.5;
    - HIPAA:164.308(a)(1)(i): rejected, due 20 days ago, unowned: overdue = 0 → HIPAA 0.0;
    - program readiness (50 + 22.5 + 50 + 100) / 1053.5 = 0.2.
    """
    a, b = people["a"], people["b"]
    evidence(org, "GDPR:32(2)", at=now - 2 * DAY)
    gdpr = attestation(org, "GDPR:32(2)", due_at=now - 20 * DAY, status="attested", attested_at=now - 10 * DAY,
                       valid_until=now + 355 * DAY, owner_id=b.user_id)
    cc61 = attestation(org, "SOC2:CC6.1", due_at=now + 5 * DAY, owner_id=b.user_id)
    a51 = attestation(org, "ISO27001:A.5.1", due_at=now - 5 * DAY, owner_id=a.user_id)
    hipaa = attestation(org, "HIPAA:164.308(a)(1)(i)", due_at=now - 20 * DAY, status="rejected")
    db.session.commit()
    return {"gdpr": gdpr.id, "cc61": cc61.id, "a51": a51.id, "hipaa": hipaa.id}


@pytest.fixture
def program(app, people):
    with app.app_context():
        return people["a"].org_id, seed_program(people["a"].org_id, people, NOW)


def test_program_digest_without_a_snapshot_says_so_and_leaves_deltas_empty(app, program):
    org, ids = program
    with app.app_context():
        rep = build("digest", org)
    s = summary(rep)
    assert s == {
        "period_days": 30, "baseline": "no prior snapshot", "snapshot_at": None, "snapshot_period_days": None,
        "program_readiness": 0.2, "prior_program_readiness": None, "readiness_change": None,
        "frameworks_up": None, "frameworks_down": None, "frameworks_unchanged": None,
        "gaps": 976, "gaps_change": None, "overdue_attestations": 2, "newly_overdue": None,
        "no_longer_overdue": None,
    }
    fws = {r["framework"]: r for r in rows(rep, "frameworks")}
    assert list(fws) == ["SOC2", "ISO27001", "PCIDSS", "HIPAA", "NISTCSF", "CISV8", "NIST800171", "GDPR",
                         "NIST80053"]
    assert {k: r["readiness"] for k, r in fws.items()} == {
        "SOC2": 1.1, "ISO27001": 0.5, "PCIDSS": 0.0, "HIPAA": 0.0, "NISTCSF": 0.0, "CISV8": 0.0, "NIST800171": 0.0,
        "GDPR": 6.2, "NIST80053": 0.0}
    assert fws["GDPR"] == {"framework": "GDPR", "name": "GDPR Article 32", "readiness": 6.2, "prior_readiness": None,
                           "delta": None, "direction": None, "state": "failing", "gaps": 13, "prior_gaps": None,
                           "gaps_change": None, "passing": 1, "at_risk": 0, "failing": 13}
    assert fws["SOC2"]["gaps"] == 61 and fws["NIST80053"]["gaps"] == 323
    assert rows(rep, "newly_overdue") == [] and rows(rep, "no_longer_overdue") == []
    overdue = rows(rep, "overdue")
    assert [(r["id"], r["control"], r["owner"], r["days_overdue"], r["new"]) for r in overdue] == [
        (ids["hipaa"], "HIPAA:164.308(a)(1)(i)", "", 20, None),
        (ids["a51"], "ISO27001:A.5.1", "a@acme.example", 5, None)]
    assert (overdue[1]["due_at"], overdue[1]["link"]) == ("2025-06-25T12:00:00Z",
                                                          f"/compliance/attestations/{ids['a51']}")
    assert [s.name for s in rep.charts[0].series] == ["now"]


def test_program_digest_compares_with_the_last_snapshot(app, program):
    """A snapshot as a delivery a week ago would have left it: deltas, directions, new and resolved overdue ones."""
    org, ids = program
    with app.app_context():
        digests.save_snapshot(org, "digest", {
            "as_of": "2025-06-23T08:00:00Z", "period_days": 30, "program_readiness": 0.3,
            "readiness": {"SOC2": 2.0, "ISO27001": 0.1, "GDPR": 6.2},
            "gaps": {"SOC2": 60, "ISO27001": 102, "GDPR": 13},
            "overdue_attestation_ids": [ids["a51"], 424242]}, now=NOW - 7 * DAY)
        db.session.commit()
        rep = build("digest", org)
    s = summary(rep)
    assert (s["baseline"], s["snapshot_at"], s["snapshot_period_days"]) == (
        "snapshot of 2025-06-23T12:00:00Z", "2025-06-23T12:00:00Z", 30)
    assert (s["program_readiness"], s["prior_program_readiness"], s["readiness_change"]) == (0.2, 0.3, -0.1)
    assert (s["frameworks_up"], s["frameworks_down"], s["frameworks_unchanged"]) == (1, 1, 1)
    assert (s["gaps"], s["gaps_change"]) == (976, 976 - 175)
    assert (s["overdue_attestations"], s["newly_overdue"], s["no_longer_overdue"]) == (2, 1, 1)
    fws = {r["framework"]: r for r in rows(rep, "frameworks")}
    assert [(fws[k]["prior_readiness"], fws[k]["readiness"], fws[k]["delta"], fws[k]["direction"],
             fws[k]["prior_gaps"], fws[k]["gaps_change"]) for k in ("SOC2", "ISO27001", "GDPR", "HIPAA")] == [
        (2.0, 1.1, -0.9, "down", 60, 1), (0.1, 0.5, 0.4, "up", 102, -9), (6.2, 6.2, 0.0, "unchanged", 13, 0),
        (None, 0.0, None, None, None, None)]
    assert [(r["id"], r["new"]) for r in rows(rep, "newly_overdue")] == [(ids["hipaa"], True)]
    assert [(r["id"], r["new"]) for r in rows(rep, "overdue")] == [(ids["hipaa"], True), (ids["a51"], False)]
    assert rows(rep, "no_longer_overdue") == [
        {"id": 424242, "control": "", "state_now": "removed", "owner": "", "link": ""}]
    assert [s.name for s in rep.charts[0].series] == ["last digest", "now"]
    assert rep.notes == []


def test_program_digest_notes_a_snapshot_taken_over_another_window(app, program):
    org, _ = program
    with app.app_context():
        digests.save_snapshot(org, "digest", {"period_days": 90, "readiness": {}, "overdue_attestation_ids": []},
                              now=NOW - DAY)
        db.session.commit()
        rep = build("digest", org, periodDays=30)
    assert rep.notes == ["The last snapshot was computed over a 90-day evidence window; the figures now use 30 "
                         "days."]
    assert summary(rep)["frameworks_up"] == 0 and summary(rep)["newly_overdue"] == 2


def test_program_digest_deliveries_keep_the_snapshot_the_next_one_compares_with(app, program):
    """First delivery: no prior snapshot, one saved. A week later, after ISO27001:A.5.1 was attested and SOC2:CC6.1
    fell overdue: ISO27001 up 0.3 (50 + 30 over 102 = 0.8), SOC2 down 0.4 (50 / 67.5 = 0.7), CC6.1 newly overdue,
    A.5.1 no longer overdue. SMTP, Slack and webhooks are not configured: recorded as not sent."""
    org, ids = program
    with app.app_context():
        first = digests.deliver("digest", org, now=NOW)
        assert first.outcome == "not_sent" and {x.status for x in first.deliveries} == {"not_sent"}
        email = next(x for x in first.deliveries if x.channel == "email")
        assert email.recipients == ["a@acme.example", "d@acme.example"]  # the owner and the admin
        snaps = db.session.scalars(select(DigestSnapshot).where(DigestSnapshot.org_id == org)).all()
        assert len(snaps) == 1 and snaps[0].run_id == first.run.id
        assert snaps[0].data == {
            "as_of": "2025-06-30T12:00:00Z", "period_days": 30, "program_readiness": 0.2,
            "readiness": {"SOC2": 1.1, "ISO27001": 0.5, "PCIDSS": 0.0, "HIPAA": 0.0, "NISTCSF": 0.0, "CISV8": 0.0,
                          "NIST800171": 0.0, "GDPR": 6.2, "NIST80053": 0.0},
            "gaps": {"SOC2": 61, "ISO27001": 93, "PCIDSS": 63, "HIPAA": 54, "NISTCSF": 106, "CISV8": 153,
                     "NIST800171": 110, "GDPR": 13, "NIST80053": 323},
            "overdue_attestation_ids": sorted([ids["a51"], ids["hipaa"]])}
        assert first.run.summary["baseline"] == "no prior snapshot"

        # the same week again: already delivered, no second snapshot
        assert digests.deliver("digest", org, now=NOW + DAY).outcome == "already_delivered"
        assert db.session.scalar(select(func.count()).select_from(DigestSnapshot)) == 1

        row = db.session.get(Attestation, ids["a51"])
        row.status, row.attested_at, row.valid_until = "attested", NOW + DAY, NOW + 366 * DAY
        db.session.commit()
        later = NOW + 7 * DAY
        preview = build("digest", org, later)
        second = digests.deliver("digest", org, now=later)
        assert second.outcome == "not_sent" and second.run.period_key == "2025-W28"
        s = second.run.summary
        assert (s["baseline"], s["program_readiness"], s["prior_program_readiness"], s["readiness_change"]) == (
            "snapshot of 2025-06-30T12:00:00Z", 0.2, 0.2, 0.0)
        assert (s["frameworks_up"], s["frameworks_down"], s["frameworks_unchanged"]) == (1, 1, 7)
        assert (s["overdue_attestations"], s["newly_overdue"], s["no_longer_overdue"]) == (2, 1, 1)
        fws = {r["framework"]: r for r in rows(preview, "frameworks")}
        assert (fws["ISO27001"]["readiness"], fws["ISO27001"]["delta"], fws["ISO27001"]["direction"]) == (0.8, 0.3,
                                                                                                            "up")
        assert (fws["SOC2"]["readiness"], fws["SOC2"]["delta"], fws["SOC2"]["direction"]) == (0.7, -0.4, "down")
        assert [r["id"] for r in rows(preview, "newly_overdue")] == [ids["cc61"]]
        assert rows(preview, "no_longer_overdue") == [{
            "id": ids["a51"], "control": "ISO27001:A.5.1", "state_now": "attested", "owner": "a@acme.example",
            "link": f"/compliance/attestations/{ids['a51']}"}]
        assert db.session.scalar(select(func.count()).select_from(DigestSnapshot)) == 2
        assert digests.last_snapshot(org, "digest").data["overdue_attestation_ids"] == sorted(
            [ids["cc61"], ids["hipaa"]])


def test_program_digest_preview_over_http(app, people, make_api_key):
    """JSON and CSV through the report route, a viewer may read, another org sees only its own (empty) program."""
    org = people["a"].org_id
    with app.app_context():
        seed_program(org, people, utcnow())
    client = app.test_client()
    viewer = headers_for(make_api_key, people["v"])
    doc = get_report(client, "digest", headers=viewer).get_json()
    assert doc["report"] == "digest" and doc["summary"]["overdue_attestations"] == 2
    assert doc["summary"]["baseline"] == "no prior snapshot" and doc["params"]["periodDays"] == 30
    resp = get_report(client, "digest", headers=viewer, format="csv", periodDays=7)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert ["period_days", "7"] in blocks["Summary"] and ["baseline", "no prior snapshot"] in blocks["Summary"]
    assert blocks["Readiness by framework"][0][:4] == ["Framework", "Name", "Readiness", "Last digest"]
    assert len(blocks["All overdue attestations"]) == 3
    html = get_report(client, "digest", headers=viewer, format="html")
    assert html.status_code == 200 and "Compliance program digest" in html.get_data(as_text=True)
    theirs = get_report(client, "digest", headers=headers_for(make_api_key, people["g"])).get_json()
    assert theirs["summary"]["overdue_attestations"] == 0 and theirs["sections"]["overdue"]["rows"] == []
    gdpr = {r["framework"]: r["readiness"] for r in doc["sections"]["frameworks"]["rows"]}["GDPR"]
    assert {r["framework"]: r["readiness"] for r in theirs["sections"]["frameworks"]["rows"]}["GDPR"] < gdpr


# === bad parameters, every preview of this file ================================================================

@pytest.mark.parametrize("slug,params", [
    ("digest", {"periodDays": "0"}), ("digest", {"periodDays": "731"}), ("digest", {"periodDays": "week"}),
    ("sla-reminders", {"dueSoonDays": "0"}), ("sla-reminders", {"dueSoonDays": "61"}),
    ("sla-reminders", {"dueSoonDays": "soon"}), ("sla-reminders", {"lookbackDays": "91"}),
    ("evidence-request-sla", {"atRiskDays": "0"}), ("evidence-request-sla", {"atRiskDays": "31"}),
    ("evidence-request-sla", {"window": "14d"}), ("mapping-digest", {"periodDays": "30"}),
    ("digest", {"bogus": "1"}), ("sla-reminders", {"format": "pdf"}), ("mapping-digest", {"format": "html"}),
])
def test_bad_parameters_are_400(app, people, make_api_key, slug, params):
    resp = get_report(app.test_client(), slug, headers=headers_for(make_api_key, people["v"]), **params)
    assert resp.status_code == 400, (slug, params, resp.get_data(as_text=True)[:300])
    body = resp.get_json()
    assert body["error_code"] == "VALIDATION_ERROR" and body["detail"]


# === SLA reminders ==============================================================================================

def seed_sla(org: int, people, now: dt.datetime) -> dict:
    """- due soon (7 days): SOC2:CC6.1 assigned to b due in 3 days; SOC2:CC6.2 rejected, back with c, due in 6.5;
    - due in 10 days (due soon only with a 14-day window): SOC2:CC6.3, b;
    - overdue: ISO27001:A.5.1 (a, 2 days), HIPAA:164.308(a)(1)(i) (nobody, 30 days);
    - regressed: SOC2:CC7.2 (freshness 30 days, b): evidence 35 days ago and an attestation valid until 3 days ago —
      7 days ago 70 (fresh) + 30 (attested) = 100, now 25 (stale) + 0 (expired) = 25;
    - improved, not regressed: SOC2:CC8.1 (c) attested and valid, evidence yesterday: 30 a week ago, 100 now."""
    a, b, c = people["a"], people["b"], people["c"]
    ids = {
        "cc61": attestation(org, "SOC2:CC6.1", due_at=now + 3 * DAY, owner_id=b.user_id).id,
        "cc62": attestation(org, "SOC2:CC6.2", due_at=now + 6.5 * DAY, status="rejected", owner_id=c.user_id).id,
        "cc63": attestation(org, "SOC2:CC6.3", due_at=now + 10 * DAY, owner_id=b.user_id).id,
        "a51": attestation(org, "ISO27001:A.5.1", due_at=now - 2 * DAY, owner_id=a.user_id).id,
        "hipaa": attestation(org, "HIPAA:164.308(a)(1)(i)", due_at=now - 30 * DAY).id,
        "cc72": attestation(org, "SOC2:CC7.2", due_at=now - 70 * DAY, status="attested", attested_at=now - 60 * DAY,
                            valid_until=now - 3 * DAY, owner_id=b.user_id).id,
        "cc81": attestation(org, "SOC2:CC8.1", due_at=now - 30 * DAY, status="attested", attested_at=now - 20 * DAY,
                            valid_until=now + 70 * DAY, owner_id=c.user_id).id,
    }
    evidence(org, "SOC2:CC7.2", at=now - 35 * DAY)
    evidence(org, "SOC2:CC8.1", at=now - DAY)
    db.session.commit()
    return ids


@pytest.fixture
def sla(app, people):
    with app.app_context():
        return people["a"].org_id, seed_sla(people["a"].org_id, people, NOW)


def test_sla_reminders_pin_candidates_and_default_settings(app, sla):
    org, ids = sla
    with app.app_context():
        rep = build("sla-reminders", org)
    assert summary(rep) == {
        "due_soon_days": 7, "due_soon_source": "default", "lookback_days": 7, "due_soon": 2, "overdue": 2,
        "regressed": 1, "candidates": 5, "owners": 3, "unassigned": 1, "schedule_enabled": False,
        "schedule": "0 8 * * *", "channels": ["email", "slack", "webhook"]}
    assert rows(rep, "due_soon") == [
        {"id": ids["cc61"], "control": "SOC2:CC6.1", "framework": "SOC2",
         "title": rows(rep, "due_soon")[0]["title"], "owner": "b@acme.example", "status": "assigned",
         "due_at": "2025-07-03T12:00:00Z", "days_to_due": 3, "link": f"/compliance/attestations/{ids['cc61']}"},
        {"id": ids["cc62"], "control": "SOC2:CC6.2", "framework": "SOC2",
         "title": rows(rep, "due_soon")[1]["title"], "owner": "c@acme.example", "status": "rejected",
         "due_at": "2025-07-07T00:00:00Z", "days_to_due": 6, "link": f"/compliance/attestations/{ids['cc62']}"}]
    assert rows(rep, "due_soon")[0]["title"]  # the catalog title
    assert [(r["id"], r["owner"], r["days_overdue"]) for r in rows(rep, "overdue")] == [
        (ids["hipaa"], "", 30), (ids["a51"], "a@acme.example", 2)]
    (reg,) = rows(rep, "regressed")
    assert {k: reg[k] for k in ("control", "owner", "score", "prior_score", "drop", "state", "attestation",
                                "link")} == {
        "control": "SOC2:CC7.2", "owner": "b@acme.example", "score": 25.0, "prior_score": 100.0, "drop": 75.0,
        "state": "failing", "attestation": "expired", "link": "/compliance/controls/SOC2:CC7.2"}
    assert rows(rep, "settings") == [
        {"setting": "enabled", "value": False, "source": "default"},
        {"setting": "schedule", "value": "0 8 * * *", "source": "default"},
        {"setting": "channels", "value": ["email", "slack", "webhook"], "source": "default"},
        {"setting": "slack_channel", "value": "", "source": "default"},
        {"setting": "due_soon_days", "value": 7, "source": "default"},
        {"setting": "next_run_at", "value": None, "source": "scheduler"},
        {"setting": "last_run_at", "value": None, "source": "scheduler"}]
    # a 2-day look-back: SOC2:CC7.2 was already expired (valid until 3 days ago) and stale 2 days ago → 25 then
    with app.app_context():
        assert summary(build("sla-reminders", org, lookbackDays=2))["regressed"] == 0


def test_sla_reminders_read_the_org_settings_and_the_query_wins(app, sla):
    org, ids = sla
    with app.app_context():
        db.session.add(DigestSchedule(org_id=org, digest="sla-reminders", enabled=True, cron="30 7 * * 1-5",
                                      channels=["email"], slack_channel="#grc", options={"dueSoonDays": 14},
                                      next_run_at=NOW + DAY))
        db.session.commit()
        org_setting = build("sla-reminders", org)
        query = build("sla-reminders", org, dueSoonDays=7)
    s = summary(org_setting)
    assert (s["due_soon_days"], s["due_soon_source"], s["due_soon"], s["candidates"]) == (14, "org setting", 3, 6)
    assert (s["schedule_enabled"], s["schedule"], s["channels"]) == (True, "30 7 * * 1-5", ["email"])
    assert [r["id"] for r in rows(org_setting, "due_soon")] == [ids["cc61"], ids["cc62"], ids["cc63"]]
    assert {r["setting"]: (r["value"], r["source"]) for r in rows(org_setting, "settings")} == {
        "enabled": (True, "org setting"), "schedule": ("30 7 * * 1-5", "org setting"),
        "channels": (["email"], "org setting"), "slack_channel": ("#grc", "org setting"),
        "due_soon_days": (14, "org setting"), "next_run_at": ("2025-07-01T12:00:00Z", "scheduler"),
        "last_run_at": (None, "scheduler")}
    assert (summary(query)["due_soon_days"], summary(query)["due_soon_source"], summary(query)["due_soon"]) == (
        7, "query", 2)


def test_sla_reminders_delivery_goes_to_candidate_owners_and_admins(app, sla, people):
    org, _ = sla
    with app.app_context():
        db.session.add(DigestSchedule(org_id=org, digest="sla-reminders", channels=["email"],
                                      options={"dueSoonDays": 14}))
        db.session.commit()
        result = digests.deliver("sla-reminders", org, now=NOW)
        assert result.outcome == "not_sent"
        (email,) = result.deliveries  # the org chose e-mail only
        assert email.channel == "email" and email.status == "not_sent" and "ZENTRO_SMTP_URL" in email.error
        assert email.recipients == ["a@acme.example", "b@acme.example", "c@acme.example", "d@acme.example"]
        assert (result.run.summary["due_soon_days"], result.run.summary["due_soon_source"],
                result.run.summary["candidates"]) == (14, "org setting", 6)
        # an org without candidates: nothing to send, no delivery rows
        empty = digests.deliver("sla-reminders", people["g"].org_id, now=NOW)
        assert empty.outcome == "nothing_to_send" and empty.deliveries == []
        assert db.session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.org_id == people["g"].org_id)) == 0


def test_sla_reminders_preview_over_http(app, people, make_api_key):
    with app.app_context():
        seed_sla(people["a"].org_id, people, utcnow())
    client = app.test_client()
    viewer = headers_for(make_api_key, people["v"])
    doc = get_report(client, "sla-reminders", headers=viewer).get_json()
    assert (doc["summary"]["due_soon"], doc["summary"]["overdue"], doc["summary"]["regressed"]) == (2, 2, 1)
    csv_text = get_report(client, "sla-reminders", headers=viewer, format="csv", dueSoonDays=14).get_data(as_text=True)
    blocks = csv_blocks(csv_text)
    assert ["due_soon", "3"] in blocks["Summary"] and len(blocks["Due soon"]) == 4
    assert blocks["Digest settings"][0] == ["Setting", "Value", "Source"]
    theirs = get_report(client, "sla-reminders", headers=headers_for(make_api_key, people["g"])).get_json()
    assert theirs["summary"]["candidates"] == 0


# === evidence request SLA =======================================================================================

def seed_requests(org: int, people, now: dt.datetime) -> dict:
    """Open: overdue 3 days (b), due in 2 days (c), due in 5 days (nobody), due in 20 days (b). Fulfilled in the
    window: one on time after 8 days, one 5 days late after 15 days. One cancelled."""
    b, c = people["b"], people["c"]
    ids = {
        "late": evidence_request(org, "Access review export", ["SOC2:CC6.1"], due_at=now - 3 * DAY,
                                 requested_at=now - 17 * DAY, owner_id=b.user_id).id,
        "soon": evidence_request(org, "Change tickets", ["SOC2:CC8.1", "ISO27001:A.8.32"], due_at=now + 2 * DAY,
                                 requested_at=now - 5 * DAY, owner_id=c.user_id).id,
        "nobody": evidence_request(org, "Backup logs", ["ISO27001:A.8.13"], due_at=now + 5 * DAY,
                                   requested_at=now - 5 * DAY).id,
        "later": evidence_request(org, "Pen test report", ["SOC2:CC4.1"], due_at=now + 20 * DAY,
                                  requested_at=now - 2 * DAY, owner_id=b.user_id).id,
    }
    evidence_request(org, "Policy set", ["SOC2:CC5.3"], requested_at=now - 20 * DAY, due_at=now - 10 * DAY,
                     status="fulfilled", fulfilled_at=now - 12 * DAY, owner_id=b.user_id)
    evidence_request(org, "Vendor list", ["SOC2:CC9.2"], requested_at=now - 30 * DAY, due_at=now - 20 * DAY,
                     status="fulfilled", fulfilled_at=now - 15 * DAY, owner_id=c.user_id)
    evidence_request(org, "Old ask", ["SOC2:CC9.2"], requested_at=now - 9 * DAY, due_at=now + DAY,
                     status="cancelled")
    db.session.commit()
    return ids


@pytest.fixture
def requests_(app, people):
    with app.app_context():
        return people["a"].org_id, seed_requests(people["a"].org_id, people, NOW)


def test_evidence_request_sla_pins_queue_risk_owners_and_fulfilment(app, requests_):
    org, ids = requests_
    with app.app_context():
        rep = build("evidence-request-sla", org)
        narrow = build("evidence-request-sla", org, atRiskDays=1)
    assert summary(rep) == {
        "window": "90d", "at_risk_days": 7, "open": 4, "overdue": 1, "at_risk": 2, "oldest_overdue_days": 3,
        "owners": 2, "unassigned": 1, "fulfilled_in_window": 2, "median_days_to_fulfil": 11.5,
        "on_time_rate": 50.0}
    assert rows(rep, "overdue") == [{
        "id": ids["late"], "title": "Access review export", "controls": ["SOC2:CC6.1"], "owner": "b@acme.example",
        "requested_by": "auditor@assessor.example", "due_at": "2025-06-27T12:00:00Z", "days_overdue": 3,
        "worst_state": "failing", "link": f"/compliance/evidence-requests/{ids['late']}"}]
    assert [(r["id"], r["owner"], r["days_to_due"], r["due_at"]) for r in rows(rep, "at_risk")] == [
        (ids["soon"], "c@acme.example", 2, "2025-07-02T12:00:00Z"), (ids["nobody"], "", 5, "2025-07-05T12:00:00Z")]
    assert rows(rep, "owners") == [
        {"owner": "b@acme.example", "overdue": 1, "at_risk": 0, "next_due": "2025-06-27T12:00:00Z"},
        {"owner": "(unassigned)", "overdue": 0, "at_risk": 1, "next_due": "2025-07-05T12:00:00Z"},
        {"owner": "c@acme.example", "overdue": 0, "at_risk": 1, "next_due": "2025-07-02T12:00:00Z"}]
    assert rep.charts[0].series[0].values == [1.0, 2.0, 1.0]
    assert (summary(narrow)["at_risk"], summary(narrow)["owners"], summary(narrow)["unassigned"]) == (0, 1, 0)


def test_evidence_request_sla_delivery_and_empty_org(app, requests_, people):
    org, _ = requests_
    with app.app_context():
        result = digests.deliver("evidence-request-sla", org, now=NOW)
        assert [x.channel for x in result.deliveries] == ["email", "webhook"]
        assert all(x.status == "not_sent" for x in result.deliveries)
        assert result.deliveries[0].recipients == ["a@acme.example", "b@acme.example", "c@acme.example",
                                                   "d@acme.example"]
        assert "digest.evidence-request-sla" in result.deliveries[1].error
        assert digests.deliver("evidence-request-sla", people["g"].org_id, now=NOW).outcome == "nothing_to_send"


def test_evidence_request_sla_preview_over_http(app, people, make_api_key):
    with app.app_context():
        seed_requests(people["a"].org_id, people, utcnow())
    client = app.test_client()
    viewer = headers_for(make_api_key, people["v"])
    doc = get_report(client, "evidence-request-sla", headers=viewer, atRiskDays=3).get_json()
    assert (doc["summary"]["overdue"], doc["summary"]["at_risk"], doc["params"]["atRiskDays"]) == (1, 1, 3)
    blocks = csv_blocks(get_report(client, "evidence-request-sla", headers=viewer, format="csv")
                        .get_data(as_text=True))
    assert blocks["Overdue queue"][0][:3] == ["Id", "Title", "Controls"] and len(blocks["Overdue queue"]) == 2
    assert ["on_time_rate", "50.0"] in blocks["Summary"]
    theirs = get_report(client, "evidence-request-sla", headers=headers_for(make_api_key, people["g"])).get_json()
    assert (theirs["summary"]["open"], theirs["sections"]["overdue"]["rows"]) == (0, [])


# === regulatory mapping change digest ===========================================================================

def modified_catalog(tmp_path) -> catalog_module.Catalog:
    """A copy of the shipped catalog with GDPR:32(2) removed (and its two partial crosswalk edges, to SOC2:CC3.2 and
    ISO27001:A.5.34), GDPR:32(3) added with a partial edge to SOC2:CC2.1, and the SOC2:CC1.1–ISO27001:A.5.1 edge
    made full. The shipped files are not touched."""
    root = tmp_path / "catalogs"
    shutil.copytree(catalog_module.CATALOG_DIR, root)
    gdpr = json.loads((root / "gdpr_art32.json").read_text())
    template = next(c for c in gdpr["controls"] if c["id"] == "32(2)")
    gdpr["controls"] = [c for c in gdpr["controls"] if c["id"] != "32(2)"]
    gdpr["controls"].append({**template, "id": "32(3)", "title": "Codes of conduct and certification"})
    (root / "gdpr_art32.json").write_text(json.dumps(gdpr))
    cross = json.loads((root / "crosswalk.json").read_text())
    edges = [e for e in cross["edges"] if "GDPR:32(2)" not in (e["from"], e["to"])]
    assert len(cross["edges"]) - len(edges) == 2
    for e in edges:
        if {e["from"], e["to"]} == {"SOC2:CC1.1", "ISO27001:A.5.1"}:
            assert e["strength"] == "partial"
            e["strength"] = "full"
    edges.append({"from": "GDPR:32(3)", "to": "SOC2:CC2.1", "strength": "partial"})
    cross["edges"] = edges
    (root / "crosswalk.json").write_text(json.dumps(cross))
    return catalog_module.read_catalog(root)


def test_mapping_digest_first_preview_is_the_baseline(app, people):
    with app.app_context():
        rep = build("mapping-digest", people["a"].org_id)
        shipped = catalog_module.load_catalog()
    s = summary(rep)
    assert s["status"] == "baseline" and s["message"].startswith("baseline recorded")
    assert (s["frameworks"], s["controls"], s["edges"]) == (9, 977, 2365)
    assert (s["baseline_hash"], s["baseline_at"], s["baseline_catalog_version"]) == (None, None, None)
    assert (s["catalog_version"], s["catalog_content_hash"]) == (1, shipped.content_hash())
    assert len(s["mapping_hash"]) == 64
    assert [s[k] for k in ("frameworks_added", "frameworks_removed", "controls_added", "controls_removed",
                           "edges_added", "edges_removed", "edges_strength_changed")] == [0] * 7
    fws = rows(rep, "frameworks")
    assert fws[7] == {"framework": "GDPR", "status": "present", "controls": 14, "prior_controls": 14,
                      "controls_added": 0, "controls_removed": 0, "edges_added": 0, "edges_removed": 0}
    assert rows(rep, "controls") == [] and rows(rep, "edges") == [] and rep.charts == []


def test_mapping_digest_records_a_baseline_stays_quiet_and_reports_a_change(app, people, tmp_path, monkeypatch):
    org = people["a"].org_id
    changed = modified_catalog(tmp_path)
    with app.app_context():
        first = digests.deliver("mapping-digest", org, now=NOW)
        assert first.outcome == "not_sent" and [x.channel for x in first.deliveries] == ["email", "webhook"]
        assert first.deliveries[0].recipients == ["a@acme.example", "d@acme.example"]
        assert first.run.summary["status"] == "baseline"
        snap = digests.last_snapshot(org, "mapping-digest")
        assert snap.run_id == first.run.id and snap.data["hash"] == first.run.summary["mapping_hash"]
        assert snap.data["controls"]["GDPR"].split() == sorted(
            c.id for c in catalog_module.load_catalog().frameworks["GDPR"].controls)
        assert sum(len(t) for by in snap.data["edges"].values() for t in by.values()) == 2365
        assert len(json.dumps(snap.data)) < 80_000  # compact: ids and pairs only

        # the next day, same catalog: empty digest, nothing sent, no new snapshot
        quiet = digests.deliver("mapping-digest", org, now=NOW + DAY)
        assert quiet.outcome == "nothing_to_send" and quiet.deliveries == []
        assert summary(build("mapping-digest", org, NOW + DAY))["status"] == "unchanged"
        assert db.session.scalar(select(func.count()).select_from(DigestSnapshot)) == 1

        monkeypatch.setattr(catalog_module, "load_catalog", lambda directory=None: changed)
        rep = build("mapping-digest", org, NOW + 2 * DAY)
        s = summary(rep)
        assert (s["status"], s["message"]) == ("changed", "the catalog or crosswalk changed since the last snapshot")
        assert s["baseline_hash"] == snap.data["hash"] and s["mapping_hash"] != s["baseline_hash"]
        assert s["baseline_at"] == "2025-06-30T12:00:00Z" and s["baseline_catalog_version"] == 1
        assert (s["controls"], s["edges"]) == (977, 2364)
        assert [s[k] for k in ("frameworks_added", "frameworks_removed", "controls_added", "controls_removed",
                               "edges_added", "edges_removed", "edges_strength_changed")] == [0, 0, 1, 1, 1, 2, 1]
        assert rows(rep, "controls") == [
            {"change": "added", "framework": "GDPR", "control": "GDPR:32(3)",
             "title": "Codes of conduct and certification"},
            {"change": "removed", "framework": "GDPR", "control": "GDPR:32(2)", "title": ""}]
        assert rows(rep, "edges") == [  # pairs in sorted order
            {"change": "removed", "from": "GDPR:32(2)", "to": "ISO27001:A.5.34", "strength": None,
             "prior_strength": "partial"},
            {"change": "removed", "from": "GDPR:32(2)", "to": "SOC2:CC3.2", "strength": None,
             "prior_strength": "partial"},
            {"change": "added", "from": "GDPR:32(3)", "to": "SOC2:CC2.1", "strength": "partial",
             "prior_strength": None},
            {"change": "strength_changed", "from": "ISO27001:A.5.1", "to": "SOC2:CC1.1", "strength": "full",
             "prior_strength": "partial"}]
        fws = {r["framework"]: r for r in rows(rep, "frameworks")}
        assert [(k, fws[k]["controls_added"], fws[k]["controls_removed"], fws[k]["edges_added"],
                 fws[k]["edges_removed"]) for k in ("SOC2", "ISO27001", "GDPR", "PCIDSS")] == [
            ("SOC2", 0, 0, 1, 1), ("ISO27001", 0, 0, 0, 1), ("GDPR", 1, 1, 1, 2), ("PCIDSS", 0, 0, 0, 0)]
        assert rep.charts[0].labels == ["GDPR"]

        delivered = digests.deliver("mapping-digest", org, now=NOW + 2 * DAY)
        assert delivered.outcome == "not_sent" and delivered.run.summary["controls_added"] == 1
        assert digests.last_snapshot(org, "mapping-digest").data["hash"] == s["mapping_hash"]
        assert "32(3)" in digests.last_snapshot(org, "mapping-digest").data["controls"]["GDPR"].split()
        assert digests.deliver("mapping-digest", org, now=NOW + 3 * DAY).outcome == "nothing_to_send"
        # another org never delivered it: still its own baseline
        assert summary(build("mapping-digest", people["g"].org_id, NOW + 3 * DAY))["status"] == "baseline"
        assert db.session.scalar(select(func.count()).select_from(DigestRun).where(
            DigestRun.org_id == org, DigestRun.status == "nothing_to_send")) == 2


def test_mapping_digest_preview_over_http(app, people, make_api_key):
    client = app.test_client()
    viewer = headers_for(make_api_key, people["v"])
    doc = get_report(client, "mapping-digest", headers=viewer).get_json()
    assert doc["summary"]["status"] == "baseline" and len(doc["sections"]["frameworks"]["rows"]) == 9
    blocks = csv_blocks(get_report(client, "mapping-digest", headers=viewer, format="csv").get_data(as_text=True))
    assert ["status", "baseline"] in blocks["Summary"] and ["controls", "977"] in blocks["Summary"]
    assert blocks["Frameworks"][0][:3] == ["Framework", "Status", "Controls"] and len(blocks["Frameworks"]) == 10


def test_deliver_routes_take_the_preview_parameters(app, sla, people, sign_in):
    """POST /api/governance/compliance/sla-reminders (admin): the body's report parameters reach the delivered
    digest; out-of-range ones are 400 and nothing is recorded; a member may not deliver."""
    client = sign_in(people["d"])
    bad = client.post("/api/governance/compliance/sla-reminders", json={"dueSoonDays": 61})
    assert bad.status_code == 400 and bad.get_json()["error_code"] == "VALIDATION_ERROR"
    assert sign_in(people["b"]).post("/api/governance/compliance/sla-reminders", json={}).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DigestRun)) == 0
    body = client.post("/api/governance/compliance/sla-reminders",
                       json={"dueSoonDays": 60, "lookbackDays": 2, "channels": ["email"]}).get_json()
    assert body["outcome"] == "not_sent" and [x["channel"] for x in body["deliveries"]] == ["email"]
    with app.app_context():
        run = db.session.get(DigestRun, body["runId"])
        assert (run.summary["due_soon_days"], run.summary["due_soon_source"], run.summary["lookback_days"]) == (
            60, "query", 2)
