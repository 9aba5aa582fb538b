"""Realistic vendor payloads, shaped as each vendor documents (and sends) them."""
from __future__ import annotations

import copy


def alertmanager(*alerts: dict, status: str = "firing", receiver: str = "zentro") -> dict:
    return {
        "version": "4",
        "groupKey": '{}/{severity=~"critical|warning"}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "env": "production"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.monitoring:9093",
        "alerts": list(alerts),
    }


def am_alert(fingerprint: str, status: str = "firing", *, instance: str = "checkout-7f9c:8080",
             severity: str = "critical", service: str = "checkout", starts: str = "2026-01-05T10:00:00.123456789Z",
             ends: str = "0001-01-01T00:00:00Z") -> dict:
    return {
        "status": status,
        "labels": {"alertname": "HighErrorRate", "severity": severity, "service": service, "instance": instance,
                   "job": "checkout-api", "env": "production"},
        "annotations": {"summary": f"5xx rate above 5% on {instance}",
                        "description": "Error ratio 0.083 over the last 5 minutes.",
                        "runbook_url": "https://runbooks.example/checkout/5xx"},
        "startsAt": starts,
        "endsAt": ends if status == "firing" else "2026-01-05T10:20:00Z",
        "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=job%3Acheckout_5xx%3Aratio5m+%3E+0.05",
        "fingerprint": fingerprint,
    }


def grafana(fingerprint: str = "9a4c1b0d2e3f4a5b", status: str = "firing") -> dict:
    payload = alertmanager(am_alert(fingerprint, status, severity="warning", service="search"), status=status)
    payload.update({"orgId": 1, "state": "alerting" if status == "firing" else "ok", "title": "[FIRING:1] HighErrorRate",
                    "message": "**Firing**"})
    for a in payload["alerts"]:
        a.update({"values": {"B": 0.083}, "valueString": "[ var='B' value=0.083 ]",
                  "dashboardURL": "https://grafana.example/d/abc", "silenceURL": "https://grafana.example/alerting/silence/new"})
    return payload


def datadog(transition: str = "Triggered", *, date: int = 1767607200000, aggregate: str = "8ce2e8d4b4f3f3b0",
            alert_id: str = "123456789", priority: str = "P1", tags: str = "env:prod,service:payments,team:core") -> dict:
    recovered = transition == "Recovered"
    return {
        "id": "7373456789012345678",
        "title": f"[{transition} on {{host:payments-api-3}}] Payments API p99 latency above 2s",
        "body": "%%%\nPayments API p99 latency is 2.7s on host:payments-api-3 (threshold 2s).\n%%%",
        "last_updated": str(date),
        "date": str(date),
        "event_type": "query_alert_monitor",
        "org": {"id": "11111", "name": "Acme Cloud"},
        "alert_id": alert_id,
        "aggregate": aggregate,
        "alert_transition": transition,
        "alert_type": "success" if recovered else "error",
        "alert_priority": priority,
        "alert_title": "Payments API p99 latency above 2s",
        "priority": "normal",
        "tags": tags,
        "hostname": "payments-api-3",
        "link": "https://app.datadoghq.com/event/event?id=7373456789012345678",
    }


def pd_v2(action: str = "trigger", dedup_key: str = "payments-db/replication-lag", *, severity: str = "critical",
          timestamp: str | None = "2026-01-05T10:00:00.000+0000") -> dict:
    body = {"routing_key": "R0UTINGKEY00000000000000000000000", "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        body["payload"] = {
            "summary": "Replication lag on payments-db-2 is 94s",
            "source": "payments-db-2",
            "severity": severity,
            "timestamp": timestamp,
            "component": "payments-db",
            "group": "prod-datastores",
            "class": "replication",
            "custom_details": {"lag_seconds": 94, "primary": "payments-db-1"},
        }
        body["client"] = "Prometheus"
        body["client_url"] = "https://prometheus.example"
    return body


def pd_v3(event_type: str = "incident.triggered", incident_id: str = "Q2K8NP8VWLQR1E", *,
          occurred_at: str = "2026-01-05T10:00:22.169Z", priority: str | None = "P2", urgency: str = "high") -> dict:
    status = {"incident.triggered": "triggered", "incident.acknowledged": "acknowledged",
              "incident.resolved": "resolved"}.get(event_type, "triggered")
    return {"event": {
        "id": f"01DEN4HPBQAH9XHFE03A1S5XGC-{event_type}",
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": occurred_at,
        "agent": {"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV", "type": "user_reference"},
        "client": None,
        "data": {
            "id": incident_id, "type": "incident", "self": f"https://api.pagerduty.com/incidents/{incident_id}",
            "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}", "number": 2, "status": status,
            "incident_key": "d3640fbd41094207a1c11e58e46b1662", "created_at": "2026-01-05T10:00:20Z",
            "title": "Search API is returning 503s",
            "service": {"html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
                        "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": "search",
                        "type": "service_reference"},
            "assignees": [], "escalation_policy": {"id": "PIJ90N7", "summary": "Search on-call"},
            "teams": [],
            "priority": ({"id": "PSO75BM", "summary": priority, "type": "priority_reference"} if priority else None),
            "urgency": urgency, "conference_bridge": None, "resolve_reason": None,
        },
    }}


def nr_workflow(state: str = "ACTIVATED", issue: str = "c5bb3d52-6d89-4a8e-9d6e-2c4b8e2f7a10", *,
                priority: str = "CRITICAL") -> dict:
    body = {
        "issueId": issue,
        "issueUrl": f"https://radar-api.service.newrelic.com/accounts/1/issues/{issue}",
        "title": "Checkout service error rate > 5%",
        "priority": priority,
        "impactedEntities": ["checkout", "checkout-worker"],
        "totalIncidents": 1,
        "state": state,
        "trigger": "STATE_CHANGE",
        "isCorrelated": False,
        "createdAt": 1767607200000,
        "updatedAt": 1767607500000 if state != "ACTIVATED" else 1767607200000,
        "sources": ["newrelic"],
        "alertPolicyNames": ["Checkout golden signals"],
        "alertConditionNames": ["Error rate"],
        "workflowName": "Zentro",
    }
    if state == "CLOSED":
        body["closedAt"] = 1767608400000
    return body


def nr_legacy(state: str = "open", incident_id: int = 314159, *, severity: str = "CRITICAL",
              timestamp: int = 1767607200000) -> dict:
    return {
        "account_id": 1234567, "account_name": "Acme",
        "closed_violations_count": {"critical": 0, "warning": 0},
        "condition_family_id": 2201, "condition_id": 2201, "condition_name": "Disk usage above 90%",
        "current_state": state,
        "details": "Disk /var on ledger-db-1 is 93% full",
        "duration": 12, "event_type": "INCIDENT",
        "incident_acknowledge_url": f"https://alerts.newrelic.com/accounts/1/incidents/{incident_id}/acknowledge",
        "incident_id": incident_id, "incident_url": f"https://alerts.newrelic.com/accounts/1/incidents/{incident_id}",
        "open_violations_count": {"critical": 1, "warning": 0},
        "owner": "", "policy_name": "Ledger infra", "policy_url": "https://alerts.newrelic.com/accounts/1/policies/7",
        "runbook_url": "https://runbooks.example/ledger/disk",
        "severity": severity,
        "targets": [{"id": "ledger-db-1", "name": "ledger", "link": "https://infra.newrelic.com/",
                     "labels": {"role": "database"}, "product": "INFRASTRUCTURE", "type": "Host"}],
        "timestamp": timestamp,
    }


def zentro(dedupe_key: str = "checkout-5xx", status: str = "firing", **kw) -> dict:
    alert = {"dedupe_key": dedupe_key, "status": status, "severity": "high", "title": "Checkout 5xx above 2%",
             "service": "checkout", "labels": {"region": "eu-west-1"}, "starts_at": "2026-01-05T10:00:00Z",
             "description": "p99 latency and 5xx rate up since deploy 4121"}
    alert.update(kw)
    return alert


def qualys(qid: int = 38170, ip: str = "10.0.4.12", dns: str = "checkout-web-1.prod.internal", *, severity: int = 4,
           status: str = "Active", title: str = "SSL Certificate - Expired") -> dict:
    return {"qid": qid, "ip": ip, "dns": dns, "title": title, "severity": severity, "status": status,
            "type": "Confirmed", "port": 443, "protocol": "tcp", "cve": ["CVE-2023-1234"], "cvss3_base": "7.5",
            "first_found_datetime": "2025-12-01T08:00:00Z", "last_found_datetime": "2026-01-05T08:00:00Z",
            "results": "Certificate expired on 2025-11-30"}


def tenable(plugin_id: int = 156032, uuid: str = "8f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b", *, severity="critical",
            state: str = "OPEN", hostname: str = "payments-db-1") -> dict:
    return {"asset": {"uuid": uuid, "hostname": hostname, "ipv4": "10.0.9.4", "fqdn": [f"{hostname}.prod.internal"]},
            "plugin": {"id": plugin_id, "name": "Apache Log4j < 2.15.0 Remote Code Execution",
                       "cve": ["CVE-2021-44228"], "cvss3_base_score": 10.0,
                       "synopsis": "The remote host has a library affected by a remote code execution flaw."},
            "port": {"port": 8443, "protocol": "TCP"}, "severity": severity, "state": state,
            "first_found": "2025-12-10T00:00:00Z", "last_found": "2026-01-05T00:00:00Z"}


def generic(finding_id: str = "snyk:SNYK-JS-LODASH-567746:checkout", *, severity: str = "high", status: str = "open",
            asset: str = "checkout", **kw) -> dict:
    body = {"finding_id": finding_id, "title": "Prototype pollution in lodash", "severity": severity, "status": status,
            "asset": asset, "cve": "CVE-2020-8203", "cvss": 7.4}
    body.update(kw)
    return body


def clone(payload: dict) -> dict:
    return copy.deepcopy(payload)


ALERTS = "/api/integrations/alerts"
VULNS = "/api/integrations/vulnerabilities"
