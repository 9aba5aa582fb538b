"""Connectors: status probes and the reasoning/robot proxies against a real local HTTP server
(tests/http_stub.py): what is forwarded and stripped, streaming both ways, size caps, path escapes,
the outgoing-address policy, roles and the audit trail."""
from __future__ import annotations

import json
import threading

import httpx
import pytest
from sqlalchemy import select

from tests.compliance.register_helpers import Api, error_of
from tests.http_stub import stub_server  # noqa: F401
from zentro.audit.models import AuditEvent
from zentro.connectors import service
from zentro.extensions import db

STATUS = "/api/connectors/status"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def api(app, owner, make_api_key):
    return Api(app.test_client(), make_api_key(owner))


@pytest.fixture
def gate():
    """A stub handler waits on this instead of sleeping; released at teardown so the server can stop."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def robot(app, monkeypatch, stub_server):  # noqa: F811
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", stub_server.url + "/robot/")
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)
    return stub_server


# --- status ------------------------------------------------------------------------------------------

def test_status_when_nothing_is_configured(app, owner, sign_in, monkeypatch):
    for key in ("ZENTRO_ROBOT_API_URL", "ZENTRO_REASONING_API_URL", "OPENAI_API_KEY", "ZENTRO_SLACK_BOT_TOKEN"):
        monkeypatch.setitem(app.config, key, None)
    body = sign_in(owner).get(STATUS).get_json()
    assert [(b["name"], b["configured"], b["reachable"], b["host"]) for b in body["backends"]] == [
        ("reasoning", False, False, None), ("robot", False, False, None)]
    assert body["copilot"] == {"mode": "guided", "openai_configured": False, "reasoning_configured": False}
    assert body["slack_configured"] is False


def test_status_probes_up_down_and_slow_backends(app, owner, sign_in, monkeypatch, gate, stub_server):  # noqa: F811
    stub_server.route("GET", "/up/health", lambda req: (200, {"ok": True}))
    stub_server.route("GET", "/slow/health", lambda req: (200, {"ok": gate.wait(5)}))
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", stub_server.url + "/up/secret-path-token")
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", "http://127.0.0.1:1/robot")
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", "xoxb-test")
    client = sign_in(owner)
    resp = client.get(STATUS)
    reasoning, robot = resp.get_json()["backends"]
    # /up/secret-path-token/health is 404 on the stub, so the base URL is probed; its path never shows
    assert "secret-path-token" not in resp.get_data(as_text=True)
    assert reasoning["host"] == stub_server.url.removeprefix("http://")
    assert (reasoning["reachable"], reasoning["status"], reasoning["path"]) == (True, 404, "/")
    assert robot["reachable"] is False and robot["status"] is None and "ConnectError" in robot["error"]
    body = resp.get_json()
    assert body["copilot"]["mode"] == "openai" and body["slack_configured"] is True

    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", stub_server.url + "/up")
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", stub_server.url + "/slow")
    monkeypatch.setattr(service, "PROBE_TIMEOUT_SECONDS", 0.3)
    reasoning, robot = client.get(STATUS).get_json()["backends"]
    assert (reasoning["reachable"], reasoning["ok"], reasoning["status"], reasoning["path"]) == (True, True, 200, "/health")
    assert reasoning["latency_ms"] >= 0 and reasoning["error"] is None
    assert robot["reachable"] is False and robot["error"] == "timed out after 0.3 s"


def test_status_refuses_private_addresses_unless_allowed(app, owner, sign_in, monkeypatch, stub_server):  # noqa: F811
    stub_server.route("GET", "/health", lambda req: (200, {}))
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", False)
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", stub_server.url.replace("127.0.0.1", "localhost"))
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", "http://169.254.169.254/latest")
    reasoning, robot = sign_in(owner).get(STATUS).get_json()["backends"]
    assert "loopback" in reasoning["error"] and "ZENTRO_CONNECTORS_ALLOW_PRIVATE" in reasoning["error"]
    assert "link-local" in robot["error"]
    assert stub_server.calls == []


def test_status_is_for_sessions_only(app, api, owner, sign_in):
    assert app.test_client().get(STATUS).status_code == 401
    error_of(api.get(STATUS), 403, "FORBIDDEN")


# --- proxy: what goes up and what comes back ----------------------------------------------------------

def test_proxy_forwards_method_body_query_and_identity_and_strips_secrets(app, api, owner, robot):
    robot.route("*", "/robot/", lambda req: (201, {"echo": True}, {
        "Set-Cookie": "backend=1", "X-Backend": "yes", "Connection": "X-Hop", "X-Hop": "secret", "Proxy-Foo": "x"}))
    resp = api.post("/api/robot/v1/jobs/run?dry=1&tag=a%20b", data=b'{"cmd":"restart"}', headers={
        "Content-Type": "application/json", "X-Custom": "kept", "Cookie": "session=abc", "X-CSRFToken": "tok",
        "X-API-Key": "zentro_pk_other", "Proxy-Authorization": "Basic eA==", "Connection": "X-Drop", "X-Drop": "1",
        "Keep-Alive": "timeout=5", "X-Zentro-Org": "spoofed", "X-Request-ID": "req-123"})
    assert resp.status_code == 201 and resp.get_json() == {"echo": True}
    call = robot.calls[-1]
    assert (call.method, call.path, call.query, call.body) == ("POST", "/robot/v1/jobs/run", {"dry": ["1"], "tag": ["a b"]},
                                                               b'{"cmd":"restart"}')
    sent = {k.lower(): v for k, v in call.headers.items()}
    assert sent["x-zentro-org"] == "alpha" and sent["x-zentro-user"] == owner.email
    assert sent["x-request-id"] == "req-123" and sent["x-custom"] == "kept"
    assert sent["content-type"] == "application/json"
    for leaked in ("authorization", "cookie", "x-csrftoken", "x-api-key", "proxy-authorization", "x-drop", "keep-alive"):
        assert leaked not in sent, leaked
    assert "set-cookie" not in resp.headers and "x-hop" not in resp.headers and "proxy-foo" not in resp.headers
    assert resp.headers["X-Backend"] == "yes"


def test_session_caller_cookie_and_csrf_token_are_not_forwarded(app, owner, sign_in, robot):
    robot.route("*", "/robot/", lambda req: (200, {"ok": True}))
    client = sign_in(owner)
    assert client.put("/api/robot/flags/checkout", json={"on": True}).status_code == 200
    sent = {k.lower() for k in robot.calls[-1].headers}
    assert not sent & {"cookie", "x-csrftoken", "authorization"}
    assert robot.calls[-1].json == {"on": True}


def test_bare_prefix_and_every_method(app, api, robot):
    robot.route("*", "/robot/", lambda req: (200, {"method": req.method}))
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert getattr(api, method.lower())("/api/robot").get_json() == {"method": method}
    assert [c.path for c in robot.calls] == ["/robot/"] * 5


def test_streaming_response_passes_through_as_it_arrives(app, owner, make_api_key, robot, live_server, gate):
    seen_first = threading.Event()

    def stream(req):
        def chunks():
            yield b"data: one\n\n"
            seen_first.set() if gate.wait(5) else None  # only released once the caller has the first chunk
            yield b"data: two\n\n"
        return 200, chunks(), {"Content-Type": "text/event-stream"}

    robot.route("GET", "/robot/events", stream)
    key = make_api_key(owner)
    with httpx.Client(base_url=live_server.url, timeout=10) as client, client.stream(
            "GET", "/api/robot/events", headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
        received = b""
        for chunk in resp.iter_raw():
            received += chunk
            if received == b"data: one\n\n":
                gate.set()  # the first event arrived while the backend was still holding the second
        assert received == b"data: one\n\ndata: two\n\n"
    assert seen_first.is_set()


# --- proxy: limits ------------------------------------------------------------------------------------

def test_request_body_over_the_cap_is_413_before_anything_is_sent(app, api, robot, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_PROXY_MAX_BODY_BYTES", 100)
    robot.route("*", "/robot/", lambda req: (200, {}))
    error_of(api.post("/api/robot/upload", data=b"x" * 101, headers={"Content-Type": "application/octet-stream"}),
             413, "PAYLOAD_TOO_LARGE")
    assert robot.calls == []
    assert api.post("/api/robot/upload", data=b"x" * 100,
                    headers={"Content-Type": "application/octet-stream"}).status_code == 200
    assert robot.calls[-1].body == b"x" * 100


def test_chunked_request_body_over_the_cap_is_413(app, owner, make_api_key, robot, live_server, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_PROXY_MAX_BODY_BYTES", 100_000)
    robot.route("*", "/robot/", lambda req: (200, {}))
    key = make_api_key(owner)
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        resp = client.post("/api/robot/upload", content=iter([b"y" * 70_000, b"y" * 70_000]),
                           headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 413 and resp.json()["error_code"] == "PAYLOAD_TOO_LARGE"
        ok = client.post("/api/robot/upload", content=iter([b"z" * 50_000, b"z" * 40_000]),
                         headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and robot.calls[-1].body == b"z" * 90_000


def test_response_declared_over_the_cap_is_502(app, api, robot, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_PROXY_MAX_BODY_BYTES", 1000)
    robot.route("GET", "/robot/big", lambda req: (200, b"b" * 1001))
    body = error_of(api.get("/api/robot/big"), 502, "UPSTREAM_TOO_LARGE")
    assert "1001 bytes" in body["detail"]


def test_response_growing_past_the_cap_mid_stream_is_cut(app, api, robot, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_PROXY_MAX_BODY_BYTES", 1000)
    robot.route("GET", "/robot/grow", lambda req: (200, iter([b"a" * 600, b"b" * 600, b"c" * 10])))
    resp = api.get("/api/robot/grow")
    assert resp.status_code == 200 and resp.get_data() == b"a" * 600


@pytest.mark.parametrize("path", ["../admin", "v1/../../etc/passwd", "%2e%2e/secret", "v1/%2E%2E/x", "a/./b",
                                  "v1%5C..%5Cx", "v1/%00", "http:%2F%2Fevil.example/x", "javascript:alert(1)",
                                  "v1/%09x", "v1/%7F"])
def test_paths_that_could_escape_the_base_are_400(app, api, robot, path):
    robot.route("*", "/", lambda req: (200, {}))
    resp = api.get(f"/api/robot/{path}")
    error_of(resp, 400, "VALIDATION_ERROR")
    assert robot.calls == []


def test_a_double_slash_never_reaches_another_host(app, api, robot):
    """Werkzeug merges repeated slashes before routing (a redirect to the merged path, still under the
    proxy), so ``//host`` can only ever name a path on the configured backend."""
    resp = api.get("/api/robot//evil.example/x")
    assert resp.status_code == 308 and resp.headers["Location"].endswith("/api/robot/evil.example/x")
    assert robot.calls == []


def test_not_configured_is_503(app, api, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", None)
    body = error_of(api.post("/api/reasoning/v1/analyze", json={}), 503, "CONNECTOR_NOT_CONFIGURED")
    assert "ZENTRO_REASONING_API_URL" in body["detail"]


def test_unreachable_is_502_and_timeout_is_504(app, api, monkeypatch, gate, stub_server):  # noqa: F811
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", "http://127.0.0.1:1")
    error_of(api.get("/api/reasoning/v1/x"), 502, "UPSTREAM_UNREACHABLE")
    stub_server.route("GET", "/slow", lambda req: (200, {"late": gate.wait(5)}))
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", stub_server.url)
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTOR_TIMEOUT_SECONDS", 1)
    body = error_of(api.get("/api/reasoning/slow"), 504, "UPSTREAM_TIMEOUT")
    assert "1 s" in body["detail"]


@pytest.mark.parametrize("base,reason", [("http://localhost:{port}", "loopback"), ("http://127.0.0.1:{port}", "loopback"),
                                         ("http://169.254.169.254/latest/meta-data", "link-local"),
                                         ("http://10.20.30.40:8080", "private"), ("http://[::1]:{port}", "loopback"),
                                         ("http://[::ffff:127.0.0.1]:{port}", "loopback")])
def test_private_backend_addresses_are_refused_unless_allowed(app, api, monkeypatch, stub_server, base, reason):  # noqa: F811
    stub_server.route("*", "/", lambda req: (200, {"reached": True}))
    port = stub_server.url.rsplit(":", 1)[1]
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", False)
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", base.format(port=port))
    body = error_of(api.post("/api/robot/run", json={"cmd": "x"}), 502, "CONNECTOR_REFUSED")
    assert reason in body["detail"] and "ZENTRO_CONNECTORS_ALLOW_PRIVATE" in body["detail"]
    assert stub_server.calls == []
    if "{port}" in base and "::" not in base:  # the same local server is reachable once allowed
        monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)
        assert api.post("/api/robot/run", json={"cmd": "x"}).get_json() == {"reached": True}


def test_credentials_in_the_backend_url_are_refused(app, api, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", "http://user:pw@robot.example")
    assert "credentials" in error_of(api.get("/api/robot/x"), 502, "CONNECTOR_REFUSED")["detail"]


# --- proxy: who may call, and the evidence --------------------------------------------------------------

def test_roles_scopes_and_anonymous(app, make_member, sign_in, make_api_key, robot):
    robot.route("*", "/robot/", lambda req: (200, {"ok": True}))
    viewer = make_member("alpha", "viewer")
    client = sign_in(viewer)
    assert client.get("/api/robot/status").status_code == 200
    error_of(client.post("/api/robot/run", json={}), 403, "FORBIDDEN")
    error_of(client.delete("/api/robot/jobs/1"), 403, "FORBIDDEN")
    member = make_member("alpha", "member")
    read_only = Api(app.test_client(), make_api_key(member, ["connectors:read"]))
    assert read_only.get("/api/robot/status").status_code == 200
    error_of(read_only.post("/api/robot/run", json={}), 403, "FORBIDDEN")
    error_of(app.test_client().get("/api/robot/status"), 401, "UNAUTHORIZED")
    assert [c.method for c in robot.calls] == ["GET", "GET"]


def test_write_calls_are_audited_reads_are_not(app, api, owner, robot, monkeypatch):
    robot.route("POST", "/robot/", lambda req: (202, {"queued": True}))
    robot.route("GET", "/robot/", lambda req: (200, {}))
    api.get("/api/robot/jobs")
    api.post("/api/robot/jobs/restart?token=secret", json={"service": "checkout"})
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", "http://127.0.0.1:1")
    api.delete("/api/robot/jobs/7")
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == owner.org_id,
                                                           AuditEvent.action == "connector.robot.proxy")
                                  .order_by(AuditEvent.seq)).all()
        data = [json.loads(r.data) for r in rows]
        assert [(d["backend"], d["method"], d["path"], d["status"]) for d in data] == [
            ("robot", "POST", "/jobs/restart", 202), ("robot", "DELETE", "/jobs/7", 502)]
        assert "secret" not in rows[0].data and "ConnectError" in data[1]["error"]
        assert rows[0].actor_label.startswith(owner.email) and set(rows[0].control_tags.split()) >= {"SOC2:CC8.1"}
