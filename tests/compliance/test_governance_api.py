"""Governance API: deployment profile (validation, tier minimums), effective retention, legal holds and
the retention cron."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from zentro.accounts.models import Org
from zentro.audit.models import AuditEvent, OrgGovernance
from zentro.audit.service import verify_chain
from zentro.extensions import db
from zentro.platform.types import utcnow

try:
    from .governance_helpers import DAY, audit_at, bearer, incident
except ImportError:  # collected without the package __init__
    from governance_helpers import DAY, audit_at, bearer, incident

PROFILE = "/api/deployment/profile"
RETENTION = "/api/deployment/retention"
HOLDS = "/api/governance/legal-holds"
CRON = "/api/deployment/retention/scheduled"


@pytest.fixture
def owner(make_member):
    return make_member("acme", "owner")


@pytest.fixture
def s(owner, sign_in):
    return sign_in(owner)


def _row(app, org_id):
    with app.app_context():
        row = db.session.get(OrgGovernance, org_id)
        out = None if row is None else {c: getattr(row, c) for c in ("deployment_tier", "data_region", "boundary",
                                                                     "audit_retention_days", "incident_retention_days")}
        db.session.remove()
    return out


def test_profile_defaults_and_what_the_tier_implies(s, owner):
    body = s.get(PROFILE).get_json()
    assert body["configured"] is False and body["tier"] == "commercial" and body["data_region"] == "us"
    assert body["audit_retention_days"] is None and body["implies"]["retention_defaults"]["audit_retention_days"] == 365
    s.patch(PROFILE, json={"tier": "fedramp-moderate"})
    body = s.get(PROFILE).get_json()
    assert body["configured"] is True and body["tier_label"] == "FedRAMP Moderate"
    assert body["implies"]["required_region"] == "us" and body["implies"]["allowed_regions"] == ["us"]
    assert "US data region" in body["boundary"]
    assert body["implies"]["retention_minimums"]["audit_retention_days"]["days"] == 1095


def test_patch_changes_only_what_is_sent_and_is_audited(app, s, owner):
    resp = s.patch(PROFILE, json={"tier": "hipaa", "data_region": "eu", "audit_retention_days": 2500})
    assert resp.status_code == 200, resp.get_json()
    assert _row(app, owner.org_id) == {"deployment_tier": "hipaa", "data_region": "eu", "boundary": "",
                                       "audit_retention_days": 2500, "incident_retention_days": None}
    assert s.patch(PROFILE, json={"boundary": "EU production cluster"}).status_code == 200
    assert _row(app, owner.org_id)["audit_retention_days"] == 2500
    assert s.patch(PROFILE, json={"audit_retention_days": None}).get_json()["audit_retention_days"] is None
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "deployment.profile_updated")
                                    .order_by(AuditEvent.seq)).all()
        first = json.loads(events[0].data)["changes"]
        assert first["deployment_tier"] == {"from": "commercial", "to": "hipaa"}
        assert first["audit_retention_days"] == {"from": None, "to": 2500}
        assert {"SOC2:CC6.5", "ISO27001:A.8.10"} <= set(events[0].control_tags.split())
        assert len(events) == 3
        db.session.remove()
    # the org row mirrors region and tier (the overview page shows them)
    with app.app_context():
        org = db.session.get(Org, owner.org_id)
        assert (org.data_region, org.boundary) == ("eu", "hipaa")
        db.session.remove()


@pytest.mark.parametrize("body", [
    {"audit_retention_days": 29}, {"audit_retention_days": 3651}, {"incident_retention_days": 0},
    {"audit_retention_days": "365"}, {"audit_retention_days": 365.5}, {"audit_retention_days": True},
    {"tier": "gov-cloud"}, {"tier": None}, {"tier": "HIPAA"}, {"data_region": "de"}, {"data_region": None},
    {"boundary": "x" * 201}, {"boundary": None}, {"bogus": 1}, {"tier": ["hipaa"]},
], ids=lambda b: json.dumps(b)[:50])
def test_bad_profile_bodies_are_400_and_change_nothing(app, s, owner, body):
    s.patch(PROFILE, json={"tier": "pci"})
    before = _row(app, owner.org_id)
    resp = s.patch(PROFILE, json=body)
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _row(app, owner.org_id) == before


@pytest.mark.parametrize("body,why", [
    ({"tier": "hipaa", "audit_retention_days": 365}, "2190"),
    ({"tier": "hipaa", "incident_retention_days": 2189}, "164.308"),
    ({"tier": "pci", "audit_retention_days": 364}, "10.5.1"),
    ({"tier": "fedramp-moderate", "audit_retention_days": 1094}, "1095"),
    ({"tier": "fedramp-moderate", "data_region": "eu"}, "United States"),
])
def test_overrides_below_the_tier_minimum_are_refused_with_the_reason(app, s, owner, body, why):
    resp = s.patch(PROFILE, json=body)
    assert resp.status_code == 400 and why in resp.get_json()["detail"], resp.get_json()
    assert _row(app, owner.org_id) is None


def test_a_tier_change_checks_the_overrides_already_set(app, s, owner):
    assert s.patch(PROFILE, json={"audit_retention_days": 400, "data_region": "eu"}).status_code == 200
    resp = s.patch(PROFILE, json={"tier": "hipaa"})
    assert resp.status_code == 400 and "2190" in resp.get_json()["detail"]
    assert s.patch(PROFILE, json={"tier": "fedramp-moderate", "audit_retention_days": 1095}).status_code == 400  # eu
    ok = s.patch(PROFILE, json={"tier": "fedramp-moderate", "audit_retention_days": 1095, "data_region": "us",
                                "incident_retention_days": 3650})
    assert ok.status_code == 200 and ok.get_json()["tier"] == "fedramp-moderate"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_owner_or_admin_change_the_profile(app, make_member, sign_in, owner, role):
    other = sign_in(make_member("acme", role))
    assert other.get(PROFILE).status_code == 200 and other.get(RETENTION).status_code == 200
    assert other.patch(PROFILE, json={"tier": "pci"}).status_code == 403
    assert _row(app, owner.org_id) is None
    assert sign_in(make_member("acme", "admin")).patch(PROFILE, json={"tier": "pci"}).status_code == 200


def test_api_keys_need_the_governance_scope(app, owner, make_api_key):
    c = app.test_client()
    read = bearer(make_api_key(owner, ["governance:read"]))
    assert c.get(PROFILE, headers=read).status_code == 200 and c.get(HOLDS, headers=read).status_code == 200
    assert c.patch(PROFILE, json={"tier": "pci"}, headers=read).status_code == 403
    assert c.get(PROFILE, headers=bearer(make_api_key(owner, ["incidents:read"]))).status_code == 403
    assert c.patch(PROFILE, json={"tier": "pci"}, headers=bearer(make_api_key(owner, ["governance:write"]))).status_code == 200
    assert c.get(PROFILE).status_code == 401


def test_each_org_sees_only_its_profile_and_holds(app, s, owner, make_member, sign_in):
    other = make_member("bravo", "owner")
    with app.app_context():
        incident(owner.org_id, utcnow(), hold=True, title="acme private")
        db.session.commit()
    s.patch(PROFILE, json={"tier": "hipaa"})
    b = sign_in(other)
    assert b.get(PROFILE).get_json()["tier"] == "commercial"
    holds = b.get(HOLDS)
    assert holds.get_json() == {"incidents": [], "held_incidents": 0, "flagged_audit_events": 0}
    assert "acme private" in s.get(HOLDS).get_data(as_text=True)


def test_retention_says_which_rule_applies_and_what_the_next_purge_removes(app, s, owner):
    now = utcnow()
    with app.app_context():
        audit_at(owner.org_id, now - 400 * DAY, "old.one")
        held = incident(owner.org_id, now - 400 * DAY, status="closed", hold=True)
        audit_at(owner.org_id, now - 400 * DAY, "old.about.held", target_type="incident", target_id=held.id)
        incident(owner.org_id, now - 400 * DAY, status="closed")
        db.session.commit()
    body = s.get(RETENTION).get_json()
    assert body["audit"]["source"] == "tier_default" and body["audit"]["days"] == 365
    assert "default" in body["audit"]["why"]
    purge = body["next_purge"]
    assert purge["dry_run"] is True and (purge["audit_events"], purge["incidents"]) == (1, 1)
    assert purge["kept_for_legal_hold"] == {"audit_events": 1, "incidents": 1, "held_incidents": 1}
    s.patch(PROFILE, json={"audit_retention_days": 3650})
    body = s.get(RETENTION).get_json()
    assert body["audit"]["source"] == "override" and body["audit"]["days"] == 3650
    assert body["next_purge"]["audit_events"] == 0
    assert "override" in body["audit"]["why"]


def test_legal_holds_list(app, s, owner):
    with app.app_context():
        held = incident(owner.org_id, utcnow(), hold=True, title="Breach investigation")
        incident(owner.org_id, utcnow(), title="Not held")
        db.session.commit()
        held_id = held.id
    body = s.get(HOLDS).get_json()
    assert [(h["id"], h["title"], h["status"]) for h in body["incidents"]] == [(held_id, "Breach investigation", "open")]
    assert body["incidents"][0]["since"] is not None
    assert body["flagged_audit_events"] == 2  # incident.created and incident.legal_hold_set


# --- the cron entrypoint -----------------------------------------------------------------------------------

@pytest.fixture
def cron(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_RETENTION_CRON_SECRET", "retention-secret-for-tests")
    return {"Authorization": "Bearer retention-secret-for-tests"}


def _old_row(app, org_id) -> int:
    with app.app_context():
        row_id = audit_at(org_id, utcnow() - 400 * DAY, "old.one").id
        audit_at(org_id, utcnow(), "fresh")
        db.session.commit()
    return row_id


def test_cron_is_off_without_its_secret(app, owner):
    resp = app.test_client().post(CRON, json={"orgId": owner.org_id}, headers={"Authorization": "Bearer x"})
    assert resp.status_code == 404


def test_cron_refuses_a_wrong_secret_or_another_scheme(app, owner, cron, sign_in, make_api_key):
    old = _old_row(app, owner.org_id)
    c = app.test_client()
    assert c.post(CRON, json={"orgId": owner.org_id}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post(CRON, json={"orgId": owner.org_id}).status_code == 401
    assert c.post(CRON, json={"orgId": owner.org_id}, headers=bearer(make_api_key(owner))).status_code == 401
    with app.app_context():
        assert db.session.get(AuditEvent, old) is not None


def test_cron_purges_the_named_org(app, owner, cron, make_member):
    other = make_member("bravo", "owner")
    old, other_old = _old_row(app, owner.org_id), _old_row(app, other.org_id)
    c = app.test_client()
    dry = c.post(CRON, json={"orgId": owner.org_id, "dryRun": True}, headers=cron)
    assert dry.status_code == 200 and dry.get_json()["audit_events"] == 1 and dry.get_json()["dry_run"] is True
    with app.app_context():
        assert db.session.get(AuditEvent, old) is not None
    done = c.post(CRON, json={"orgId": owner.org_id}, headers=cron)
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["audit_events"] == 1 and len(body["checkpoints"]) == 1 and body["audit_event_id"]
    with app.app_context():
        assert db.session.get(AuditEvent, old) is None and db.session.get(AuditEvent, other_old) is not None
        assert verify_chain(owner.org_id).ok
        db.session.remove()


@pytest.mark.parametrize("body,status", [
    ({"orgId": 987654}, 404), ({}, 400), ({"orgId": "1"}, 400), ({"orgId": 0}, 400), ({"orgId": 1, "dryRun": "yes"}, 400),
    ({"orgId": 1, "extra": 1}, 400),
])
def test_cron_bad_bodies(app, owner, cron, body, status):
    resp = app.test_client().post(CRON, json=body, headers=cron)
    assert resp.status_code == status, resp.get_json()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "retention.purged")) == 0
        db.session.remove()
