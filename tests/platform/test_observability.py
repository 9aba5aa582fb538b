"""Observability: request ids, the JSON access log, and GET /metrics (token, request/ingest/job counters, the
database gauges). Counters are process-wide (several apps share them), so tests compare before and after."""
from __future__ import annotations

import datetime as dt
import io
import json
import logging

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from zentro.extensions import db
from zentro.platform import observability, scheduler

TOKEN = "metrics-token-for-tests-0123456789"
T0 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone.utc)
EVIDENCE_RULE = "/api/incidents/<int:incident_id>/evidence"


@pytest.fixture
def metrics_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_METRICS_TOKEN", TOKEN)


def scrape(app) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from an authorised GET /metrics."""
    resp = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
    out = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- request ids -----------------------------------------------------------------------------------------

def test_request_id_is_echoed_or_generated(app):
    client = app.test_client()
    assert client.get("/api/health", headers={"X-Request-ID": "lb-7f3a-42"}).headers["X-Request-ID"] == "lb-7f3a-42"
    generated = client.get("/api/health").headers["X-Request-ID"]
    assert len(generated) == 32 and generated != client.get("/api/health").headers["X-Request-ID"]
    assert client.get("/api/health", headers={"X-Request-ID": "x" * 65}).headers["X-Request-ID"] != "x" * 65


# --- /metrics access -------------------------------------------------------------------------------------

def test_metrics_is_404_while_no_token_is_configured(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_METRICS_TOKEN", None)
    resp = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 404
    assert resp.get_json()["error_code"] == "NOT_FOUND" and "ZENTRO_METRICS_TOKEN" in resp.get_json()["detail"]
    assert b"http_requests_total" not in resp.data


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Bearer {TOKEN}x"}, {"X-API-Key": TOKEN}])
def test_metrics_refuses_a_missing_or_wrong_token(app, metrics_on, headers):
    resp = app.test_client().get("/metrics", headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["error_code"] == "UNAUTHORIZED"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"http_requests_total" not in resp.data


def test_metrics_with_the_token_is_a_parseable_exposition(app, metrics_on):
    resp = app.test_client().get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
    names = {f.name for f in text_string_to_metric_families(resp.get_data(as_text=True))}
    assert {"http_requests", "http_request_duration_seconds", "zentro_ingest", "zentro_job_runs",
            "zentro_webhook_outbox_depth", "zentro_delivery_failures", "zentro_scheduler_leader",
            "zentro_metrics_database_up"} <= names


# --- request metrics -------------------------------------------------------------------------------------

def test_requests_are_counted_by_url_rule_never_by_raw_path(app, metrics_on, make_member, make_api_key):
    key = make_api_key(make_member("acme", "owner"))
    before = scrape(app)
    client = app.test_client()
    for _ in range(2):
        assert client.get("/api/incidents/987654/evidence", headers={"Authorization": f"Bearer {key}"}).status_code == 404
    assert client.get("/no/such/page/555444").status_code == 404
    after = scrape(app)
    labels = dict(method="GET", route=EVIDENCE_RULE, status="404")
    assert value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels) == 2
    assert (value(after, "http_request_duration_seconds_count", method="GET", route=EVIDENCE_RULE)
            - value(before, "http_request_duration_seconds_count", method="GET", route=EVIDENCE_RULE)) == 2
    unmatched = dict(method="GET", route="unmatched", status="404")
    assert value(after, "http_requests_total", **unmatched) - value(before, "http_requests_total", **unmatched) == 1
    assert not [k for k in after if any("987654" in v or "555444" in v for _, v in k[1])]


# --- ingest and jobs -------------------------------------------------------------------------------------

def test_alert_ingest_is_counted_by_source_and_outcome(app, metrics_on, make_member, make_ingest_token):
    token = make_ingest_token(make_member("acme", "owner", plan="enterprise"))
    alert = {"dedupe_key": "checkout-5xx", "status": "firing", "severity": "high", "title": "Checkout 5xx",
             "service": "checkout", "starts_at": "2026-01-05T10:00:00Z"}
    before = scrape(app)
    client = app.test_client()
    for _ in range(2):  # the redelivery is a duplicate
        resp = client.post("/api/integrations/alerts", json=alert, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 202, resp.get_data(as_text=True)
    assert client.post("/api/integrations/alerts", json={"nope": 1},
                       headers={"Authorization": f"Bearer {token}"}).status_code == 400
    after = scrape(app)
    for outcome in ("created", "duplicate"):
        labels = dict(kind="alert", source="zentro", outcome=outcome)
        assert value(after, "zentro_ingest_total", **labels) - value(before, "zentro_ingest_total", **labels) == 1
    total = lambda s: sum(v for (n, _), v in s.items() if n == "zentro_ingest_total")  # noqa: E731
    assert total(after) - total(before) == 2  # the refused body counted nothing


def test_vulnerability_ingest_is_counted_per_finding_source_and_outcome(app, metrics_on, make_member,
                                                                        make_ingest_token):
    token = make_ingest_token(make_member("acme", "owner", plan="enterprise"))
    finding = {"finding_id": "snyk:SNYK-JS-LODASH-567746:checkout", "title": "Prototype pollution in lodash",
               "severity": "medium", "status": "open", "asset": "checkout"}
    before = scrape(app)
    client = app.test_client()
    for body in (finding, finding, {**finding, "status": "fixed"}):
        resp = client.post("/api/integrations/vulnerabilities", json=body, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 202, resp.get_data(as_text=True)
    after = scrape(app)
    for outcome in ("created", "updated", "fixed"):
        labels = dict(kind="vulnerability", source="generic", outcome=outcome)
        assert value(after, "zentro_ingest_total", **labels) - value(before, "zentro_ingest_total", **labels) == 1


def test_job_runs_are_counted_by_job_and_status(app, metrics_on):
    def boom(now):
        raise RuntimeError("backend said no")

    scheduler.register_job("obs-fine", lambda now: "done", seconds=60, description="test")
    scheduler.register_job("obs-boom", boom, seconds=60, description="test")
    try:
        before = scrape(app)
        with app.app_context():
            scheduler.run_job("obs-fine", now=T0)
            scheduler.run_job("obs-fine", now=T0)
            scheduler.run_job("obs-boom", now=T0)
            db.session.remove()
        after = scrape(app)
    finally:
        scheduler.JOBS.pop("obs-fine", None)
        scheduler.JOBS.pop("obs-boom", None)
    delta = lambda **l: value(after, "zentro_job_runs_total", **l) - value(before, "zentro_job_runs_total", **l)  # noqa: E731
    assert delta(job="obs-fine", status="ok") == 2 and delta(job="obs-boom", status="failed") == 1
    assert delta(job="obs-boom", status="ok") == 0
    # from the database: right whichever process ran it
    assert value(after, "zentro_job_last_finished_timestamp_seconds", job="obs-boom", status="failed") >= T0.timestamp()
    assert ("zentro_job_last_finished_timestamp_seconds", (("job", "obs-boom"), ("status", "ok"))) not in after


def test_scheduler_leader_gauge_follows_the_lease(app, metrics_on):
    assert value(scrape(app), "zentro_scheduler_leader") == 0
    with app.app_context():
        assert scheduler.acquire("obs-holder", ttl=300)
        db.session.remove()
    assert value(scrape(app), "zentro_scheduler_leader") == 1
    with app.app_context():
        scheduler.release("obs-holder")
        db.session.remove()
    assert value(scrape(app), "zentro_scheduler_leader") == 0


# --- database gauges -------------------------------------------------------------------------------------

def test_outbox_depth_and_delivery_failures_come_from_the_database(app, metrics_on, make_member):
    from zentro.notify.models import Delivery, OutboxMessage, WebhookEndpoint

    acme, globex = make_member("acme", "owner"), make_member("globex", "owner")
    with app.app_context():
        for n, (member, status) in enumerate([(acme, "pending"), (acme, "pending"), (globex, "pending"),
                                              (acme, "failed"), (acme, "delivered"), (globex, "delivered")]):
            ep = WebhookEndpoint(org_id=member.org_id, url="https://hooks.example/x", events=["*"],
                                 secret_ciphertext=b"not-a-real-secret")
            db.session.add(ep)
            db.session.flush()
            db.session.add(OutboxMessage(org_id=member.org_id, endpoint_id=ep.id, message_id=f"msg_obs{n}",
                                         event_type="incident.opened", status=status, next_attempt_at=T0))
        for member, channel, status in [(acme, "email", "failed"), (globex, "email", "failed"),
                                        (acme, "webhook", "failed"), (acme, "slack", "sent"),
                                        (acme, "email", "not_sent")]:
            db.session.add(Delivery(org_id=member.org_id, source="incident.opened", channel=channel, status=status))
        db.session.commit()
        db.session.remove()
    samples = scrape(app)
    assert value(samples, "zentro_metrics_database_up") == 1
    assert value(samples, "zentro_webhook_outbox_depth", status="pending") == 3
    assert value(samples, "zentro_webhook_outbox_depth", status="failed") == 1
    assert value(samples, "zentro_webhook_outbox_oldest_due_seconds") > 0
    assert value(samples, "zentro_delivery_failures", channel="email") == 2
    assert value(samples, "zentro_delivery_failures", channel="webhook") == 1
    assert value(samples, "zentro_delivery_failures", channel="slack") == 0
    assert value(samples, "zentro_notification_deliveries", channel="slack", status="sent") == 1
    assert value(samples, "zentro_notification_deliveries", channel="email", status="not_sent") == 1


def test_empty_database_gauges_are_zero(app, metrics_on):
    samples = scrape(app)
    assert value(samples, "zentro_webhook_outbox_depth", status="pending") == 0
    assert ("zentro_webhook_outbox_depth", (("status", "pending"),)) in samples
    assert ("zentro_delivery_failures", (("channel", "email"),)) in samples


# --- logs ------------------------------------------------------------------------------------------------

@pytest.fixture
def json_logs(app, monkeypatch):
    """Switch the app to JSON logs and capture what the root handler writes; restore text logs after."""
    root = logging.getLogger()
    level = root.level
    # the session's in-process `flask db upgrade` ran alembic's fileConfig, which disables existing loggers
    # (migrations/env.py; a server process never runs it)
    monkeypatch.setattr(observability.access_log, "disabled", False)
    monkeypatch.setitem(app.config, "ZENTRO_LOG_FORMAT", "json")
    monkeypatch.setitem(app.config, "ZENTRO_LOG_LEVEL", "INFO")
    observability.configure_logging(app)
    [handler] = [h for h in root.handlers if getattr(h, "_zentro", False)]
    stream = io.StringIO()
    handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    monkeypatch.setitem(app.config, "ZENTRO_LOG_FORMAT", "text")
    observability.configure_logging(app)
    root.setLevel(level)
    assert not [h for h in root.handlers if getattr(h, "_zentro", False)]


def test_json_access_line_names_request_org_user_and_route_without_secrets(app, json_logs, make_member,
                                                                          make_api_key):
    owner = make_member("acme", "owner", email="dana@acme.example")
    key = make_api_key(owner)
    resp = app.test_client().get("/api/incidents/987654/evidence?token=sekrit-query-value",
                                 headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-obs-1",
                                          "Cookie": "session=cookie-secret-value"})
    assert resp.status_code == 404
    lines = json_logs()
    [access] = [line for line in lines if line["logger"] == "zentro.access"]
    assert access["request_id"] == "req-obs-1" and access["org"] == "acme"
    assert access["user"].startswith("api_key:") and access["user"][len("api_key:"):] in key
    assert (access["method"], access["path"], access["route"], access["status"]) == (
        "GET", "/api/incidents/987654/evidence", EVIDENCE_RULE, 404)
    assert access["level"] == "INFO" and access["time"].endswith("Z") and access["duration_ms"] >= 0
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in (key, "sekrit-query-value", "cookie-secret-value", "Authorization", "Bearer"):
        assert secret not in text


def test_json_logs_for_a_session_user_and_outside_requests(app, json_logs, make_member, sign_in):
    member = make_member("globex", "admin", email="ari@globex.example")
    sign_in(member).get("/api/incidents/1/evidence", headers={"X-Request-ID": "req-obs-2"})
    logging.getLogger("zentro.test").warning("outside any request")
    lines = json_logs()
    [access] = [line for line in lines if line["logger"] == "zentro.access" and line["request_id"] == "req-obs-2"]
    assert (access["org"], access["user"]) == ("globex", "ari@globex.example")
    [outside] = [line for line in lines if line["logger"] == "zentro.test"]
    assert outside["message"] == "outside any request" and outside["level"] == "WARNING"
    assert outside["org"] is None and outside["user"] is None
