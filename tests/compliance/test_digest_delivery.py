"""The shared digest machinery (zentro.compliance.digests + digests_api): one declaration per digest gives a
deliver route (owner/admin), a cron route (bearer secret) and scheduled runs, all idempotent per (digest, org,
period). Exercised through the program digest (``digest``), which always has content, and the chain digest."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select

from zentro.audit.models import AuditEvent
from zentro.compliance import digests
from zentro.compliance import report_registry
from zentro.config import SETTINGS
from zentro.extensions import db
from zentro.notify.models import Delivery, DigestRun, DigestSchedule

from tests.notify.servers import SmtpServer

URL = "/api/governance/compliance/digest"
NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone.utc)

EXPECTED = {  # slug -> cron secret, as the endpoint catalog names them
    "digest": "ZENTRO_DIGEST_CRON_SECRET",
    "sla-reminders": "ZENTRO_SLA_CRON_SECRET",
    "evidence-request-sla": "ZENTRO_EVIDENCE_REQUEST_SLA_CRON_SECRET",
    "mapping-digest": "ZENTRO_MAPPING_DIGEST_CRON_SECRET",
    "peak-week-staffing-digest": "ZENTRO_PEAK_WEEK_STAFFING_DIGEST_CRON_SECRET",
    "staffing-action-reminders": "ZENTRO_STAFFING_OVERDUE_REMINDER_CRON_SECRET",
    "staffing-completion-rollup": "ZENTRO_STAFFING_COMPLETION_ROLLUP_CRON_SECRET",
    "staffing-sla-breach-digest": "ZENTRO_STAFFING_SLA_BREACH_DIGEST_CRON_SECRET",
    "cross-staffing-committee-escalation": "ZENTRO_CROSS_STAFFING_COMMITTEE_ESCALATION_CRON_SECRET",
    "staffing-digest-auto-chain": "ZENTRO_STAFFING_DIGEST_AUTO_CHAIN_CRON_SECRET",
    "committee-digest": "ZENTRO_OBLIGATION_COMMITTEE_DIGEST_CRON_SECRET",
    "obligation-density-alerts": "ZENTRO_OBLIGATION_DENSITY_ALERT_CRON_SECRET",
    "attestation-renewal": "ZENTRO_ATTESTATION_RENEWAL_CRON_SECRET",
}


@pytest.fixture
def people(make_member):
    owner = make_member("acme", "owner", email="owner@acme.example")
    admin = make_member("acme", "admin", email="admin@acme.example")
    member = make_member("acme", "member", email="member@acme.example")
    viewer = make_member("acme", "viewer", email="viewer@acme.example")
    other = make_member("globex", "owner", email="owner@globex.example")
    return owner, admin, member, viewer, other


@pytest.fixture
def smtp(app, monkeypatch):
    server = SmtpServer()
    monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def cron(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_DIGEST_CRON_SECRET", "s3cret-digest")
    return {"Authorization": "Bearer s3cret-digest"}


def counts(app) -> tuple[int, int]:
    with app.app_context():
        runs = db.session.scalar(select(func.count()).select_from(DigestRun))
        sent = db.session.scalar(select(func.count()).select_from(Delivery))
        db.session.remove()
    return runs, sent


# --- the registry -----------------------------------------------------------------------------------------

def test_every_catalog_digest_is_declared_once_with_its_preview_secret_and_schedule(app):
    found = digests.discover()
    assert {slug: d.cron_secret for slug, d in found.items()} == EXPECTED
    env = {s.env for s in SETTINGS}
    rules = {(r.rule, m) for r in app.url_map.iter_rules() for m in r.methods}
    for slug, d in found.items():
        assert d.cron_secret in env, slug
        assert report_registry.get(slug).category == "Digests"
        assert (f"/api/governance/compliance/{slug}", "GET") in rules
        assert (f"/api/governance/compliance/{slug}", "POST") in rules
        assert (f"/api/governance/compliance/{slug}/scheduled", "POST") in rules
        from apscheduler.triggers.cron import CronTrigger
        CronTrigger.from_crontab(d.schedule)  # a valid default schedule


@pytest.mark.parametrize("period,key", [("day", "2026-11-26"), ("week", "2026-W48"), ("month", "2026-11"),
                                        ("quarter", "2026-Q4")])
def test_period_keys(period, key):
    assert digests.period_key(period, NOW) == key
    # ISO weeks: 2027-01-01 is a Friday of 2026's week 53
    assert digests.period_key("week", dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)) == "2026-W53"


# --- deliver now ------------------------------------------------------------------------------------------

def test_admin_delivers_once_per_period_and_force_sends_again(app, people, sign_in, smtp):
    owner, admin, *_ = people
    client = sign_in(admin)
    first = client.post(URL, json={})
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["outcome"] in ("delivered", "partial"), body
    email = next(x for x in body["deliveries"] if x["channel"] == "email")
    assert email["status"] == "sent" and email["recipients"] == ["admin@acme.example", "owner@acme.example"]
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"].startswith("[Zentro] ")
    # Slack is not configured and no webhook endpoint exists: said so, never "sent"
    others = {x["channel"]: x for x in body["deliveries"] if x["channel"] != "email"}
    assert others["slack"]["status"] == "not_sent" and "not configured" in others["slack"]["error"]
    assert others["webhook"]["status"] == "not_sent" and "digest.digest" in others["webhook"]["error"]
    assert body["outcome"] == "partial"

    before = counts(app)
    again = client.post(URL, json={}).get_json()
    assert again["outcome"] == "already_delivered" and again["runId"] == body["runId"]
    assert "nothing was sent" in again["detail"]
    assert counts(app) == before and len(smtp.messages) == 1

    forced = client.post(URL, json={"force": True, "channels": ["email"]}).get_json()
    assert forced["outcome"] == "delivered" and forced["forced"] is True and forced["runId"] != body["runId"]
    assert [x["channel"] for x in forced["deliveries"]] == ["email"]
    assert len(smtp.messages) == 2
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.data).where(AuditEvent.action == "digest.delivered")
                                     .order_by(AuditEvent.seq)).all()
        assert [json.loads(a)["forced"] for a in actions] == [False, True]


def test_smtp_not_configured_is_recorded_not_sent(app, people, sign_in, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", None)
    body = sign_in(people[0]).post(URL, json={"channels": ["email"]}).get_json()
    assert body["outcome"] == "not_sent"
    assert body["deliveries"][0]["status"] == "not_sent"
    assert "ZENTRO_SMTP_URL" in body["deliveries"][0]["error"]


@pytest.mark.parametrize("index", [2, 3])  # member, viewer
def test_only_owner_or_admin_may_deliver(app, people, sign_in, index):
    resp = sign_in(people[index]).post(URL, json={})
    assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"
    assert counts(app) == (0, 0)


def test_api_key_needs_write_scope(app, people, make_api_key):
    read_only = make_api_key(people[0], scopes=["compliance:read"])
    resp = app.test_client().post(URL, json={}, headers={"Authorization": f"Bearer {read_only}"})
    assert resp.status_code == 403 and "compliance:write" in resp.get_json()["detail"]
    writer = make_api_key(people[0], scopes=["compliance:write"])
    resp = app.test_client().post(URL, json={"channels": ["email"]}, headers={"Authorization": f"Bearer {writer}"})
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "not_sent"


@pytest.mark.parametrize("payload", [
    {"force": "sometimes"}, {"channels": ["pager"]}, {"channels": []}, {"periodDays": 0}, {"periodDays": "x"},
    {"surprise": 1}, [1, 2], {"orgId": 1},
])
def test_bad_bodies_change_nothing(app, people, sign_in, payload):
    resp = sign_in(people[0]).post(URL, json=payload)
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR", resp.get_json()
    assert counts(app) == (0, 0)


def test_report_parameters_reach_the_delivered_digest(app, people, sign_in):
    body = sign_in(people[0]).post(URL, json={"periodDays": 7, "channels": ["email"]}).get_json()
    with app.app_context():
        run = db.session.get(DigestRun, body["runId"])
        assert run.status == "not_sent" and run.summary  # the report's summary figures are kept with the run


# --- the cron entrypoint ----------------------------------------------------------------------------------

def test_cron_entrypoint_secret_rules(app, people, monkeypatch):
    client = app.test_client()
    org_id = people[0].org_id
    monkeypatch.setitem(app.config, "ZENTRO_DIGEST_CRON_SECRET", None)
    off = client.post(URL + "/scheduled", json={"orgId": org_id}, headers={"Authorization": "Bearer x"})
    assert off.status_code == 404 and "ZENTRO_DIGEST_CRON_SECRET" in off.get_json()["detail"]
    monkeypatch.setitem(app.config, "ZENTRO_DIGEST_CRON_SECRET", "right")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic right"}):
        resp = client.post(URL + "/scheduled", json={"orgId": org_id}, headers=headers)
        assert resp.status_code == 401 and resp.get_json()["error_code"] == "UNAUTHORIZED"
    # another digest's secret does not open this one
    monkeypatch.setitem(app.config, "ZENTRO_SLA_CRON_SECRET", "sla")
    assert client.post(URL + "/scheduled", json={"orgId": org_id},
                       headers={"Authorization": "Bearer sla"}).status_code == 401
    assert counts(app) == (0, 0)


def test_cron_entrypoint_delivers_for_the_named_org_once(app, people, cron):
    client = app.test_client()
    unknown = client.post(URL + "/scheduled", json={"orgId": 999_999}, headers=cron)
    assert unknown.status_code == 404 and unknown.get_json()["error_code"] == "NOT_FOUND"
    bad = client.post(URL + "/scheduled", json={}, headers=cron)
    assert bad.status_code == 400
    assert counts(app) == (0, 0)
    org_id = people[4].org_id
    first = client.post(URL + "/scheduled", json={"orgId": org_id, "channels": ["email"]}, headers=cron).get_json()
    assert first["orgId"] == org_id and first["trigger"] == "cron" and first["outcome"] == "not_sent"
    second = client.post(URL + "/scheduled", json={"orgId": org_id}, headers=cron).get_json()
    assert second["outcome"] == "already_delivered" and second["runId"] == first["runId"]
    with app.app_context():
        recipients = db.session.scalars(select(Delivery.recipients)).all()
        assert recipients == [["owner@globex.example"]]  # the named org's people only


# --- idempotency under concurrency and failure ------------------------------------------------------------

def test_two_workers_at_once_deliver_once(app, people, smtp):
    org_id = people[0].org_id
    results: list[str] = []
    barrier = threading.Barrier(2)

    def worker():
        with app.app_context():
            barrier.wait()
            results.append(digests.deliver("digest", org_id, now=NOW, trigger="schedule", channels=["email"]).outcome)
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["already_delivered", "delivered"]
    assert len(smtp.messages) == 1


def test_a_failure_before_sending_gives_the_period_back(app, people, smtp, monkeypatch):
    org_id = people[0].org_id
    real = report_registry.build

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    with app.app_context():
        monkeypatch.setattr(report_registry, "build", broken)
        failed = digests.deliver("digest", org_id, now=NOW, channels=["email"])
        assert failed.outcome == "failed" and "database went away" in failed.detail
        monkeypatch.setattr(report_registry, "build", real)
        retried = digests.deliver("digest", org_id, now=NOW, channels=["email"])
        assert retried.outcome == "delivered"
        assert [r.status for r in db.session.scalars(select(DigestRun).order_by(DigestRun.id))] == ["failed",
                                                                                                   "delivered"]
        db.session.remove()
    assert len(smtp.messages) == 1


def test_a_failure_after_sending_keeps_the_period(app, people, smtp, monkeypatch):
    org_id = people[0].org_id
    d = digests.get("digest")

    def after(ctx):
        raise RuntimeError("snapshot store full")

    monkeypatch.setattr(d, "after", after)
    with app.app_context():
        assert digests.deliver("digest", org_id, now=NOW, channels=["email"]).outcome == "failed"
        assert digests.deliver("digest", org_id, now=NOW, channels=["email"]).outcome == "already_delivered"
        db.session.remove()
    assert len(smtp.messages) == 1  # never twice


# --- scheduled runs ---------------------------------------------------------------------------------------

def test_run_due_delivers_enabled_due_schedules_and_moves_them_on(app, people):
    acme, globex = people[0].org_id, people[4].org_id
    with app.app_context():
        db.session.add_all([
            DigestSchedule(org_id=acme, digest="digest", enabled=True, cron="0 8 * * 1", channels=["email"],
                           next_run_at=NOW - dt.timedelta(minutes=5)),
            DigestSchedule(org_id=globex, digest="digest", enabled=False, cron="0 8 * * 1", channels=["email"],
                           next_run_at=NOW - dt.timedelta(minutes=5)),
        ])
        db.session.commit()
        results = digests.run_due("digest", NOW)
        assert [(r.org_id, r.outcome) for r in results] == [(acme, "not_sent")]
        row = db.session.get(DigestSchedule, (acme, "digest"))
        assert row.last_run_at == NOW
        assert row.next_run_at == dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc)  # next Monday 08:00
        assert digests.run_due("digest", NOW + dt.timedelta(minutes=1)) == []
        run = db.session.scalar(select(DigestRun))
        assert run.trigger == "schedule" and run.actor == "digest scheduler"
        db.session.remove()


def test_chain_runs_its_parts_in_order_once_per_period(app, people):
    org_id = people[0].org_id
    with app.app_context():
        first = digests.deliver("staffing-digest-auto-chain", org_id, now=NOW, channels=["email"])
        assert [p.digest for p in first.parts] == list(digests.get("staffing-digest-auto-chain").chain)
        again = digests.deliver("staffing-digest-auto-chain", org_id, now=NOW)
        assert again.outcome == "already_delivered" and again.parts == []
        parts = db.session.scalars(select(DigestRun.digest).where(DigestRun.trigger == "chain")
                                   .order_by(DigestRun.id)).all()
        assert parts == list(digests.get("staffing-digest-auto-chain").chain)
        db.session.remove()
