"""Evidence bundles over HTTP: create / list / get / download, roles, tenants, bad input, the cron entrypoint,
the public key, webhook delivery, and the bundle pages."""
from __future__ import annotations

import hashlib
import json
import re

import pytest
import sqlalchemy as sa

from zentro.audit.models import AuditEvent
from zentro.compliance.bundles import verify_bundle_bytes
from zentro.compliance.models import EvidenceBundle
from zentro.extensions import db

from .bundle_helpers import (bundle_env, change_one_byte, entries, manifest_of, receiver, set_webhook,  # noqa: F401
                             stored_files)

BASE = "/api/governance/compliance"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def session(owner, sign_in):
    return sign_in(owner)


def _count(app) -> int:
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(EvidenceBundle))
        db.session.remove()
    return n


def _create(client, body=None, **kw):
    return client.post(f"{BASE}/bundles", json=body or {"window": "7d"}, **kw)


def test_create_list_get_download(app, session, bundle_env):
    resp = _create(session, {"window": "30d"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made = resp.get_json()
    assert made["seq"] == 1 and made["kind"] == "evidence" and made["window"]["days"] == 30
    assert made["key_id"] == bundle_env.key_id and made["file_count"] == 5 and made["webhook"]["status"] == ""
    assert made["download_url"] == f"{BASE}/bundles/{made['id']}/download"
    second = _create(session, {"periodDays": 3}).get_json()
    assert second["seq"] == 2 and second["window"]["days"] == 3 and second["prev_manifest_sha256"] == made["manifest_sha256"]

    listed = session.get(f"{BASE}/bundles").get_json()
    assert [b["seq"] for b in listed["data"]] == [2, 1] and listed["next_cursor"] is None

    detail = session.get(f"{BASE}/bundles/{second['id']}").get_json()
    assert detail["verification"]["ok"] is True and detail["verification"]["problems"] == []
    assert detail["verification"]["chain_checked"] is True and detail["previous"]["seq"] == 1
    assert [f["path"] for f in detail["files"]] == ["README.txt", "evidence/audit_events.csv",
                                                    "evidence/chain_verification.json", "evidence/policies.json",
                                                    "public_key.pem"]

    dl = session.get(made["download_url"])
    assert dl.status_code == 200 and dl.mimetype == "application/zip"
    assert dl.headers["Content-Disposition"] == 'attachment; filename=zentro-alpha-evidence-000001.zip'
    assert hashlib.sha256(dl.data).hexdigest() == made["zip_sha256"]
    key = session.get(f"{BASE}/bundles/public-key")
    assert key.status_code == 200 and key.mimetype == "application/x-pem-file" and key.headers["X-Key-Id"] == made["key_id"]
    assert verify_bundle_bytes(dl.data, expected_prev="", trusted_pub_pem=key.data).ok


def test_list_pages_with_a_cursor(app, session, bundle_env):
    for _ in range(3):
        assert _create(session).status_code == 201
    page1 = session.get(f"{BASE}/bundles?limit=2").get_json()
    assert [b["seq"] for b in page1["data"]] == [3, 2] and page1["next_cursor"]
    page2 = session.get(f"{BASE}/bundles?limit=2&cursor={page1['next_cursor']}").get_json()
    assert [b["seq"] for b in page2["data"]] == [1] and page2["next_cursor"] is None
    assert session.get(f"{BASE}/bundles?cursor=bogus!").status_code == 400
    assert session.get(f"{BASE}/bundles?limit=0").status_code == 400


@pytest.mark.parametrize("body", [
    {}, {"window": "14d"}, {"window": ""}, {"window": None}, {"window": 30}, {"periodDays": 0}, {"periodDays": 731},
    {"periodDays": "30"}, {"periodDays": 2.5}, {"periodDays": True}, {"window": "7d", "periodDays": 7},
    {"window": "7d", "deliver": "yes"}, {"window": "7d", "extra": 1}, [], "7d",
])
def test_bad_bodies_are_400_and_store_nothing(app, session, bundle_env, body):
    resp = session.post(f"{BASE}/bundles", json=body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _count(app) == 0 and stored_files(bundle_env) == []


def test_non_json_body_is_refused(app, session, bundle_env):
    assert session.post(f"{BASE}/bundles", data="window=7d", content_type="text/plain").status_code == 415
    assert session.post(f"{BASE}/bundles", data="{not json", content_type="application/json").status_code == 400
    assert _count(app) == 0


def test_integral_float_period_is_accepted(app, session, bundle_env):
    resp = _create(session, {"periodDays": 14.0})
    assert resp.status_code == 201 and resp.get_json()["window"]["days"] == 14


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_only_owner_or_admin_creates(app, make_member, sign_in, bundle_env, role):
    client = sign_in(make_member("alpha", role))
    resp = _create(client)
    assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"
    assert _count(app) == 0 and stored_files(bundle_env) == []
    assert client.get(f"{BASE}/bundles").status_code == 200  # reading is fine
    admin = sign_in(make_member("alpha", "admin"))
    assert _create(admin).status_code == 201


def test_other_org_gets_404_and_sees_nothing(app, session, make_member, sign_in, make_api_key, bundle_env):
    made = _create(session).get_json()
    bravo = make_member("bravo", "owner")
    for client, headers in ((sign_in(bravo), {}), (app.test_client(), {"Authorization": f"Bearer {make_api_key(bravo)}"})):
        for url in (f"{BASE}/bundles/{made['id']}", f"{BASE}/bundles/{made['id']}/download",
                    f"/compliance/bundles/{made['id']}"):
            resp = client.get(url, headers=headers)
            expected = 403 if headers and url.startswith("/compliance/") else 404  # pages take sessions only
            assert resp.status_code == expected, url
            assert session.member.email not in resp.get_data(as_text=True)  # created_by of org A's bundle
        assert client.get(f"{BASE}/bundles", headers=headers).get_json()["data"] == []
    assert session.get(f"{BASE}/bundles/999999").status_code == 404


def test_api_key_scopes(app, owner, make_api_key, bundle_env):
    c = app.test_client()
    read_only = {"Authorization": f"Bearer {make_api_key(owner, ['compliance:read'])}"}
    other_scope = {"Authorization": f"Bearer {make_api_key(owner, ['incidents:read'])}"}
    full = {"Authorization": f"Bearer {make_api_key(owner)}"}
    assert c.get(f"{BASE}/bundles", headers=read_only).status_code == 200
    assert c.post(f"{BASE}/bundles", json={"window": "7d"}, headers=read_only).status_code == 403
    assert c.get(f"{BASE}/bundles", headers=other_scope).status_code == 403
    assert c.get(f"{BASE}/bundles/public-key", headers=other_scope).status_code == 403
    assert _count(app) == 0
    assert c.post(f"{BASE}/bundles", json={"window": "7d"}, headers=full).status_code == 201
    assert c.get(f"{BASE}/bundles", headers={}).status_code == 401
    assert c.get(f"{BASE}/bundles/public-key").status_code == 401


def test_idempotency_key_replays_without_a_second_bundle(app, session, bundle_env):
    first = _create(session, headers={"Idempotency-Key": "bundle-1"})
    again = _create(session, headers={"Idempotency-Key": "bundle-1"})
    assert first.status_code == again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["id"] == first.get_json()["id"] and _count(app) == 1
    assert _create(session, {"window": "30d"}, headers={"Idempotency-Key": "bundle-1"}).status_code == 422


def test_get_reports_a_tampered_stored_file_by_name(app, session, bundle_env):
    made = _create(session).get_json()
    with app.app_context():
        key = db.session.get(EvidenceBundle, made["id"]).storage_key
    path = bundle_env.storage_dir / key
    from .bundle_helpers import rewrite_zip

    data = path.read_bytes()
    path.write_bytes(rewrite_zip(data, replace={
        "evidence/policies.json": change_one_byte(entries(data)["evidence/policies.json"])}))
    v = session.get(f"{BASE}/bundles/{made['id']}").get_json()["verification"]
    assert v["ok"] is False and [(p["kind"], p["path"]) for p in v["problems"]] == [("changed", "evidence/policies.json")]
    path.unlink()
    v = session.get(f"{BASE}/bundles/{made['id']}").get_json()["verification"]
    assert v["ok"] is False and v["problems"][0]["kind"] == "missing"


def test_deleted_predecessor_breaks_the_chain_on_get(app, session, bundle_env):
    first = _create(session).get_json()
    second = _create(session).get_json()
    with app.app_context():
        db.session.execute(sa.delete(EvidenceBundle).where(EvidenceBundle.id == first["id"]))
        db.session.commit()
    v = session.get(f"{BASE}/bundles/{second['id']}").get_json()["verification"]
    assert [p["kind"] for p in v["problems"]] == ["chain_broken"]


def test_deliver_posts_to_the_org_webhook(app, owner, session, bundle_env, receiver, monkeypatch):
    made = _create(session, {"window": "7d", "deliver": True}).get_json()
    assert made["webhook"] == {"url": "", "status": "not_configured",
                               "detail": "No bundle webhook URL is set for this organisation."}
    set_webhook(app, owner.org_id, receiver.url)
    refused = _create(session, {"window": "7d", "deliver": True}).get_json()
    assert refused["webhook"]["status"] == "failed" and "loopback" in refused["webhook"]["detail"]
    assert receiver.calls == []
    monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_ALLOW_PRIVATE", True)
    sent = _create(session, {"window": "7d", "deliver": True}).get_json()
    assert sent["webhook"] == {"url": receiver.url, "status": "delivered", "detail": "HTTP 200"}
    payload = json.loads(receiver.calls[0]["body"])
    assert payload["bundle"]["id"] == sent["id"] and payload["download_url"].endswith(f"/bundles/{sent['id']}/download")
    assert payload["download_url"].startswith("http")
    assert session.get(f"{BASE}/bundles/{sent['id']}").get_json()["webhook"]["status"] == "delivered"
    not_asked = _create(session, {"window": "7d"}).get_json()
    assert not_asked["webhook"]["status"] == "" and len(receiver.calls) == 1


# --- cron --------------------------------------------------------------------------------------------------

def test_cron_entrypoint(app, owner, make_member, bundle_env, monkeypatch):
    c = app.test_client()
    url = f"{BASE}/bundles/scheduled"
    body = {"orgId": owner.org_id, "window": "30d"}
    assert c.post(url, json=body, headers={"Authorization": "Bearer anything"}).status_code == 404  # secret unset
    monkeypatch.setitem(app.config, "ZENTRO_BUNDLE_CRON_SECRET", "s3cret-cron-value")
    assert c.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post(url, json=body).status_code == 401
    assert _count(app) == 0
    assert c.post(url, json={"orgId": 999999, "window": "30d"},
                  headers={"Authorization": "Bearer s3cret-cron-value"}).status_code == 404
    for bad in ({"orgId": owner.org_id}, {"orgId": "1", "window": "7d"}, {"window": "7d"},
                {"orgId": owner.org_id, "window": "7d", "periodDays": 7}, {"orgId": 0, "window": "7d"}):
        assert c.post(url, json=bad, headers={"Authorization": "Bearer s3cret-cron-value"}).status_code == 400, bad
    assert _count(app) == 0
    bravo = make_member("bravo", "owner")
    resp = c.post(url, json={"orgId": bravo.org_id, "periodDays": 90}, headers={"Authorization": "Bearer s3cret-cron-value"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made = resp.get_json()
    assert made["seq"] == 1 and made["window"]["days"] == 90 and made["created_by"] == "scheduled bundle (cron)"
    with app.app_context():
        row = db.session.get(EvidenceBundle, made["id"])
        assert row.org_id == bravo.org_id
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "bundle.created")).one()
        assert event.org_id == bravo.org_id and event.actor_type == "system"


def test_session_cannot_use_the_cron_route(app, session, bundle_env, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_BUNDLE_CRON_SECRET", "s3cret-cron-value")
    assert session.post(f"{BASE}/bundles/scheduled", json={"orgId": 1, "window": "7d"}).status_code == 401
    assert _count(app) == 0


# --- pages --------------------------------------------------------------------------------------------------

def test_pages_list_create_and_detail(app, session, make_member, sign_in, bundle_env):
    page = session.get("/compliance/bundles")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Create bundle" in html and "No bundles yet" in html
    resp = session.post("/compliance/bundles", data={"window": "90d", "csrf_token": session.csrf})
    assert resp.status_code == 303
    detail_url = resp.headers["Location"]
    detail = session.get(detail_url).get_data(as_text=True)
    assert "Evidence bundle #1" in detail and "Bundle #1 created" in detail and "Verified" in detail
    assert "evidence/audit_events.csv" in detail and "public-key" in detail
    listing = session.get("/compliance/bundles").get_data(as_text=True)
    assert re.search(r">#1</a>", listing) and "✓ Verified" in listing and "/download" in listing

    bad = session.post("/compliance/bundles", data={"window": "2d", "csrf_token": session.csrf})
    assert bad.status_code == 400 and "Choose a window" in bad.get_data(as_text=True)
    assert _count(app) == 1

    viewer = sign_in(make_member("alpha", "viewer"))
    vpage = viewer.get("/compliance/bundles").get_data(as_text=True)
    assert "Create bundle" not in vpage and ">#1</a>" in vpage
    assert viewer.post("/compliance/bundles", data={"window": "7d", "csrf_token": viewer.csrf}).status_code == 403
    assert _count(app) == 1


def test_detail_page_names_tampered_files(app, session, bundle_env):
    made = _create(session).get_json()
    with app.app_context():
        key = db.session.get(EvidenceBundle, made["id"]).storage_key
    path = bundle_env.storage_dir / key
    from .bundle_helpers import rewrite_zip

    path.write_bytes(rewrite_zip(path.read_bytes(), add={"evidence/planted.csv": b"x"}))
    html = session.get(f"/compliance/bundles/{made['id']}").get_data(as_text=True)
    assert "1 problem" in html and "evidence/planted.csv" in html and "added" in html
    assert "1 problem" in session.get("/compliance/bundles").get_data(as_text=True)


def test_pages_need_a_session(app, bundle_env):
    c = app.test_client()
    resp = c.get("/compliance/bundles")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


# --- the assessor workbook -----------------------------------------------------------------------------------

def test_workbook_holds_every_assessment_signed_and_chained(app, session, bundle_env):
    from zentro.compliance.packs import PACKS

    first = _create(session).get_json()
    resp = session.get(f"{BASE}/workbook?periodDays=60")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == "application/zip" and "attachment" in resp.headers["Content-Disposition"]
    data = resp.data
    files = entries(data)
    manifest = manifest_of(data)
    assert manifest["kind"] == "workbook" and manifest["seq"] == 2 and manifest["window"]["days"] == 60
    assert manifest["prev_manifest_sha256"] == first["manifest_sha256"]
    expected = {"evidence/audit_events.csv", "evidence/policies.json", "evidence/chain_verification.json",
                "crosswalk/crosswalk.csv", "README.txt", "public_key.pem", "manifest.json", "manifest.sig"}
    for slug in PACKS:
        if slug != "crosswalk":
            expected |= {f"assessments/{slug}.csv", f"assessments/{slug}.json"}
    assert set(files) == expected
    assert json.loads(files["assessments/type-ii.json"])["report"] == "type-ii"
    assert files["crosswalk/crosswalk.csv"].decode().startswith("Framework,Control")
    assert verify_bundle_bytes(data, expected_prev=first["manifest_sha256"], trusted_pub_pem=bundle_env.public_pem).ok
    listed = session.get(f"{BASE}/bundles").get_json()["data"]
    assert [(b["seq"], b["kind"]) for b in listed] == [(2, "workbook"), (1, "evidence")]
    assert hashlib.sha256(data).hexdigest() == listed[0]["zip_sha256"]
    # the workbook is tamper-evident like any bundle
    report = verify_bundle_bytes(rewrite_zip_(data, "assessments/cmmc-l2.csv"), trusted_pub_pem=bundle_env.public_pem)
    assert [(p.kind, p.path) for p in report.problems] == [("changed", "assessments/cmmc-l2.csv")]


def rewrite_zip_(data: bytes, path: str) -> bytes:
    from .bundle_helpers import rewrite_zip

    return rewrite_zip(data, replace={path: change_one_byte(entries(data)[path])})


@pytest.mark.parametrize("query", ["periodDays=0", "periodDays=731", "periodDays=ninety", "periodDays=", "other=1"])
def test_workbook_bad_query_is_400_and_stores_nothing(app, session, bundle_env, query):
    resp = session.get(f"{BASE}/workbook?{query}")
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _count(app) == 0 and stored_files(bundle_env) == []


def test_workbook_default_period_and_access(app, owner, make_member, sign_in, make_api_key, bundle_env):
    viewer = sign_in(make_member("alpha", "viewer"))
    resp = viewer.get(f"{BASE}/workbook")
    assert resp.status_code == 200 and manifest_of(resp.data)["window"]["days"] == 90
    c = app.test_client()
    assert c.get(f"{BASE}/workbook").status_code == 401
    no_scope = {"Authorization": f"Bearer {make_api_key(owner, ['incidents:read'])}"}
    assert c.get(f"{BASE}/workbook", headers=no_scope).status_code == 403
    assert _count(app) == 1
