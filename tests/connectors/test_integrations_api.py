"""/api/v1/integrations: every provider kind, write-only secrets, the ingest token (the shown example payload opens
an incident; revoked on delete and on rotate), the connection test against real local servers (HTTP stub, Slack
stand-in, aiosmtpd), health on GET, bad input, roles, scopes, other orgs, Idempotency-Key."""
from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.connectors.integration_helpers import make_integration
from tests.http_stub import stub_server  # noqa: F401
from tests.notify.servers import SmtpServer
from tests.platform.test_isolation import org_state
from zentro.accounts.models import IngestToken
from zentro.audit.models import AuditEvent
from zentro.connectors.models import Integration
from zentro.extensions import db

API = "/api/v1/integrations"
DD_KEY = "dd-api-key-5f3a9c2e7b1d4f60a8e2"
PD_KEY = "u+pagerduty-rest-key-XyZ123456"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def client(owner, sign_in):
    return sign_in(owner)


@pytest.fixture
def private_ok(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)


def _create(client, provider, name=None, config=None, secrets=None, status=201, **kw):
    resp = client.post(API, json={"provider": provider, "name": name or f"{provider} main", "config": config or {},
                                  "secrets": secrets or {}}, **kw)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def _state(app, org_id):
    with app.app_context():
        state = org_state(org_id)
        db.session.remove()
    return state


def _audit(app, org_id, prefix="integration."):
    with app.app_context():
        out = [(e.action, json.loads(e.data), (e.control_tags or "").split()) for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action.startswith(prefix))
            .order_by(AuditEvent.seq))]
        db.session.remove()
    return out


def _push(app, ingest, token=None, payload=None):
    """POST the shown example payload to the shown URL with the shown token, as the vendor would."""
    url = urlsplit(ingest["url"])
    return app.test_client().post(f"{url.path}?{url.query}", json=payload or ingest["example_payload"],
                                  headers={"Authorization": f"Bearer {token or ingest['token']}"})


# --- create: sources and their ingest token ----------------------------------------------------------

@pytest.mark.parametrize("provider,path,source", [
    ("datadog", "/api/integrations/alerts", "datadog"), ("alertmanager", "/api/integrations/alerts", "alertmanager"),
    ("pagerduty", "/api/integrations/alerts", "pagerduty"), ("newrelic", "/api/integrations/alerts", "newrelic"),
    ("qualys", "/api/integrations/vulnerabilities", "qualys"),
    ("tenable", "/api/integrations/vulnerabilities", "tenable"),
])
def test_source_gets_a_token_once_and_its_example_payload_opens_an_incident(app, owner, client, provider, path,
                                                                            source):
    config = {"api_url": "https://qualysapi.qualys.com", "username": "zentro_api"} if provider == "qualys" else {}
    created = _create(client, provider, config=config)
    ingest = created["ingest"]
    assert ingest["token"].startswith("zentro_it_") and ingest["token_prefix"] == ingest["token"][:18]
    assert ingest["url"] == f"http://localhost{path}?source={source}"
    assert ingest["headers"]["Authorization"] == f"Bearer {ingest['token']}"
    assert ingest["token"] in ingest["curl"] and ingest["url"] in ingest["curl"]
    assert created["health"]["status"] == "untested" and created["last_sync_at"] is None
    assert created["kind"] == ("alert_source" if "alerts" in path else "vulnerability_source")

    pushed = _push(app, ingest)
    assert pushed.status_code == 202, pushed.get_data(as_text=True)
    (result,) = pushed.get_json()["results"]
    assert result["incident_ref"].startswith("INC-")
    assert result["outcome"] == "created"
    assert result["source"] == source

    read = client.get(f"{API}/{created['id']}").get_json()
    assert read["ingest"]["token"] is None and read["ingest"]["token_prefix"] == ingest["token_prefix"]
    assert ingest["token"] not in json.dumps(read) and ingest["token"] not in client.get(API).get_data(as_text=True)
    assert read["last_sync_at"] is not None and read["last_received_at"] == read["last_sync_at"]


def test_datadog_payload_template_names_the_fields_the_normalizer_reads(client):
    ingest = _create(client, "datadog")["ingest"]
    assert ingest["payload_template"]["aggregate"] == "$AGGREG_KEY"
    assert ingest["payload_template"]["alert_transition"] == "$ALERT_TRANSITION"


def test_public_url_setting_decides_the_ingest_url(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_PUBLIC_URL", "https://zentro.example.com/")
    ingest = _create(client, "pagerduty")["ingest"]
    assert ingest["url"] == "https://zentro.example.com/api/integrations/alerts?source=pagerduty"


@pytest.mark.parametrize("provider,config,secrets", [
    ("slack", {"default_channel": "#ops"}, {"bot_token": "xoxb-1111-2222-slack-bot-token-value"}),
    ("smtp", {"host": "smtp.example.com", "port": 587, "username": "alerts"}, {"password": "smtp-pass-9f8e7d6c5b4a"}),
    ("reasoning", {"base_url": "https://reasoning.example.com"}, {}),
    ("robot", {"base_url": "https://robot.example.com/v1"}, {}),
])
def test_notification_and_backend_kinds_have_no_ingest_and_never_show_secrets(app, owner, client, provider, config,
                                                                              secrets):
    created = _create(client, provider, config=config, secrets=secrets)
    assert created["ingest"] is None and all(created["config"][k] == v for k, v in config.items())
    assert created["secrets_set"] == sorted(secrets)
    assert created["health"]["status"] == "untested"
    for text in (json.dumps(created), client.get(API).get_data(as_text=True),
                 client.get(f"{API}/{created['id']}").get_data(as_text=True),
                 client.get("/settings/integrations").get_data(as_text=True)):
        for value in secrets.values():
            assert value not in text
    with app.app_context():
        row = db.session.get(Integration, created["id"])
        for value in secrets.values():
            assert value.encode() not in (row.secrets_ciphertext or b"")
            assert value not in json.dumps(row.config) and value not in json.dumps(row.secret_hints)
        db.session.remove()
    (action, data, tags), = _audit(app, owner.org_id)
    assert action == "integration.created" and tags == ["SOC2:CC6.1"] and data["secrets_set"] == sorted(secrets)
    assert not any(v in json.dumps(data) for v in secrets.values())


def test_secret_hints_show_only_the_last_characters_of_long_secrets(client):
    created = _create(client, "tenable", secrets={"access_key": "A" * 12 + "wxyz1234", "secret_key": "short"})
    assert created["secrets_set"] == ["access_key", "secret_key"]
    assert created["secret_hints"] == {"access_key": "…1234"}


def test_defaults_fill_the_configuration(client):
    created = _create(client, "datadog", secrets={"api_key": DD_KEY})
    assert created["config"] == {"api_url": "https://api.datadoghq.com"}
    assert created["scopes"] == ["alerts:ingest", "datadog:validate"]
    assert DD_KEY not in json.dumps(created) and created["secret_hints"] == {"api_key": "…a8e2"}


def test_providers_catalogue_lists_every_provider(client):
    data = client.get(f"{API}/providers").get_json()["data"]
    assert [p["key"] for p in data] == ["datadog", "alertmanager", "pagerduty", "newrelic", "qualys", "tenable",
                                        "slack", "smtp", "reasoning", "robot"]
    slack = next(p for p in data if p["key"] == "slack")
    assert [f["name"] for f in slack["secret_fields"]] == ["bot_token"] and slack["secret_fields"][0]["required"]


# --- delete and rotate revoke the token --------------------------------------------------------------

def test_delete_revokes_the_token_and_removes_the_row(app, owner, client):
    created = _create(client, "alertmanager")
    ingest = created["ingest"]
    assert _push(app, ingest).status_code == 202
    assert client.delete(f"{API}/{created['id']}").status_code == 204
    refused = _push(app, ingest)
    assert refused.status_code == 401
    assert client.get(f"{API}/{created['id']}").status_code == 404
    with app.app_context():
        assert db.session.get(Integration, created["id"]) is None
        tok = db.session.scalar(sa.select(IngestToken).where(IngestToken.prefix == ingest["token_prefix"]))
        assert tok.revoked_at is not None
        db.session.remove()
    actions = [a for a, _, _ in _audit(app, owner.org_id, "")]
    assert "integration.deleted" in actions and "ingest_token.revoked" in actions


def test_rotating_the_token_shows_the_new_one_once_and_revokes_the_old(app, owner, client):
    created = _create(client, "newrelic")
    old = created["ingest"]
    resp = client.patch(f"{API}/{created['id']}", json={"rotate_ingest_token": True})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    new = resp.get_json()["ingest"]
    assert new["token"].startswith("zentro_it_") and new["token"] != old["token"]
    assert _push(app, old).status_code == 401
    assert _push(app, new).status_code == 202
    assert client.get(f"{API}/{created['id']}").get_json()["ingest"]["token"] is None
    assert "integration.token_rotated" in [a for a, _, _ in _audit(app, owner.org_id)]


def test_rotating_is_refused_for_providers_without_a_token(app, owner, client):
    created = _create(client, "robot", config={"base_url": "https://robot.example.com"})
    before = _state(app, owner.org_id)
    resp = client.patch(f"{API}/{created['id']}", json={"rotate_ingest_token": True})
    assert resp.status_code == 400 and "no ingest token" in resp.get_json()["detail"]
    assert _state(app, owner.org_id) == before


# --- patch -------------------------------------------------------------------------------------------

def test_patch_merges_config_sets_and_removes_secrets_and_resets_health(app, owner, client, stub_server, private_ok):
    stub_server.route("GET", "/api/v1/validate", lambda req: (200, {"valid": True}))
    created = _create(client, "datadog", config={"api_url": stub_server.url}, secrets={"api_key": DD_KEY})
    assert client.post(f"{API}/{created['id']}/test").get_json()["outcome"] == "healthy"
    resp = client.patch(f"{API}/{created['id']}", json={"name": "Datadog EU", "config": {"api_url": None},
                                                         "secrets": {"app_key": "app-key-0123456789abcdef"}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["name"] == "Datadog EU" and body["config"] == {"api_url": "https://api.datadoghq.com"}
    assert body["secrets_set"] == ["api_key", "app_key"] and body["health"]["status"] == "untested"
    removed = client.patch(f"{API}/{created['id']}", json={"secrets": {"api_key": None}}).get_json()
    assert removed["secrets_set"] == ["app_key"]
    updates = [d for a, d, _ in _audit(app, owner.org_id) if a == "integration.updated"]
    assert updates[0]["changed"] == ["name", "config"] and updates[0]["secrets_changed"] == ["app_key"]
    assert updates[1]["secrets_changed"] == ["api_key"] and DD_KEY not in json.dumps(updates)


def test_patch_refuses_removing_a_required_secret_and_changes_nothing(app, owner, client):
    created = _create(client, "slack", secrets={"bot_token": "xoxb-required-token-000000"})
    before = _state(app, owner.org_id)
    resp = client.patch(f"{API}/{created['id']}", json={"secrets": {"bot_token": None}})
    assert resp.status_code == 400 and resp.get_json()["errors"][0]["loc"] == ["secrets", "bot_token"]
    assert _state(app, owner.org_id) == before


def test_patch_without_secrets_keeps_them(app, client, stub_server, private_ok):
    stub_server.route("POST", "/api/auth.test", lambda req: (200, {"ok": True, "user": "zentro"}))
    created = _create(client, "slack", config={"api_url": stub_server.url + "/api/"},
                      secrets={"bot_token": "xoxb-kept-token-0123456789"})
    resp = client.patch(f"{API}/{created['id']}", json={"name": "Slack renamed", "config": {"default_channel": "#x"}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["secrets_set"] == ["bot_token"] and resp.get_json()["config"]["default_channel"] == "#x"
    assert client.post(f"{API}/{created['id']}/test").get_json()["outcome"] == "healthy"
    assert stub_server.calls[0].headers["Authorization"] == "Bearer xoxb-kept-token-0123456789"


def test_duplicate_names_are_409(app, owner, client):
    _create(client, "pagerduty", name="Paging")
    before = _state(app, owner.org_id)
    resp = client.post(API, json={"provider": "datadog", "name": "Paging"})
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "CONFLICT"
    assert _state(app, owner.org_id) == before
    other = _create(client, "datadog", name="Other")
    assert client.patch(f"{API}/{other['id']}", json={"name": "Paging"}).status_code == 409


# --- the connection test -----------------------------------------------------------------------------

def test_datadog_probe_healthy_sends_the_key_and_health_shows_on_get(app, owner, client, stub_server, private_ok):
    stub_server.route("GET", "/api/v1/validate", lambda req: (200, {"valid": True}))
    created = _create(client, "datadog", config={"api_url": stub_server.url}, secrets={"api_key": DD_KEY})
    resp = client.post(f"{API}/{created['id']}/test")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert (out["outcome"], out["status"], out["http_status"]) == ("healthy", "healthy", 200)
    assert out["target"] == f"GET {stub_server.url}/api/v1/validate" and out["latency_ms"] is not None
    (call,) = stub_server.requests_to("/api/v1/validate")
    assert call.headers.get("DD-API-KEY") == DD_KEY
    health = client.get(f"{API}/{created['id']}").get_json()["health"]
    assert health["status"] == "healthy" and health["last_checked_at"] and health["last_error"] == ""
    assert client.get(f"{API}?status=healthy").get_json()["data"][0]["id"] == created["id"]
    (action, data, tags), = [x for x in _audit(app, owner.org_id) if x[0] == "integration.tested"]
    assert tags == ["SOC2:CC7.2"] and data["outcome"] == "healthy"


def test_probe_403_is_failing_with_the_reason_and_never_echoes_the_key(app, owner, client, stub_server, private_ok):
    stub_server.route("GET", "/api/v1/validate", lambda req: (403, {"errors": ["Forbidden", f"key {DD_KEY}"]}))
    created = _create(client, "datadog", config={"api_url": stub_server.url}, secrets={"api_key": DD_KEY})
    out = client.post(f"{API}/{created['id']}/test").get_json()
    assert out["outcome"] == "failing" and out["http_status"] == 403 and "HTTP 403" in out["detail"]
    assert "Forbidden" in out["detail"] and DD_KEY not in out["detail"]
    health = client.get(f"{API}/{created['id']}").get_json()["health"]
    assert health["status"] == "failing" and "HTTP 403" in health["last_error"] and health["http_status"] == 403
    page = client.get("/settings/integrations").get_data(as_text=True)
    assert "failing" in page and "HTTP 403" in page and DD_KEY not in page


def test_probe_timeout_is_failing(app, client, stub_server, private_ok, monkeypatch):
    release = threading.Event()

    def slow(req):
        release.wait(10)  # answers only after the client gave up
        return 200, {"valid": True}

    stub_server.route("GET", "/api/v1/validate", slow)
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATION_PROBE_TIMEOUT_SECONDS", 0.3)
    created = _create(client, "datadog", config={"api_url": stub_server.url}, secrets={"api_key": DD_KEY})
    try:
        out = client.post(f"{API}/{created['id']}/test").get_json()
    finally:
        release.set()
    assert out["outcome"] == "failing" and "timed out after 0.3 s" in out["detail"]


def test_private_address_is_refused_when_not_allowed(app, owner, client, stub_server):
    port = urlsplit(stub_server.url).port
    literal = client.post(API, json={"provider": "datadog", "name": "dd", "config": {"api_url": stub_server.url}})
    assert literal.status_code == 400 and "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE" in literal.get_json()["detail"]
    created = _create(client, "datadog", config={"api_url": f"http://localhost:{port}"}, secrets={"api_key": DD_KEY})
    out = client.post(f"{API}/{created['id']}/test").get_json()
    assert out["outcome"] == "failing" and "refused" in out["detail"] and "loopback" in out["detail"]
    assert stub_server.calls == []


def test_redirects_are_not_followed(client, stub_server, private_ok):
    stub_server.route("GET", "/abilities", lambda req: (302, "", {"Location": "http://192.0.2.1/"}))
    created = _create(client, "pagerduty", config={"api_url": stub_server.url}, secrets={"api_key": PD_KEY})
    out = client.post(f"{API}/{created['id']}/test").get_json()
    assert out["outcome"] == "failing" and "redirects are not followed" in out["detail"]


def test_pagerduty_probe_uses_the_token_header(client, stub_server, private_ok):
    stub_server.route("GET", "/abilities", lambda req: (200, {"abilities": ["teams"]}))
    created = _create(client, "pagerduty", config={"api_url": stub_server.url}, secrets={"api_key": PD_KEY})
    assert client.post(f"{API}/{created['id']}/test").get_json()["outcome"] == "healthy"
    (call,) = stub_server.requests_to("/abilities")
    assert call.headers.get("Authorization") == f"Token token={PD_KEY}"


def test_alertmanager_probe_calls_healthy_and_without_url_is_not_testable(client, stub_server, private_ok):
    stub_server.route("GET", "/-/healthy", lambda req: (200, "OK"))
    created = _create(client, "alertmanager", config={"url": stub_server.url})
    assert client.post(f"{API}/{created['id']}/test").get_json()["outcome"] == "healthy"
    failing = _create(client, "alertmanager", name="am down", config={"url": stub_server.url + "/down"})
    out = client.post(f"{API}/{failing['id']}/test").get_json()
    assert out["outcome"] == "failing" and out["http_status"] == 404
    inbound = _create(client, "alertmanager", name="am inbound")
    out = client.post(f"{API}/{inbound['id']}/test").get_json()
    assert out["outcome"] == "not_testable" and "no alert received yet" in out["detail"]
    assert client.get(f"{API}/{inbound['id']}").get_json()["health"]["status"] == "not_testable"


def test_newrelic_probe_reads_the_graphql_answer(client, stub_server, private_ok):
    answers = iter([(200, {"data": {"actor": {"user": {"email": "sre@acme.example"}}}}),
                    (200, {"errors": [{"message": "Invalid API key"}]})])
    stub_server.route("POST", "/graphql", lambda req: next(answers))
    created = _create(client, "newrelic", config={"api_url": stub_server.url}, secrets={"api_key": "NRAK-TESTKEY0001"})
    ok = client.post(f"{API}/{created['id']}/test").get_json()
    assert ok["outcome"] == "healthy" and "sre@acme.example" in ok["detail"]
    bad = client.post(f"{API}/{created['id']}/test").get_json()
    assert bad["outcome"] == "failing" and "Invalid API key" in bad["detail"]
    assert stub_server.calls[0].headers.get("API-Key") == "NRAK-TESTKEY0001"
    assert "actor" in stub_server.calls[0].json["query"]


def test_tenable_and_qualys_probes_authenticate(client, stub_server, private_ok):
    stub_server.route("GET", "/session", lambda req: (200, {"username": "api"}))
    stub_server.route("GET", "/msp/about.php", lambda req: (200, "<ABOUT/>"))
    ten = _create(client, "tenable", config={"api_url": stub_server.url},
                  secrets={"access_key": "access-1234567890", "secret_key": "secret-1234567890"})
    assert client.post(f"{API}/{ten['id']}/test").get_json()["outcome"] == "healthy"
    assert stub_server.requests_to("/session")[0].headers["X-ApiKeys"] == (
        "accessKey=access-1234567890;secretKey=secret-1234567890")
    qua = _create(client, "qualys", config={"api_url": stub_server.url, "username": "zentro"},
                  secrets={"password": "qualys-password-1"})
    assert client.post(f"{API}/{qua['id']}/test").get_json()["outcome"] == "healthy"
    assert stub_server.requests_to("/msp/about.php")[0].headers["Authorization"].startswith("Basic ")


def test_datadog_without_api_key_is_not_testable_and_says_when_alerts_arrived(app, client):
    created = _create(client, "datadog")
    assert _push(app, created["ingest"]).status_code == 202
    out = client.post(f"{API}/{created['id']}/test").get_json()
    assert out["outcome"] == "not_testable" and "last alert received at" in out["detail"]


def test_slack_probe_against_the_slack_stand_in(client, stub_server, private_ok):
    seen = []

    def auth_test(req):
        seen.append(req.headers.get("Authorization"))
        if req.headers.get("Authorization") == "Bearer xoxb-good-token-123456":
            return 200, {"ok": True, "user": "zentro", "team": "Acme"}
        return 200, {"ok": False, "error": "invalid_auth"}

    stub_server.route("POST", "/api/auth.test", auth_test)
    good = _create(client, "slack", config={"api_url": stub_server.url + "/api/"},
                   secrets={"bot_token": "xoxb-good-token-123456"})
    out = client.post(f"{API}/{good['id']}/test").get_json()
    assert out["outcome"] == "healthy" and "as zentro in Acme" in out["detail"]
    bad = _create(client, "slack", name="bad slack", config={"api_url": stub_server.url + "/api/"},
                  secrets={"bot_token": "xoxb-revoked-token-000"})
    out = client.post(f"{API}/{bad['id']}/test").get_json()
    assert out["outcome"] == "failing" and "invalid_auth" in out["detail"]
    assert seen == ["Bearer xoxb-good-token-123456", "Bearer xoxb-revoked-token-000"]


def test_slack_probe_uses_the_server_setting_by_default(app, client, stub_server, private_ok, monkeypatch):
    stub_server.route("POST", "/api/auth.test", lambda req: (200, {"ok": True, "user": "zentro"}))
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_API_URL", stub_server.url + "/api/")
    created = _create(client, "slack", secrets={"bot_token": "xoxb-default-url-token"})
    assert client.post(f"{API}/{created['id']}/test").get_json()["outcome"] == "healthy"


def test_smtp_probe_against_a_real_smtp_server(client, private_ok):
    plain = SmtpServer()
    login = SmtpServer(login=("alerts", "right-password-42"))
    try:
        ok = _create(client, "smtp", name="plain", config={"host": "127.0.0.1", "port": plain.port, "security": "none"})
        out = client.post(f"{API}/{ok['id']}/test").get_json()
        assert out["outcome"] == "healthy" and "EHLO ok" in out["detail"]
        no_tls = _create(client, "smtp", name="starttls", config={"host": "127.0.0.1", "port": plain.port})
        out = client.post(f"{API}/{no_tls['id']}/test").get_json()
        assert out["outcome"] == "failing" and "STARTTLS" in out["detail"]
        good = _create(client, "smtp", name="login", config={"host": "127.0.0.1", "port": login.port,
                                                             "security": "none", "username": "alerts"},
                       secrets={"password": "right-password-42"})
        out = client.post(f"{API}/{good['id']}/test").get_json()
        assert out["outcome"] == "healthy" and "login ok" in out["detail"]
        bad = _create(client, "smtp", name="bad login", config={"host": "127.0.0.1", "port": login.port,
                                                                "security": "none", "username": "alerts"},
                      secrets={"password": "wrong-password-00"})
        out = client.post(f"{API}/{bad['id']}/test").get_json()
        assert out["outcome"] == "failing" and "login refused" in out["detail"]
        assert "wrong-password-00" not in out["detail"]
    finally:
        plain.stop()
        login.stop()


def test_backend_probe_reuses_the_connector_probe(client, stub_server, private_ok):
    stub_server.route("GET", "/health", lambda req: (200, {"ok": True}))
    created = _create(client, "reasoning", config={"base_url": stub_server.url})
    out = client.post(f"{API}/{created['id']}/test").get_json()
    assert out["outcome"] == "healthy" and out["target"] == f"GET {stub_server.url}/health"


# --- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("body,where", [
    ({"provider": "splunk", "name": "x"}, "provider"),
    ({"provider": "datadog", "name": "x", "config": {"api_url": "ftp://api.example.com"}}, "only http"),
    ({"provider": "datadog", "name": "x", "config": {"api_url": "https://user:pw@api.example.com"}}, "credentials"),
    ({"provider": "datadog", "name": "x", "config": {"api_url": "https://api.example.com/?k=v"}}, "query"),
    ({"provider": "datadog", "name": "x", "config": {"api_url": "https://api.example.com:99999"}}, "nvalid URL"),
    ({"provider": "smtp", "name": "x", "config": {"host": "smtp.example.com", "port": "587"}}, "config"),
    ({"provider": "smtp", "name": "x", "config": {"host": "smtp.example.com", "port": 70000}}, "config"),
    ({"provider": "datadog", "name": "x", "config": {"site": "eu"}}, "config"),
    ({"provider": "datadog", "name": "x", "secrets": {"password": "p"}}, "secrets"),
    ({"provider": "slack", "name": "x"}, "secrets"),
    ({"provider": "qualys", "name": "x"}, "config"),
    ({"provider": "datadog", "name": "x", "colour": "red"}, "colour"),
    ({"provider": "datadog", "name": 5}, "name"),
    ({"provider": "datadog", "name": "x" * 101}, "name"),
    ({"provider": "datadog", "name": "   "}, "name"),
    ({"provider": "datadog", "name": "x", "secrets": {"api_key": "k" * 2001}}, "secrets"),
    ({"provider": "datadog", "name": "x", "config": {"api_url": "https://a.example.com/" + "p" * 500}}, "config"),
])
def test_bad_input_is_400_and_creates_nothing(app, owner, client, body, where):
    before = _state(app, owner.org_id)
    resp = client.post(API, json=body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    out = resp.get_json()
    assert out["error_code"] == "VALIDATION_ERROR"
    assert where in out["detail"] or where in json.dumps(out.get("errors", []))
    assert _state(app, owner.org_id) == before


def test_malformed_json_and_bad_query_are_400(app, owner, client):
    before = _state(app, owner.org_id)
    resp = client.post(API, data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert client.get(f"{API}?provider=splunk").status_code == 400
    assert client.get(f"{API}?status=great").status_code == 400
    created = _create(client, "datadog")
    before = _state(app, owner.org_id)
    for bad in ({"config": {"api_url": "not a url"}}, {"name": None}, {"rotate_ingest_token": "yes"}, {"x": 1}):
        assert client.patch(f"{API}/{created['id']}", json=bad).status_code == 400, bad
    assert _state(app, owner.org_id) == before


# --- list --------------------------------------------------------------------------------------------

def test_list_is_cursor_paginated_and_filtered(client):
    ids = [_create(client, prov, name=f"n{i}")["id"] for i, prov in enumerate(["datadog", "pagerduty", "datadog"])]
    first = client.get(f"{API}?limit=2").get_json()
    second = client.get(f"{API}?limit=2&cursor={first['next_cursor']}").get_json()
    assert [r["id"] for r in first["data"]] == ids[::-1][:2] and [r["id"] for r in second["data"]] == ids[:1]
    assert second["next_cursor"] is None
    assert [r["id"] for r in client.get(f"{API}?provider=datadog").get_json()["data"]] == [ids[2], ids[0]]
    assert client.get(f"{API}?status=healthy").get_json()["data"] == []


# --- who may do what ---------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "member"])
def test_viewers_and_members_read_but_cannot_write(app, owner, client, make_member, sign_in, role):
    created = _create(client, "datadog", secrets={"api_key": DD_KEY})
    other = sign_in(make_member("alpha", role))
    assert other.get(f"{API}/{created['id']}").status_code == 200
    assert [r["id"] for r in other.get(API).get_json()["data"]] == [created["id"]]
    before = _state(app, owner.org_id)
    for method, url, body in (("POST", API, {"provider": "datadog", "name": "mine"}),
                              ("PATCH", f"{API}/{created['id']}", {"name": "renamed"}),
                              ("DELETE", f"{API}/{created['id']}", None),
                              ("POST", f"{API}/{created['id']}/test", None)):
        resp = other.open(url, method=method, json=body)
        assert resp.status_code == 403, (method, url, resp.status_code)
        assert resp.get_json()["error_code"] == "FORBIDDEN"
    assert _state(app, owner.org_id) == before


def test_admin_may_write(make_member, sign_in):
    admin = sign_in(make_member("alpha", "admin"))
    assert _create(admin, "pagerduty")["ingest"]["token"]


def test_another_orgs_id_is_404_and_changes_nothing(app, owner, client, make_member, sign_in):
    with app.app_context():
        theirs = make_integration(owner.org_id, owner.user_id)
        db.session.commit()
        db.session.remove()
    outsider = sign_in(make_member("bravo", "owner"))
    before = _state(app, owner.org_id)
    for method, url, body in (("GET", f"{API}/{theirs}", None), ("PATCH", f"{API}/{theirs}", {"name": "mine"}),
                              ("DELETE", f"{API}/{theirs}", None), ("POST", f"{API}/{theirs}/test", None)):
        resp = outsider.open(url, method=method, json=body)
        assert resp.status_code == 404, (method, resp.status_code)
        assert resp.get_json()["error_code"] == "NOT_FOUND"
    assert outsider.get(API).get_json()["data"] == []
    assert _state(app, owner.org_id) == before


def test_api_key_scopes(app, owner, client, make_api_key):
    read_key = make_api_key(owner, scopes=["integrations:read"])
    anon = app.test_client()
    assert anon.get(API, headers={"Authorization": f"Bearer {read_key}"}).status_code == 200  # marks the key used
    before = _state(app, owner.org_id)
    refused = anon.post(API, json={"provider": "datadog", "name": "by key"},
                        headers={"Authorization": f"Bearer {read_key}"})
    assert refused.status_code == 403 and "integrations:write" in refused.get_json()["detail"]
    assert _state(app, owner.org_id) == before
    assert anon.get(API, headers={"Authorization": f"Bearer {read_key}"}).status_code == 200
    other_key = make_api_key(owner, scopes=["webhooks:read"])
    assert anon.get(API, headers={"Authorization": f"Bearer {other_key}"}).status_code == 403
    write_key = make_api_key(owner, scopes=["integrations:write"])
    made = anon.post(API, json={"provider": "datadog", "name": "by key"},
                     headers={"Authorization": f"Bearer {write_key}"})
    assert made.status_code == 201 and made.get_json()["ingest"]["token"]


def test_idempotency_key_replays_the_create(app, owner, client):
    body = {"provider": "pagerduty", "name": "Paging", "secrets": {"api_key": PD_KEY}}
    first = client.post(API, json=body, headers={"Idempotency-Key": "create-pd-1"})
    again = client.post(API, json=body, headers={"Idempotency-Key": "create-pd-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Integration)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IngestToken)) == 1
        db.session.remove()
    mismatch = client.post(API, json={**body, "name": "Other"}, headers={"Idempotency-Key": "create-pd-1"})
    assert mismatch.status_code == 422
