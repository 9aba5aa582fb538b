"""POST /api/integrations/alerts end to end: what a monitoring tool's delivery does to incidents."""
from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

import ingest_payloads as P
from ingest_payloads import ALERTS
from zentro.extensions import db
from zentro.incidents.models import Alert, Incident, TimelineEvent
from zentro.ingest.signing import sign


def incident(app, incident_id: int) -> Incident:
    with app.app_context():
        inc = db.session.get(Incident, incident_id)
        db.session.expunge(inc)
        return inc


def events(app, incident_id: int) -> list[TimelineEvent]:
    with app.app_context():
        rows = db.session.scalars(sa.select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                                  .order_by(TimelineEvent.id)).all()
        for r in rows:
            db.session.expunge(r)
        return rows


def accepted(resp, n: int | None = None) -> list[dict]:
    assert resp.status_code == 202, resp.get_data(as_text=True)
    body = resp.get_json()
    if n is not None:
        assert body["accepted"] == n
    return body["results"]


# --- one realistic delivery per vendor, firing then resolved -----------------------------------

VENDORS = {
    "alertmanager": (lambda: P.alertmanager(P.am_alert("6f0b3c2a1d9e8f7a")),
                     lambda: P.alertmanager(P.am_alert("6f0b3c2a1d9e8f7a", "resolved"), status="resolved")),
    "datadog": (lambda: P.datadog("Triggered"), lambda: P.datadog("Recovered", date=1767607800000)),
    "pagerduty_v2": (lambda: P.pd_v2("trigger"), lambda: P.pd_v2("resolve")),
    "pagerduty_v3": (lambda: P.pd_v3("incident.triggered"),
                     lambda: P.pd_v3("incident.resolved", occurred_at="2026-01-05T10:40:00Z")),
    "newrelic_workflow": (lambda: P.nr_workflow("ACTIVATED"), lambda: P.nr_workflow("CLOSED")),
    "newrelic_legacy": (lambda: P.nr_legacy("open"), lambda: P.nr_legacy("closed", timestamp=1767609000000)),
    "zentro": (lambda: P.zentro(), lambda: P.zentro(status="resolved", ends_at="2026-01-05T10:30:00Z")),
}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_vendor_firing_opens_and_resolved_mitigates(app, post, count, vendor):
    fire, resolve = VENDORS[vendor]
    [first] = accepted(post(ALERTS, fire()), 1)
    assert first["outcome"] == "created" and first["incident_ref"] == "INC-1" and first["incident_status"] == "open"
    inc = incident(app, first["incident_id"])
    assert inc.status == "open" and inc.alert_count == 1 and inc.dedupe_key == first["dedupe_key"]

    [done] = accepted(post(ALERTS, resolve()), 1)
    assert done["outcome"] == "resolved" and done["incident_id"] == inc.id
    assert done["incident_status"] == "mitigated"
    assert incident(app, inc.id).status == "mitigated"
    assert count("alerts") == 2 and count("alerts", status="firing") == 0
    bodies = [e.body for e in events(app, inc.id)]
    assert any(b.startswith("Alert resolved") for b in bodies) and any("mitigated" in b for b in bodies)
    assert count("incidents") == 1


def test_alertmanager_batch_with_mixed_statuses(app, post, count):
    accepted(post(ALERTS, P.alertmanager(P.am_alert("aaaa1111"), P.am_alert("bbbb2222", instance="b:8080"))), 2)
    batch = P.alertmanager(P.am_alert("aaaa1111", "resolved"), P.am_alert("bbbb2222", instance="b:8080"),
                           P.am_alert("cccc3333", instance="c:8080", severity="warning"))
    results = accepted(post(ALERTS, batch), 3)
    assert [r["outcome"] for r in results] == ["resolved", "duplicate", "created"]
    assert [r["incident_ref"] for r in results] == ["INC-1", "INC-2", "INC-3"]
    assert count("incidents") == 3 and count("alerts") == 4  # the duplicate was not stored again
    assert incident(app, results[0]["incident_id"]).status == "mitigated"
    assert incident(app, results[2]["incident_id"]).severity == "medium"


def test_grafana_is_received_as_alertmanager_shape(post):
    [r] = accepted(post(ALERTS, P.grafana()), 1)
    assert r["source"] == "grafana" and r["outcome"] == "created"


def test_pagerduty_trigger_acknowledge_resolve(app, post):
    [trig] = accepted(post(ALERTS, P.pd_v2("trigger")))
    [ack] = accepted(post(ALERTS, P.pd_v2("acknowledge")))
    assert ack["outcome"] == "acknowledged" and ack["incident_status"] == "acknowledged"
    inc = incident(app, trig["incident_id"])
    assert inc.status == "acknowledged" and inc.acknowledged_at is not None
    [res] = accepted(post(ALERTS, P.pd_v2("resolve")))
    assert res["incident_status"] == "mitigated"


def test_pagerduty_v3_acknowledged_event_acknowledges(app, post):
    [trig] = accepted(post(ALERTS, P.pd_v3("incident.triggered")))
    [ack] = accepted(post(ALERTS, P.pd_v3("incident.acknowledged", occurred_at="2026-01-05T10:05:00Z")))
    assert ack["outcome"] == "acknowledged" and incident(app, trig["incident_id"]).status == "acknowledged"


def test_pagerduty_v3_other_events_are_ignored_and_nothing_stored(post, count):
    [r] = accepted(post(ALERTS, P.pd_v3("incident.annotated")), 0)
    assert r["outcome"] == "ignored" and r["alert_id"] is None
    assert count("alerts") == 0 and count("incidents") == 0


def test_new_relic_workflow_acknowledged(app, post):
    [trig] = accepted(post(ALERTS, P.nr_workflow("ACTIVATED")))
    [ack] = accepted(post(ALERTS, P.nr_workflow("ACKNOWLEDGED")))
    assert ack["outcome"] == "acknowledged" and incident(app, trig["incident_id"]).status == "acknowledged"


# --- dedupe and lifecycle ----------------------------------------------------------------------

def test_firing_alerts_with_one_key_fold_into_the_open_incident(app, post, count):
    [a] = accepted(post(ALERTS, P.zentro(severity="medium")))
    [b] = accepted(post(ALERTS, P.zentro(starts_at="2026-01-05T10:01:00Z", severity="critical")))
    assert b["outcome"] == "deduped" and b["incident_id"] == a["incident_id"]
    inc = incident(app, a["incident_id"])
    assert inc.alert_count == 2 and inc.severity == "critical"  # raised by the new alert
    assert count("incidents") == 1 and count("alerts", incident_id=inc.id) == 2
    assert any("Severity raised" in e.body for e in events(app, inc.id))


def test_a_new_incident_opens_after_the_previous_one_was_resolved(app, post):
    from zentro.audit.service import SYSTEM
    from zentro.incidents.service import get_incident, transition

    [a] = accepted(post(ALERTS, P.zentro()))
    with app.app_context():
        transition(get_incident(incident(app, a["incident_id"]).org_id, a["incident_id"]), "resolved", SYSTEM)
        db.session.commit()
    [b] = accepted(post(ALERTS, P.zentro(starts_at="2026-01-05T12:00:00Z")))
    assert b["outcome"] == "created" and b["incident_id"] != a["incident_id"] and b["incident_ref"] == "INC-2"


def test_firing_into_a_mitigated_incident_folds_and_keeps_status(app, post):
    [a] = accepted(post(ALERTS, P.zentro()))
    accepted(post(ALERTS, P.zentro(status="resolved")))
    [again] = accepted(post(ALERTS, P.zentro(starts_at="2026-01-05T11:00:00Z")))
    assert again["outcome"] == "deduped" and again["incident_id"] == a["incident_id"]
    assert again["incident_status"] == "mitigated"


def test_resolve_without_an_active_incident_is_stored_and_answered_as_such(post, count):
    [r] = accepted(post(ALERTS, P.zentro("never-fired", status="resolved")), 1)
    assert r["outcome"] == "no_active_incident" and r["incident_id"] is None and r["alert_id"]
    assert count("alerts") == 1 and count("incidents") == 0


def test_resolve_does_not_mitigate_when_the_setting_is_off(app, post, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_RESOLVE_MITIGATES_INCIDENT", False)
    [a] = accepted(post(ALERTS, P.zentro()))
    [r] = accepted(post(ALERTS, P.zentro(status="resolved")))
    assert r["outcome"] == "resolved" and incident(app, a["incident_id"]).status == "open"


def test_resolve_mitigates_an_acknowledged_incident_and_leaves_a_resolved_one_alone(app, post):
    from zentro.audit.service import SYSTEM
    from zentro.incidents.service import get_incident, transition

    [trig] = accepted(post(ALERTS, P.pd_v2("trigger")))
    accepted(post(ALERTS, P.pd_v2("acknowledge")))
    [r] = accepted(post(ALERTS, P.pd_v2("resolve")))
    assert r["incident_status"] == "mitigated"
    [again] = accepted(post(ALERTS, P.zentro("manual-key")))
    with app.app_context():
        transition(get_incident(incident(app, again["incident_id"]).org_id, again["incident_id"]), "resolved", SYSTEM)
        db.session.commit()
    [late] = accepted(post(ALERTS, P.zentro("manual-key", status="resolved")))
    assert late["outcome"] == "no_active_incident"
    assert incident(app, again["incident_id"]).status == "resolved"


def test_redelivery_is_idempotent(app, post, count):
    payload = P.alertmanager(P.am_alert("6f0b3c2a1d9e8f7a"), P.am_alert("1111aaaa", instance="x:1"))
    first = accepted(post(ALERTS, payload), 2)
    with app.app_context():
        timeline_before = db.session.scalar(sa.select(sa.func.count()).select_from(TimelineEvent))
    again = accepted(post(ALERTS, payload), 2)
    assert [r["outcome"] for r in again] == ["duplicate", "duplicate"]
    assert [(r["alert_id"], r["incident_id"], r["incident_ref"]) for r in again] == [
        (r["alert_id"], r["incident_id"], r["incident_ref"]) for r in first]
    assert count("alerts") == 2 and count("incidents") == 2
    assert incident(app, first[0]["incident_id"]).alert_count == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TimelineEvent)) == timeline_before


def test_the_same_alert_twice_in_one_request_is_stored_once(post, count):
    results = accepted(post(ALERTS, {"alerts": [P.zentro(), P.zentro()]}), 2)
    assert [r["outcome"] for r in results] == ["created", "duplicate"]
    assert results[0]["alert_id"] == results[1]["alert_id"] and count("alerts") == 1


def test_alert_service_is_matched_to_the_org_service_by_name(app, post, owner, add_service):
    sid = add_service(owner, "Checkout")
    [r] = accepted(post(ALERTS, P.zentro(service="checkout")))
    assert incident(app, r["incident_id"]).service_id == sid
    [other] = accepted(post(ALERTS, P.zentro("k2", service="unknown-svc")))
    assert incident(app, other["incident_id"]).service_id is None


def test_alert_rows_keep_the_normalized_fields_and_raw_payload(app, post):
    [r] = accepted(post(ALERTS, P.datadog()))
    with app.app_context():
        row = db.session.get(Alert, r["alert_id"])
        assert (row.source, row.status, row.severity, row.service_name) == ("datadog", "firing", "critical", "payments")
        assert row.raw["alert_id"] == "123456789" and row.labels["env"] == "prod"


def test_each_request_writes_one_ingest_audit_record(app, post, owner):
    from zentro.audit.models import AuditEvent
    from zentro.audit.service import verify_chain

    accepted(post(ALERTS, P.alertmanager(P.am_alert("a1"), P.am_alert("b2", instance="b"))))
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.org_id == owner.org_id,
                                                              AuditEvent.action == "alerts.ingested")).all()
        assert len(rows) == 1
        assert "SOC2:CC7.2" in rows[0].control_tags.split() and rows[0].actor_type == "ingest_token"
        assert json.loads(rows[0].data)["outcomes"] == {"created": 2}
        created = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "incident.created"))
        assert created == 2
        assert verify_chain(owner.org_id).ok


def test_source_override_by_query_or_header(post):
    bad = post(ALERTS, P.zentro(), query="?source=datadog")
    assert bad.status_code == 400 and "aggregate" in bad.get_json()["detail"]
    assert post(ALERTS, P.zentro(), headers={"X-Zentro-Source": "zentro"}).status_code == 202
    clash = post(ALERTS, P.zentro("x"), query="?source=zentro", headers={"X-Zentro-Source": "datadog"})
    assert clash.status_code == 400


# --- refused requests change nothing -----------------------------------------------------------

@pytest.mark.parametrize("body,content_type,status,needle", [
    (b"{not json", "application/json", 400, "Malformed JSON"),
    (b"", "application/json", 400, "empty"),
    (b"[1, 2]", "application/json", 400, "unrecognised"),
    (b'{"hello": "world"}', "application/json", 400, "unrecognised"),
    (b'{"dedupe_key": "k", "title": "t", "starts_at": NaN}', "application/json", 400, "NaN"),
    (b'{"dedupe_key": "k", "title": "t", "severity": 1e999}', "application/json", 400, "out of range"),
    (b"[" * 100_000, "application/json", 400, "Malformed"),
    (json.dumps(P.zentro()).encode(), "text/plain", 415, "application/json"),
    (json.dumps({"alerts": [P.zentro(), {"dedupe_key": "x"}]}).encode(), "application/json", 400, "title"),
    (json.dumps(P.alertmanager(P.am_alert("a"), "oops")).encode(), "application/json", 400, "alerts/1"),
    (json.dumps(P.alertmanager(dict(P.am_alert("a"), status="pending"))).encode(), "application/json", 400, "status"),
    (json.dumps(dict(P.pd_v2(), event_action="snooze")).encode(), "application/json", 400, "event_action"),
    (json.dumps(dict(P.nr_workflow(), state="WEIRD")).encode(), "application/json", 400, "state"),
    (json.dumps(P.zentro(starts_at="last tuesday")).encode(), "application/json", 400, "starts_at"),
])
def test_malformed_payloads_are_400_and_store_nothing(post, count, body, content_type, status, needle):
    resp = post(ALERTS, body, content_type=content_type)
    assert resp.status_code == status, resp.get_data(as_text=True)
    envelope = resp.get_json()
    assert envelope["error_code"] in ("VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE")
    assert needle in envelope["detail"] or needle in json.dumps(envelope.get("errors"))
    assert count("alerts") == 0 and count("incidents") == 0


def test_a_bad_alert_in_a_batch_rejects_the_whole_batch(post, count):
    batch = {"alerts": [P.zentro("good-1"), P.zentro("good-2"), P.zentro("bad", severity="sev0")]}
    resp = post(ALERTS, batch)
    assert resp.status_code == 400
    assert resp.get_json()["errors"][0]["loc"] == ["alerts", "2", "severity"]
    assert count("alerts") == 0 and count("incidents") == 0


def test_too_many_alerts_is_413_and_stores_nothing(app, post, count, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_MAX_ALERTS_PER_REQUEST", 3)
    batch = P.alertmanager(*[P.am_alert(f"fp{i}", instance=f"i{i}") for i in range(4)])
    resp = post(ALERTS, batch)
    assert resp.status_code == 413 and resp.get_json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert "at most 3" in resp.get_json()["detail"]
    assert count("alerts") == 0
    assert accepted(post(ALERTS, P.alertmanager(*batch["alerts"][:3])), 3)


def test_free_plan_gets_402_when_paid_is_required(app, make_member, make_ingest_token, post, count, monkeypatch):
    free = make_member("thrifty", "owner", plan="free")
    free_token = make_ingest_token(free)
    monkeypatch.setitem(app.config, "ZENTRO_ALERT_INGEST_REQUIRE_PAID", True)
    resp = post(ALERTS, P.zentro(), token=free_token)
    assert resp.status_code == 402 and resp.get_json()["error_code"] == "PAYMENT_REQUIRED"
    assert count("alerts") == 0
    assert post(ALERTS, P.zentro()).status_code == 202  # the enterprise org is let through
    monkeypatch.setitem(app.config, "ZENTRO_ALERT_INGEST_REQUIRE_PAID", False)
    assert post(ALERTS, P.zentro("free-ok"), token=free_token).status_code == 202


# --- credentials ------------------------------------------------------------------------------

def test_only_ingest_tokens_are_accepted(app, owner, post, make_api_key, sign_in, count, make_ingest_token):
    key = make_api_key(owner)
    resp = post(ALERTS, P.zentro(), token=key)
    assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"
    signed = sign_in(owner)
    resp = signed.post(ALERTS, json=P.zentro())
    assert resp.status_code in (401, 403) and resp.get_json()["error_code"] in ("UNAUTHORIZED", "FORBIDDEN")
    assert post(ALERTS, P.zentro(), token=None).status_code == 401
    assert post(ALERTS, P.zentro(), token="zentro_it_not-a-real-token").status_code == 401
    assert count("alerts") == 0


def test_a_revoked_token_is_401(app, owner, post, token, count):
    from zentro.accounts import service as accounts
    from zentro.accounts.models import IngestToken, Org
    from zentro.audit.service import SYSTEM

    assert post(ALERTS, P.zentro()).status_code == 202
    with app.app_context():
        tok = db.session.scalar(sa.select(IngestToken).where(IngestToken.org_id == owner.org_id))
        accounts.revoke_ingest_token(db.session.get(Org, owner.org_id), tok.id, SYSTEM)
    resp = post(ALERTS, P.zentro(starts_at="2026-01-05T11:00:00Z"))
    assert resp.status_code == 401 and resp.get_json()["error_code"] == "UNAUTHORIZED"
    assert count("alerts") == 1


def test_another_orgs_token_never_touches_this_orgs_incidents(app, post, make_member, make_ingest_token, count):
    [mine] = accepted(post(ALERTS, P.zentro()))
    other = make_member("globex", "owner", plan="enterprise")
    other_token = make_ingest_token(other)
    for payload in (P.zentro(starts_at="2026-01-05T10:05:00Z"), P.zentro(status="resolved")):
        [r] = accepted(post(ALERTS, payload, token=other_token))
        assert r["incident_id"] != mine["incident_id"]
    theirs = incident(app, r["incident_id"]) if r["incident_id"] else None
    inc = incident(app, mine["incident_id"])
    assert inc.status == "open" and inc.alert_count == 1 and count("alerts", incident_id=inc.id) == 1
    assert theirs is not None and theirs.org_id == other.org_id and theirs.number == 1
    assert count("alerts", org_id=other.org_id) == 2


# --- signatures -------------------------------------------------------------------------------

SECRET = "whsec-test-8c1f"


@pytest.fixture
def signing_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_ALERT_WEBHOOK_SIGNING_SECRET", SECRET)
    monkeypatch.setitem(app.config, "ZENTRO_ALERT_SIGNATURE_TOLERANCE_SECONDS", 300)


def signed_headers(body: bytes, ts: int | None = None, secret: str = SECRET) -> dict:
    ts = int(time.time()) if ts is None else ts
    return {"X-Zentro-Timestamp": str(ts), "X-Zentro-Signature": sign(secret, ts, body)}


def test_valid_signature_is_accepted(signing_on, post):
    body = json.dumps(P.zentro()).encode()
    assert post(ALERTS, body, headers=signed_headers(body)).status_code == 202


def test_rotation_any_listed_signature_may_match(signing_on, post):
    body = json.dumps(P.zentro()).encode()
    ts = int(time.time())
    header = f"{sign('old-secret', ts, body)}, {sign(SECRET, ts, body)}"
    resp = post(ALERTS, body, headers={"X-Zentro-Timestamp": str(ts), "X-Zentro-Signature": header})
    assert resp.status_code == 202


@pytest.mark.parametrize("case", ["missing", "no_timestamp", "wrong_secret", "tampered_body", "stale", "future",
                                  "not_v1", "bad_timestamp"])
def test_bad_signatures_are_401_and_store_nothing(signing_on, post, count, case):
    body = json.dumps(P.zentro()).encode()
    now = int(time.time())
    headers = {
        "missing": {},
        "no_timestamp": {"X-Zentro-Signature": sign(SECRET, now, body)},
        "wrong_secret": signed_headers(body, secret="not-the-secret"),
        "tampered_body": signed_headers(body.replace(b"high", b"low ")),
        "stale": signed_headers(body, ts=now - 301),
        "future": signed_headers(body, ts=now + 301),
        "not_v1": {"X-Zentro-Timestamp": str(now), "X-Zentro-Signature": sign(SECRET, now, body)[3:]},
        "bad_timestamp": {"X-Zentro-Timestamp": "soon", "X-Zentro-Signature": sign(SECRET, "soon", body)},
    }[case]
    resp = post(ALERTS, body, headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error_code"] == "UNAUTHORIZED"
    assert count("alerts") == 0 and count("incidents") == 0


def test_signature_is_not_required_without_a_secret(post):
    assert post(ALERTS, P.zentro()).status_code == 202
