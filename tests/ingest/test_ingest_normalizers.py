"""Each vendor's payload normalizes to the alert a responder would expect: the vendor's own dedupe
key, status, severity on Zentro's scale, title, service and start time."""
from __future__ import annotations

import datetime as dt

import pytest

import ingest_payloads as P
from zentro.ingest.normalizers import Ignored, NormalizeError, detect, normalize, resolve_source
from zentro.ingest.normalizers.base import parse_time

UTC = dt.timezone.utc


def one(payload, source=None):
    alerts = normalize(payload, resolve_source(payload, source))
    assert len(alerts) == 1
    return alerts[0]


def test_alertmanager_group_with_mixed_statuses():
    payload = P.alertmanager(P.am_alert("6f0b3c2a1d9e8f7a", "firing"),
                             P.am_alert("1a2b3c4d5e6f7a8b", "resolved", instance="checkout-2b1d:8080", severity="warning"))
    assert detect(payload) == "alertmanager"
    firing, resolved = normalize(payload, "alertmanager")
    assert (firing.source, firing.dedupe_key, firing.status, firing.severity) == (
        "alertmanager", "alertmanager:6f0b3c2a1d9e8f7a", "firing", "critical")
    assert firing.title == "5xx rate above 5% on checkout-7f9c:8080"
    assert firing.service == "checkout" and firing.labels["instance"] == "checkout-7f9c:8080"
    assert firing.starts_at == dt.datetime(2026, 1, 5, 10, 0, 0, 123456, UTC)  # nine fractional digits read
    assert firing.ends_at is None  # Go's zero time means "not set"
    assert firing.description.startswith("Error ratio")
    assert (resolved.status, resolved.severity, resolved.dedupe_key) == ("resolved", "medium", "alertmanager:1a2b3c4d5e6f7a8b")
    assert resolved.ends_at == dt.datetime(2026, 1, 5, 10, 20, tzinfo=UTC)


def test_alertmanager_without_fingerprint_keys_on_group_and_labels():
    a, b = P.am_alert("x"), P.am_alert("y", instance="other:8080")
    for alert in (a, b):
        del alert["fingerprint"]
    first, second = normalize(P.alertmanager(a, b), "alertmanager")
    again, _ = normalize(P.alertmanager(P.clone(a), b), "alertmanager")
    assert first.dedupe_key != second.dedupe_key
    assert first.dedupe_key == again.dedupe_key


def test_grafana_uses_the_alertmanager_shape():
    alert = one(P.grafana())
    assert (alert.source, alert.severity, alert.service) == ("grafana", "medium", "search")


def test_datadog_triggered_and_recovered():
    trig = one(P.datadog("Triggered"))
    assert detect(P.datadog()) == "datadog"
    assert (trig.source, trig.dedupe_key, trig.status, trig.severity) == (
        "datadog", "datadog:8ce2e8d4b4f3f3b0", "firing", "critical")
    assert trig.title == "Payments API p99 latency above 2s"
    assert trig.service == "payments" and trig.labels["team"] == "core" and trig.labels["host"] == "payments-api-3"
    assert trig.starts_at == dt.datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # epoch milliseconds
    rec = one(P.datadog("Recovered", date=1767607800000))
    assert (rec.status, rec.dedupe_key) == ("resolved", trig.dedupe_key)


@pytest.mark.parametrize("fields,severity", [
    ({"alert_priority": "P2"}, "high"), ({"alert_priority": "P4"}, "low"),
    ({"alert_priority": None, "alert_type": "warning"}, "medium"),
    ({"alert_priority": None, "alert_type": "error"}, "high"),
])
def test_datadog_severity_mapping(fields, severity):
    payload = P.datadog()
    payload.update(fields)
    assert one(payload).severity == severity


def test_datadog_without_monitor_or_aggregate_key_is_refused():
    payload = P.datadog()
    del payload["aggregate"], payload["alert_id"]
    with pytest.raises(NormalizeError, match="aggregate"):
        normalize(payload, "datadog")


def test_datadog_title_prefix_is_stripped_when_no_alert_title():
    payload = P.datadog()
    del payload["alert_title"]
    assert one(payload).title == "Payments API p99 latency above 2s"


@pytest.mark.parametrize("action,status", [("trigger", "firing"), ("acknowledge", "ack"), ("resolve", "resolved")])
def test_pagerduty_events_v2(action, status):
    alert = one(P.pd_v2(action))
    assert detect(P.pd_v2(action)) == "pagerduty"
    assert (alert.dedupe_key, alert.status) == ("pagerduty:payments-db/replication-lag", status)
    if action == "trigger":
        assert alert.severity == "critical" and alert.service == "payments-db"
        assert alert.title == "Replication lag on payments-db-2 is 94s"
        assert alert.labels["detail.lag_seconds"] == 94
        assert alert.starts_at == dt.datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("pd,ours", [("critical", "critical"), ("error", "high"), ("warning", "medium"), ("info", "low")])
def test_pagerduty_severity_mapping(pd, ours):
    assert one(P.pd_v2(severity=pd)).severity == ours


def test_pagerduty_resolve_needs_dedup_key():
    payload = P.pd_v2("resolve")
    del payload["dedup_key"]
    payload["routing_key"] = "R0UTING"
    with pytest.raises(NormalizeError, match="dedup_key"):
        normalize(payload, "pagerduty")


def test_pagerduty_v3_webhook_lifecycle():
    trig = one(P.pd_v3("incident.triggered"))
    assert detect(P.pd_v3()) == "pagerduty"
    assert (trig.dedupe_key, trig.status, trig.severity, trig.service, trig.title) == (
        "pagerduty:incident:Q2K8NP8VWLQR1E", "firing", "high", "search", "Search API is returning 503s")
    assert one(P.pd_v3("incident.acknowledged")).status == "ack"
    assert one(P.pd_v3("incident.resolved")).status == "resolved"
    assert one(P.pd_v3(priority=None, urgency="low")).severity == "low"
    ignored = one(P.pd_v3("incident.annotated"))
    assert isinstance(ignored, Ignored) and "annotated" in ignored.reason


@pytest.mark.parametrize("state,status", [("ACTIVATED", "firing"), ("ACKNOWLEDGED", "ack"), ("CLOSED", "resolved")])
def test_new_relic_workflow(state, status):
    alert = one(P.nr_workflow(state))
    assert detect(P.nr_workflow(state)) == "newrelic"
    assert (alert.dedupe_key, alert.status, alert.severity, alert.service) == (
        "newrelic:c5bb3d52-6d89-4a8e-9d6e-2c4b8e2f7a10", status, "critical", "checkout")
    assert alert.title == "Checkout service error rate > 5%"


@pytest.mark.parametrize("state,status", [("open", "firing"), ("acknowledged", "ack"), ("closed", "resolved")])
def test_new_relic_legacy(state, status):
    alert = one(P.nr_legacy(state))
    assert detect(P.nr_legacy(state)) == "newrelic"
    assert (alert.dedupe_key, alert.status, alert.severity, alert.service, alert.title) == (
        "newrelic:incident:314159", status, "critical", "ledger", "Disk usage above 90%")
    assert one(P.nr_legacy(severity="WARNING")).severity == "medium"


def test_zentro_single_and_batch():
    single = one(P.zentro())
    assert (single.source, single.dedupe_key, single.severity, single.service) == ("zentro", "checkout-5xx", "high", "checkout")
    batch = normalize({"alerts": [P.zentro("a"), P.zentro("b", status="resolved")]}, "zentro")
    assert [(a.dedupe_key, a.status) for a in batch] == [("a", "firing"), ("b", "resolved")]


def test_zentro_refuses_unknown_fields_and_bad_values_naming_them():
    with pytest.raises(NormalizeError) as exc:
        normalize({"alerts": [P.zentro(), P.zentro(severity="sev1")]}, "zentro")
    assert exc.value.errors[0]["loc"] == ["alerts", "1", "severity"]
    with pytest.raises(NormalizeError) as exc:
        normalize(P.zentro(sevrity="high"), "zentro")
    assert exc.value.errors[0]["loc"] == ["sevrity"]


def test_unknown_payload_and_source():
    with pytest.raises(NormalizeError, match="unrecognised"):
        resolve_source({"hello": "world"}, None)
    with pytest.raises(NormalizeError, match="unknown source"):
        resolve_source(P.zentro(), "splunk")


def test_source_override_applies_that_vendor_rules():
    with pytest.raises(NormalizeError, match="event_action"):
        normalize(P.zentro(), resolve_source(P.zentro(), "pagerduty"))


@pytest.mark.parametrize("value,expected", [
    ("2026-01-05T10:00:00Z", dt.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    ("2026-01-05T12:00:00+02:00", dt.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    ("2026-01-05T10:00:00", dt.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    (1767607200, dt.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    ("1767607200000", dt.datetime(2026, 1, 5, 10, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", None), (None, None), ("", None),
])
def test_parse_time(value, expected):
    assert parse_time(value, ["t"]) == expected


@pytest.mark.parametrize("value", ["yesterday", True, {"a": 1}, 1e30])
def test_parse_time_refuses_garbage(value):
    with pytest.raises(NormalizeError):
        parse_time(value, ["t"])


def test_nul_characters_are_dropped_and_long_keys_hashed():
    alert = one(P.alertmanager(P.am_alert("f" * 300)))
    assert len(alert.dedupe_key) <= 255 and alert.dedupe_key.startswith("alertmanager:sha256:")
    payload = P.zentro(title="bad\x00title")
    assert one(payload).title == "badtitle"
