"""Assessor tokens: management over the API, and what a token can (and cannot) reach."""
from __future__ import annotations

import datetime as dt
import functools
import io
import json
import re
import zipfile

import pytest
from flask import jsonify
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from zentro.accounts.models import AssessorToken
from zentro.audit.models import AuditEvent
from zentro.compliance import assessor
from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.platform.auth import current_principal
from zentro.platform.routes import REGISTRY, RouteMeta
from zentro.platform.types import utcnow

try:
    from .governance_helpers import TEST_ACTOR, audit_at, bearer, new_token
except ImportError:  # collected without the package __init__
    from governance_helpers import TEST_ACTOR, audit_at, bearer, new_token

BASE = "/api/governance/compliance"
STUB = "stub_assessor.export"


@pytest.fixture
def alpha(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def bravo(make_member):
    return make_member("bravo", "owner")


def _count(app, model, *where) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model).where(*where))
        db.session.remove()
    return n


def _audit(app, org_id: int, action: str) -> list[dict]:
    with app.app_context():
        rows = [{"actor_type": e.actor_type, "actor_id": e.actor_id, "target_type": e.target_type,
                 "target_id": e.target_id, "tags": e.control_tags.split(), "data": json.loads(e.data)}
                for e in db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == org_id,
                                                                      AuditEvent.action == action).order_by(AuditEvent.seq))]
        db.session.remove()
    return rows


class StubQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    periodDays: int = Field(30, ge=1, le=730)


@pytest.fixture
def stub(app, monkeypatch):
    """Map evidence-export to a stub GET endpoint that lists the caller's org's incident titles. The
    decorated wrapper refuses to run: the assessor route must call the undecorated view."""

    def export(query: StubQuery):
        p = current_principal()
        titles = db.session.scalars(select(Incident.title).where(Incident.org_id == p.org.id).order_by(Incident.id)).all()
        return jsonify(org_id=p.org.id, periodDays=query.periodDays, titles=titles)

    @functools.wraps(export)
    def wrapper(**kw):
        raise AssertionError("the assessor route must bypass the endpoint's own auth wrapper")

    monkeypatch.setitem(app.view_functions, STUB, wrapper)
    monkeypatch.setitem(REGISTRY, STUB, RouteMeta(kind="api", endpoint=STUB, rule="/stub", methods=("GET",), query=StubQuery))
    monkeypatch.setitem(assessor.RESOURCES, "evidence-export", STUB)


def _incident(app, org_id: int, title: str) -> None:
    from zentro.incidents.service import create_incident

    with app.app_context():
        create_incident(org_id, title=title, severity="low", actor=TEST_ACTOR)
        db.session.commit()
        db.session.remove()


# --- managing tokens -----------------------------------------------------------------------------------------

def test_create_list_and_revoke(app, alpha, sign_in):
    s = sign_in(alpha)
    resp = s.post(f"{BASE}/assessor-tokens", json={"name": "Audit firm", "resources": ["crosswalk", "workbook"],
                                                   "expires_in_days": 30})
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    secret = made["token"]
    assert secret.startswith("zentro_ca_") and made["prefix"] == secret[:18] and made["state"] == "active"
    assert made["resources"] == ["crosswalk", "workbook"]
    expires = dt.datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (utcnow() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)

    listed = s.get(f"{BASE}/assessor-tokens")
    assert listed.status_code == 200
    assert secret not in listed.get_data(as_text=True) and "token" not in listed.get_json()["data"][0]
    assert [t["name"] for t in listed.get_json()["data"]] == ["Audit firm"]
    (created,) = _audit(app, alpha.org_id, "assessor_token.created")
    assert set(created["tags"]) == {"SOC2:CC6.2", "ISO27001:A.5.18"} and created["target_id"] == str(made["id"])

    revoked = s.delete(f"{BASE}/assessor-tokens/{made['id']}")
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    assert s.delete(f"{BASE}/assessor-tokens/{made['id']}").status_code == 200  # already revoked: no second event
    (rev,) = _audit(app, alpha.org_id, "assessor_token.revoked")
    assert set(rev["tags"]) == {"SOC2:CC6.2", "ISO27001:A.5.18"}
    assert app.test_client().get(f"{BASE}/assessor/crosswalk", headers=bearer(secret)).status_code == 401


GOOD = {"name": "Audit firm", "resources": ["crosswalk"], "expires_in_days": 30}


@pytest.mark.parametrize("body", [
    {**GOOD, "name": ""}, {**GOOD, "name": "   "}, {**GOOD, "name": "x" * 101}, {**GOOD, "name": 7},
    {**GOOD, "resources": []}, {**GOOD, "resources": ["crosswalk", "crosswalk"]}, {**GOOD, "resources": ["audit-log"]},
    {**GOOD, "resources": "crosswalk"}, {**GOOD, "resources": [1]},
    {**GOOD, "expires_in_days": 0}, {**GOOD, "expires_in_days": 366}, {**GOOD, "expires_in_days": "30"},
    {**GOOD, "expires_in_days": True}, {**GOOD, "expires_in_days": 1.5},
    {k: v for k, v in GOOD.items() if k != "resources"}, {**GOOD, "scopes": ["*"]},
], ids=lambda b: json.dumps(b)[:60])
def test_bad_bodies_are_400_and_store_nothing(app, alpha, sign_in, body):
    resp = sign_in(alpha).post(f"{BASE}/assessor-tokens", json=body)
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _count(app, AssessorToken) == 0


def test_malformed_json_is_400(app, alpha, sign_in):
    resp = sign_in(alpha).post(f"{BASE}/assessor-tokens", data="{nope", content_type="application/json")
    assert resp.status_code == 400 and _count(app, AssessorToken) == 0


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_owner_or_admin_manage_tokens(app, alpha, make_member, sign_in, role):
    tok_id, _ = new_token(app, alpha.org_id, ["crosswalk"])
    s = sign_in(make_member("alpha", role))
    assert s.get(f"{BASE}/assessor-tokens").status_code == 200
    assert s.post(f"{BASE}/assessor-tokens", json=GOOD).status_code == 403
    assert s.delete(f"{BASE}/assessor-tokens/{tok_id}").status_code == 403
    assert _count(app, AssessorToken) == 1 and _count(app, AssessorToken, AssessorToken.revoked_at.is_not(None)) == 0
    admin = sign_in(make_member("alpha", "admin"))
    assert admin.post(f"{BASE}/assessor-tokens", json=GOOD).status_code == 201


def test_api_keys_need_the_assessor_tokens_scope(app, alpha, make_api_key):
    client = app.test_client()
    read_only = bearer(make_api_key(alpha, ["assessor_tokens:read"]))
    assert client.get(f"{BASE}/assessor-tokens", headers=read_only).status_code == 200
    assert client.post(f"{BASE}/assessor-tokens", json=GOOD, headers=read_only).status_code == 403
    other_scope = bearer(make_api_key(alpha, ["governance:read"]))
    assert client.get(f"{BASE}/assessor-tokens", headers=other_scope).status_code == 403
    assert client.post(f"{BASE}/assessor-tokens", json=GOOD, headers=bearer(make_api_key(alpha))).status_code == 201


def test_another_orgs_token_is_not_found(app, alpha, bravo, sign_in):
    tok_id, _ = new_token(app, alpha.org_id, ["crosswalk"], name="alpha private")
    s = sign_in(bravo)
    assert s.delete(f"{BASE}/assessor-tokens/{tok_id}").status_code == 404
    assert "alpha private" not in s.get(f"{BASE}/assessor-tokens").get_data(as_text=True)
    assert _count(app, AssessorToken, AssessorToken.revoked_at.is_not(None)) == 0


# --- using a token -------------------------------------------------------------------------------------------

def test_a_token_reads_only_its_own_orgs_rows(app, alpha, bravo, stub):
    _incident(app, alpha.org_id, "alpha secret")
    _incident(app, bravo.org_id, "bravo secret")
    _, a_secret = new_token(app, alpha.org_id, ["evidence-export"])
    _, b_secret = new_token(app, bravo.org_id, ["evidence-export"])
    client = app.test_client()
    a = client.get(f"{BASE}/assessor/evidence-export", headers=bearer(a_secret))
    assert a.status_code == 200, a.get_json()
    assert a.get_json() == {"org_id": alpha.org_id, "periodDays": 30, "titles": ["alpha secret"]}
    b = client.get(f"{BASE}/assessor/evidence-export", headers=bearer(b_secret))
    assert b.get_json()["titles"] == ["bravo secret"]


def test_the_targets_query_model_validates(app, alpha, stub):
    _, secret = new_token(app, alpha.org_id, ["evidence-export"])
    client = app.test_client()
    url = f"{BASE}/assessor/evidence-export"
    assert client.get(url + "?periodDays=90", headers=bearer(secret)).get_json()["periodDays"] == 90
    for bad in ("periodDays=0", "periodDays=abc", "periodDays=731", "surprise=1"):
        resp = client.get(f"{url}?{bad}", headers=bearer(secret))
        assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR", bad


def test_not_granted_is_403_and_audited_unknown_is_404(app, alpha, stub):
    tok_id, secret = new_token(app, alpha.org_id, ["crosswalk"])
    client = app.test_client()
    denied = client.get(f"{BASE}/assessor/evidence-export", headers=bearer(secret))
    assert denied.status_code == 403 and "crosswalk" in denied.get_json()["detail"]
    (row,) = _audit(app, alpha.org_id, "assessor.denied")
    assert row["data"]["resource"] == "evidence-export" and row["data"]["token_id"] == tok_id
    assert client.get(f"{BASE}/assessor/audit-log", headers=bearer(secret)).status_code == 404
    assert client.get(f"{BASE}/assessor/..%2Fassessor-tokens", headers=bearer(secret)).status_code == 404
    assert _audit(app, alpha.org_id, "assessor.accessed") == []


def test_every_use_is_audited_and_committed(app, alpha, stub):
    tok_id, secret = new_token(app, alpha.org_id, ["evidence-export"])
    client = app.test_client()
    for days in (7, 30, 90):
        assert client.get(f"{BASE}/assessor/evidence-export?periodDays={days}", headers=bearer(secret)).status_code == 200
    rows = _audit(app, alpha.org_id, "assessor.accessed")  # read back in a fresh session: committed
    assert [r["data"]["query"] for r in rows] == [{"periodDays": "7"}, {"periodDays": "30"}, {"periodDays": "90"}]
    assert all(r["data"]["resource"] == "evidence-export" and r["data"]["token_id"] == tok_id for r in rows)
    assert all(r["tags"] == ["SOC2:CC4.1"] and r["actor_type"] == "assessor_token" and r["actor_id"] == str(tok_id)
               for r in rows)
    with app.app_context():
        assert db.session.get(AssessorToken, tok_id).last_used_at is not None


def test_expired_and_revoked_tokens_are_401(app, alpha, stub):
    expired_id, expired = new_token(app, alpha.org_id, ["evidence-export"], days=1)
    revoked_id, revoked = new_token(app, alpha.org_id, ["evidence-export"])
    with app.app_context():
        db.session.get(AssessorToken, expired_id).expires_at = utcnow() - dt.timedelta(seconds=1)
        db.session.get(AssessorToken, revoked_id).revoked_at = utcnow()
        db.session.commit()
    client = app.test_client()
    for secret in (expired, revoked, expired[:-2] + "xx", "zentro_ca_nothing"):
        resp = client.get(f"{BASE}/assessor/evidence-export", headers=bearer(secret))
        assert resp.status_code == 401 and resp.get_json()["error_code"] == "UNAUTHORIZED"
    assert _audit(app, alpha.org_id, "assessor.accessed") == []


def test_other_credentials_cannot_use_the_assessor_route(app, alpha, sign_in, make_api_key, stub):
    url = f"{BASE}/assessor/evidence-export"
    assert sign_in(alpha).get(url).status_code == 403
    assert app.test_client().get(url, headers=bearer(make_api_key(alpha))).status_code == 403
    assert app.test_client().get(url).status_code == 401


def test_an_assessor_token_is_refused_everywhere_else(app, alpha, stub):
    _, secret = new_token(app, alpha.org_id, list(assessor.RESOURCES))
    client = app.test_client()
    for url in ("/api/deployment/profile", f"{BASE}/assessor-tokens", "/api/governance/legal-holds", "/api/v1/incidents"):
        assert client.get(url, headers=bearer(secret)).status_code == 403, url
    assert client.get("/compliance/governance", headers=bearer(secret)).status_code == 403
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.open(f"{BASE}/assessor/evidence-export", method=method, headers=bearer(secret)).status_code == 405


def test_an_assessor_token_cannot_write_anywhere(app, alpha, monkeypatch):
    """Every mutating route in the app, called with a token granted every resource, is refused and
    nothing changes."""
    from tests.platform.test_isolation import whole_state

    _, secret = new_token(app, alpha.org_id, list(assessor.RESOURCES))
    client = app.test_client()
    client.get("/api/deployment/profile", headers=bearer(secret))  # first use stamps last_used_at (once a minute)
    # Slack's and Lemon Squeezy's endpoints are off (503) without their signing secrets; switched on they must
    # refuse the token (401)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_SIGNING_SECRET", "assessor-test-slack-secret")
    monkeypatch.setitem(app.config, "ZENTRO_LEMONSQUEEZY_SIGNING_SECRET", "assessor-test-lemon-secret")
    with app.app_context():  # one call per write route: more than the free plan's 60 calls a minute
        from zentro.accounts.models import Org

        db.session.get(Org, alpha.org_id).plan = "enterprise"
        db.session.commit()
    with app.app_context():
        before = whole_state()
    tried = 0
    for meta in list(REGISTRY.values()):
        for method in set(meta.methods) - assessor.READ_METHODS:
            url = re.sub(r"<(?:\w+:)?\w+>", "1", meta.rule)
            resp = client.open(url, method=method, json={}, headers=bearer(secret))
            assert resp.status_code in (401, 403, 404, 405), f"{method} {url}: {resp.status_code}"
            tried += 1
    assert tried > 10
    with app.app_context():
        assert whole_state() == before


# --- the resource map ----------------------------------------------------------------------------------------

def test_no_resource_maps_to_a_mutating_route(app):
    assessor.check_read_only()  # raises on a mutating route
    for name, endpoint in assessor.RESOURCES.items():
        if endpoint in REGISTRY:
            assert set(REGISTRY[endpoint].methods) <= {"GET", "HEAD", "OPTIONS"}, name
    with pytest.raises(assessor.MutatingResourceError, match="create_assessor_token"):
        assessor.check_read_only({"sneaky": "compliance_assessor.create_assessor_token"})


def test_the_app_refuses_to_start_with_a_mutating_resource(monkeypatch):
    from zentro import create_app

    monkeypatch.setitem(assessor.RESOURCES, "sneaky", "governance.update_deployment_profile")
    with pytest.raises(assessor.MutatingResourceError):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "SECRET_KEY": "x"})


def test_a_mutating_mapping_is_refused_per_call_too(app, alpha, monkeypatch):
    monkeypatch.setitem(assessor.RESOURCES, "crosswalk", "compliance_assessor.create_assessor_token")
    _, secret = new_token(app, alpha.org_id, ["crosswalk"])
    resp = app.test_client().get(f"{BASE}/assessor/crosswalk", headers=bearer(secret))
    assert resp.status_code == 403 and _count(app, AssessorToken) == 1


def test_the_map_names_every_resource_of_the_brief():
    assert set(assessor.RESOURCES) >= {"evidence-export", "crosswalk", "baseline-comparison", "evidence-freshness",
                                       "workbook", "type-ii", "iso-assessment", "pci-dss", "hipaa", "nist-csf", "cis-v8",
                                       "cmmc-l2", "gdpr-art32", "fedramp-poam"}
    assert assessor.RESOURCES["fedramp-poam"] == "compliance.fedramp_poam"
    assert assessor.RESOURCES["workbook"] == "compliance_bundles.workbook"


# --- the real endpoints (as they land) -----------------------------------------------------------------------

def _body_text(resp) -> str:
    if resp.mimetype == "application/zip":
        with zipfile.ZipFile(io.BytesIO(resp.get_data())) as zf:
            return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
    return resp.get_data(as_text=True)


@pytest.mark.parametrize("resource", sorted(assessor.RESOURCES))
def test_each_real_resource_answers_with_only_the_tokens_org(app, alpha, bravo, resource, tmp_path, monkeypatch):
    endpoint = assessor.RESOURCES[resource]
    if endpoint not in REGISTRY:
        pytest.skip(f"{endpoint} is not built yet")
    monkeypatch.setitem(app.config, "ZENTRO_STORAGE_DIR", str(tmp_path))
    with app.app_context():
        audit_at(alpha.org_id, utcnow() - dt.timedelta(days=1), "alpha.only.action", tags=("SOC2:CC6.1",))
        audit_at(bravo.org_id, utcnow() - dt.timedelta(days=1), "bravo.only.action", tags=("SOC2:CC6.1",))
        db.session.commit()
    tok_id, secret = new_token(app, alpha.org_id, [resource])
    resp = app.test_client().get(f"{BASE}/assessor/{resource}", headers=bearer(secret))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    text = _body_text(resp)
    assert "bravo.only.action" not in text and "bravo" not in text.lower()
    if resource in ("evidence-export", "workbook"):
        assert "alpha.only.action" in text
    (row,) = _audit(app, alpha.org_id, "assessor.accessed")
    assert row["data"]["resource"] == resource and row["data"]["token_id"] == tok_id


def test_a_real_resource_keeps_its_own_formats_and_validation(app, alpha):
    if assessor.RESOURCES["crosswalk"] not in REGISTRY:
        pytest.skip("compliance.crosswalk is not built yet")
    _, secret = new_token(app, alpha.org_id, ["crosswalk"])
    client = app.test_client()
    csv = client.get(f"{BASE}/assessor/crosswalk?format=csv&periodDays=90", headers=bearer(secret))
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.get_data(as_text=True).count("\n") > 1  # a header and rows
    csv.close()  # a streamed body holds its transaction until consumed and closed
    for bad in ("periodDays=0", "format=xml"):
        resp = client.get(f"{BASE}/assessor/crosswalk?{bad}", headers=bearer(secret))
        assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR", bad
    assert [r["data"]["query"] for r in _audit(app, alpha.org_id, "assessor.accessed")] == [
        {"format": "csv", "periodDays": "90"}]
