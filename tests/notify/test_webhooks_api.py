"""/api/v1/webhooks: create (secret once, encrypted at rest), list/get (never the secret), patch, delete, send a
test, rotate the secret; URL and event validation; roles, scopes, other orgs and malformed input change
nothing; Idempotency-Key replays the create."""
from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.http_stub import stub_server  # noqa: F401
from tests.notify.servers import FAIL_TWICE, allow_private, header, verify_signature, webhook_receiver
from tests.platform.test_isolation import org_state
from zentro.audit.models import AuditEvent
from zentro.extensions import db
from zentro.notify import outbox
from zentro.notify.models import Delivery, OutboxMessage, WebhookEndpoint

API = "/api/v1/webhooks"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def client(owner, sign_in):
    return sign_in(owner)


@pytest.fixture
def receiver(app, monkeypatch, stub_server):
    allow_private(app, monkeypatch)
    return webhook_receiver(stub_server)


def _create(client, url, events=("incident.opened",), **extra):
    resp = client.post(API, json={"url": url, "events": list(events), **extra})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def _state(app, org_id):
    with app.app_context():
        state = org_state(org_id)
        db.session.remove()
    return state


def _audit(app, org_id, prefix="webhook."):
    with app.app_context():
        out = [(e.action, json.loads(e.data)) for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action.startswith(prefix))
            .order_by(AuditEvent.seq))]
        db.session.remove()
    return out


# --- create, read, the secret ------------------------------------------------------------------------

def test_create_returns_the_secret_once_and_stores_it_encrypted(app, owner, client, receiver):
    created = _create(client, receiver + "?token=abc", ["incident.opened", "digest.*"], description="Ops bridge")

    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert created["secret_prefix"] == secret[:12]
    assert (created["url"], created["events"], created["enabled"], created["description"]) == (
        receiver + "?token=abc", ["incident.opened", "digest.*"], True, "Ops bridge")
    assert created["last_delivery"] is None

    listed = client.get(API)
    one = client.get(f"{API}/{created['id']}")
    for resp in (listed, one):
        assert resp.status_code == 200 and secret not in resp.get_data(as_text=True)
        assert secret[6:] not in resp.get_data(as_text=True)
    assert [w["id"] for w in listed.get_json()["data"]] == [created["id"]]
    assert "secret" not in one.get_json()

    with app.app_context():
        row = db.session.get(WebhookEndpoint, created["id"])
        assert secret.encode() not in row.secret_ciphertext
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"zentro webhook secrets").derive(
            app.config["SECRET_KEY"].encode())
        assert Fernet(base64.urlsafe_b64encode(key)).decrypt(row.secret_ciphertext).decode() == secret
        db.session.remove()

    ((action, data),) = _audit(app, owner.org_id)
    assert action == "webhook.created" and data["host"] == "127.0.0.1" and "token=abc" not in json.dumps(data)


def test_list_is_cursor_paginated_newest_first(client, receiver):
    ids = [_create(client, f"{receiver}/{n}")["id"] for n in range(3)]
    first = client.get(f"{API}?limit=2").get_json()
    second = client.get(f"{API}?limit=2&cursor={first['next_cursor']}").get_json()
    assert [w["id"] for w in first["data"]] == ids[::-1][:2]
    assert [w["id"] for w in second["data"]] == ids[:1] and second["next_cursor"] is None


@pytest.mark.parametrize("events", [["*"], ["digest.*"], ["incident.opened", "incident.resolved", "approval.decided",
                                                        "bundle.created", "webhook.test", "digest.sla-reminders"]])
def test_catalogue_events_and_wildcards_are_accepted(client, receiver, events):
    assert _create(client, receiver, events)["events"] == events


# --- URL validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url,expect", [
    ("http://127.0.0.1:9/hook", "loopback"),
    ("https://10.1.2.3/hook", "private"),
    ("http://[::1]/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("ftp://hooks.example.com/x", "only http:// and https://"),
    ("https://user:pw@hooks.example.com/x", "credentials"),
    ("https:///nohost", "only http:// and https://"),
    ("https://no-such-host.invalid/hook", "does not resolve"),
    ("https://hooks.example.com:99999/x", "Invalid URL"),
])
def test_refused_urls_are_400_with_a_clear_reason_and_nothing_is_created(app, owner, client, url, expect):
    before = _state(app, owner.org_id)
    resp = client.post(API, json={"url": url, "events": ["*"]})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert expect in resp.get_json()["detail"]
    assert _state(app, owner.org_id) == before


def test_private_addresses_are_allowed_only_when_configured(app, client, monkeypatch, stub_server):
    url = webhook_receiver(stub_server)
    refused = client.post(API, json={"url": url, "events": ["*"]})
    assert refused.status_code == 400 and "ZENTRO_WEBHOOK_ALLOW_PRIVATE" in refused.get_json()["detail"]
    allow_private(app, monkeypatch)
    assert client.post(API, json={"url": url, "events": ["*"]}).status_code == 201


# --- malformed input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body,status", [
    ({"url": "http://127.0.0.1/x", "events": []}, 400),
    ({"url": "http://127.0.0.1/x", "events": ["incident.opend"]}, 400),
    ({"url": "http://127.0.0.1/x", "events": "incident.opened"}, 400),
    ({"url": "http://127.0.0.1/x"}, 400),
    ({"events": ["*"]}, 400),
    ({"url": "   ", "events": ["*"]}, 400),
    ({"url": 5, "events": ["*"]}, 400),
    ({"url": "http://127.0.0.1/x", "events": ["*"], "enabled": "yes"}, 400),
    ({"url": "http://127.0.0.1/x", "events": ["*"], "secret": "whsec_mine"}, 400),
    ({"url": "http://127.0.0.1/x", "events": ["*"], "description": "d" * 201}, 400),
    ({"url": "http://127.0.0.1/" + "x" * 500, "events": ["*"]}, 400),
    ({"url": "http://127.0.0.1/x\u0000", "events": ["*"]}, 400),
])
def test_malformed_create_bodies_are_400_and_change_nothing(app, owner, client, receiver, body, status):
    before = _state(app, owner.org_id)
    resp = client.post(API, json=body)
    assert resp.status_code == status and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _state(app, owner.org_id) == before


def test_non_json_bodies_are_refused(app, owner, client, receiver):
    before = _state(app, owner.org_id)
    assert client.post(API, data="{not json", content_type="application/json").status_code == 400
    assert client.post(API, data="[1, 2]", content_type="application/json").status_code == 400
    assert client.post(API, data="url=x", content_type="application/x-www-form-urlencoded").status_code == 415
    assert _state(app, owner.org_id) == before


def test_patch_validates_like_create_and_changes_nothing_on_refusal(app, owner, client, receiver, monkeypatch):
    hook = _create(client, receiver)
    monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_ALLOW_PRIVATE", False)
    before = _state(app, owner.org_id)
    for body in ({"url": "http://127.0.0.1:1/x", "enabled": False}, {"url": "gopher://hooks.example.com/"},
                 {"events": []}, {"events": ["nope"]}, {"events": ["*"], "enabled": "no"}, {"enabled": None},
                 {"url": None}, {"enabled": 1}, {"colour": "red"}):
        resp = client.patch(f"{API}/{hook['id']}", json=body)
        assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR", body
    assert _state(app, owner.org_id) == before


# --- update, delete ----------------------------------------------------------------------------------

def test_patch_changes_only_what_is_sent_and_is_audited(app, owner, client, receiver):
    hook = _create(client, receiver, ["incident.opened"], description="first")
    resp = client.patch(f"{API}/{hook['id']}", json={"events": ["incident.*", "bundle.created"], "enabled": False})
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["events"], body["enabled"], body["description"], body["url"]) == (
        ["incident.*", "bundle.created"], False, "first", receiver)
    assert client.patch(f"{API}/{hook['id']}", json={}).get_json()["events"] == ["incident.*", "bundle.created"]
    actions = _audit(app, owner.org_id)
    assert [a for a, _ in actions] == ["webhook.created", "webhook.updated"]  # the empty patch changed nothing
    assert actions[1][1]["changed"] == ["enabled", "events"]


def test_delete_removes_the_endpoint(app, owner, client, receiver):
    hook = _create(client, receiver)
    assert client.delete(f"{API}/{hook['id']}").status_code == 204
    assert client.get(f"{API}/{hook['id']}").status_code == 404
    assert client.delete(f"{API}/{hook['id']}").status_code == 404
    assert [a for a, _ in _audit(app, owner.org_id)] == ["webhook.created", "webhook.deleted"]


# --- send test, rotate -------------------------------------------------------------------------------

def test_send_test_delivers_one_signed_message_and_records_it(app, owner, client, receiver, stub_server):
    hook = _create(client, receiver, ["incident.opened"])
    resp = client.post(f"{API}/{hook['id']}/test")
    assert resp.status_code == 200
    outcome = resp.get_json()
    assert (outcome["ok"], outcome["status_code"], outcome["detail"]) == (True, 200, "HTTP 200")
    (req,) = stub_server.calls
    assert verify_signature(hook["secret"], req) and header(req, "webhook-id") == outcome["message_id"]
    assert req.json["type"] == "webhook.test" and req.json["data"]["endpoint_id"] == hook["id"]
    log = client.get(f"/api/v1/deliveries/{outcome['delivery_id']}").get_json()
    assert (log["status"], log["source"], log["attempts"], log["channel"]) == ("sent", "webhook.test", 1, "webhook")
    assert client.get(f"{API}/{hook['id']}").get_json()["last_delivery"]["status"] == "delivered"
    assert _audit(app, owner.org_id)[-1][0] == "webhook.tested"


def test_send_test_to_a_failing_endpoint_reports_it_once_without_retries(app, owner, client, monkeypatch,
                                                                        stub_server):
    allow_private(app, monkeypatch)
    hook = _create(client, webhook_receiver(stub_server, statuses=FAIL_TWICE))
    outcome = client.post(f"{API}/{hook['id']}/test").get_json()
    assert (outcome["ok"], outcome["status_code"], outcome["detail"]) == (False, 500, "HTTP 500")
    with app.app_context():
        assert outbox.drain_outbox() == {"delivered": 0, "retrying": 0, "failed": 0}
        d = db.session.get(Delivery, outcome["delivery_id"])
        assert (d.status, d.attempts, d.error) == ("failed", 1, "HTTP 500")
        db.session.remove()
    assert len(stub_server.calls) == 1
    assert _audit(app, owner.org_id)[-1][1]["ok"] is False


def test_send_test_works_on_a_disabled_endpoint(client, receiver, stub_server):
    hook = _create(client, receiver, enabled=False)
    assert client.post(f"{API}/{hook['id']}/test").get_json()["ok"] is True


def test_rotate_secret_replaces_it_and_messages_are_signed_with_the_new_one(app, owner, client, receiver, stub_server):
    hook = _create(client, receiver)
    rotated = client.post(f"{API}/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.get_json()["secret"]
    assert new != hook["secret"] and rotated.get_json()["secret_prefix"] == new[:12]
    client.post(f"{API}/{hook['id']}/test")
    (req,) = stub_server.calls
    assert verify_signature(new, req) and not verify_signature(hook["secret"], req)
    assert new not in client.get(f"{API}/{hook['id']}").get_data(as_text=True)
    assert _audit(app, owner.org_id)[1][0] == "webhook.secret_rotated"


# --- idempotency -------------------------------------------------------------------------------------

def test_idempotency_key_replays_the_create(app, owner, client, receiver):
    body = {"url": receiver, "events": ["*"]}
    first = client.post(API, json=body, headers={"Idempotency-Key": "create-hook-1"})
    again = client.post(API, json=body, headers={"Idempotency-Key": "create-hook-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    other = client.post(API, json={**body, "events": ["incident.opened"]}, headers={"Idempotency-Key": "create-hook-1"})
    assert other.status_code == 422 and other.get_json()["error_code"] == "IDEMPOTENCY_MISMATCH"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 1
        db.session.remove()


# --- who may ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_read_or_change_webhooks(app, owner, client, receiver, make_member, sign_in, role):
    hook = _create(client, receiver)
    other = sign_in(make_member("alpha", role))
    before = _state(app, owner.org_id)
    calls = [("GET", API, None), ("GET", f"{API}/{hook['id']}", None), ("POST", API, {"url": receiver, "events": ["*"]}),
             ("PATCH", f"{API}/{hook['id']}", {"enabled": False}), ("DELETE", f"{API}/{hook['id']}", None),
             ("POST", f"{API}/{hook['id']}/test", None), ("POST", f"{API}/{hook['id']}/rotate-secret", None)]
    for method, url, body in calls:
        resp = other.open(url, method=method, json=body)
        assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN", (method, url)
    assert _state(app, owner.org_id) == before


def test_admins_manage_webhooks(make_member, sign_in, receiver):
    admin = sign_in(make_member("alpha", "admin"))
    hook = _create(admin, receiver)
    assert admin.patch(f"{API}/{hook['id']}", json={"description": "x"}).status_code == 200


def test_api_keys_need_the_webhooks_scope(app, owner, make_api_key, receiver):
    c = app.test_client()
    read_key = {"Authorization": f"Bearer {make_api_key(owner, ['webhooks:read'])}"}
    write_key = {"Authorization": f"Bearer {make_api_key(owner, ['webhooks:*'])}"}
    other_key = {"Authorization": f"Bearer {make_api_key(owner, ['incidents:*'])}"}
    body = {"url": receiver, "events": ["*"]}
    assert c.get(API, headers=read_key).status_code == 200
    assert c.post(API, json=body, headers=read_key).status_code == 403
    assert c.get(API, headers=other_key).status_code == 403
    assert c.post(API, json=body, headers=write_key).status_code == 201


def test_another_orgs_webhook_is_404_and_untouched(app, owner, client, receiver, make_member, sign_in, make_api_key):
    hook = _create(client, receiver)
    bravo = make_member("bravo", "owner")
    before = _state(app, owner.org_id)
    for other in (sign_in(bravo), None):
        headers = {} if other else {"Authorization": f"Bearer {make_api_key(bravo)}"}
        c = other or app.test_client()
        for method, suffix, body in (("GET", "", None), ("PATCH", "", {"enabled": False}), ("DELETE", "", None),
                                     ("POST", "/test", None), ("POST", "/rotate-secret", None)):
            resp = c.open(f"{API}/{hook['id']}{suffix}", method=method, json=body, headers=headers)
            assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND", (method, suffix)
        assert c.open(API, method="GET", headers=headers).get_json()["data"] == []
    assert _state(app, owner.org_id) == before


def test_unknown_id_is_404(client):
    assert client.get(f"{API}/999999").status_code == 404


def test_outbox_rows_of_a_test_carry_the_endpoint(app, owner, client, receiver):
    hook = _create(client, receiver)
    client.post(f"{API}/{hook['id']}/test")
    with app.app_context():
        (msg,) = db.session.scalars(sa.select(OutboxMessage)).all()
        assert (msg.endpoint_id, msg.event_type, msg.status, msg.attempts) == (hook["id"], "webhook.test", "delivered", 1)
        db.session.remove()
