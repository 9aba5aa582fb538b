"""PagerDuty: Events API v2 (what a monitoring tool sends to PagerDuty, pointed at Zentro instead)
and v3 webhooks (what PagerDuty sends about its own incidents).

Events API v2::

    {"routing_key": "...", "event_action": "trigger" | "acknowledge" | "resolve",
     "dedup_key": "srv01/mysql",
     "payload": {"summary": "...", "source": "srv01", "severity": "critical|error|warning|info",
                 "timestamp": "...", "component": "mysql", "group": "prod", "class": "disk",
                 "custom_details": {...}}}

Dedupe key ``pagerduty:<dedup_key>``; acknowledge and resolve need a dedup_key (as in PagerDuty).
A trigger without one gets a key from its source, component and summary, so identical triggers
fold. Severity: critical → critical, error → high, warning → medium, info → low.
Service: ``payload.component``, else ``payload.source``.

v3 webhook::

    {"event": {"id": "...", "event_type": "incident.triggered", "occurred_at": "...",
               "data": {"id": "Q1...", "title": "...", "urgency": "high", "status": "triggered",
                        "service": {"summary": "API"}, "priority": {"summary": "P1"}}}}

Dedupe key ``pagerduty:incident:<data.id>``. incident.triggered / reopened / unacknowledged →
firing, incident.acknowledged → ack, incident.resolved → resolved; other event types
(annotated, escalated, priority_updated, …) are answered "ignored". Severity: priority P1 →
critical, P2 → high, P3 → medium, P4/P5 → low; without a priority urgency high → high, low → low.
"""
from __future__ import annotations

from typing import Any

from zentro.ingest.normalizers.base import (Ignored, NormalizeError, NormalizedAlert, clean, content_key, map_severity,
                                            opt_str, parse_time, req_str, require_dict)

SOURCE = "pagerduty"
ACTIONS = {"trigger": "firing", "acknowledge": "ack", "resolve": "resolved"}
SEVERITY = {"critical": "critical", "error": "high", "warning": "medium", "info": "low"}
V3_EVENTS = {"incident.triggered": "firing", "incident.reopened": "firing", "incident.unacknowledged": "firing",
             "incident.acknowledged": "ack", "incident.resolved": "resolved"}
PRIORITY = {"p1": "critical", "p2": "high", "p3": "medium", "p4": "low", "p5": "low"}
URGENCY = {"high": "high", "low": "low"}


def looks_like(payload: Any) -> bool:
    return is_v3(payload) or is_v2(payload)


def is_v2(payload: Any) -> bool:
    return isinstance(payload, dict) and "event_action" in payload and ("routing_key" in payload or "dedup_key" in payload)


def is_v3(payload: Any) -> bool:
    event = payload.get("event") if isinstance(payload, dict) else None
    return isinstance(event, dict) and isinstance(event.get("event_type"), str) and "." in event["event_type"]


def normalize(payload: Any) -> list[NormalizedAlert | Ignored]:
    if not isinstance(payload, dict):
        raise NormalizeError("a PagerDuty payload must be a JSON object")
    if is_v3(payload):
        return [_v3(payload)]
    if "event_action" not in payload:
        raise NormalizeError("not a PagerDuty Events API v2 event (event_action) or v3 webhook (event.event_type)",
                             ["event_action"])
    return [_v2(payload)]


def _v2(payload: dict) -> NormalizedAlert:
    action = opt_str(payload, "event_action").lower()
    if action not in ACTIONS:
        raise NormalizeError("must be trigger, acknowledge or resolve", ["event_action"])
    dedup = opt_str(payload, "dedup_key")
    body = payload.get("payload")
    if action != "trigger":
        if not dedup:
            raise NormalizeError(f"{action} needs the dedup_key of the triggered alert", ["dedup_key"])
        body = require_dict(body, ["payload"]) if body is not None else {}
    else:
        body = require_dict(body, ["payload"])
        req_str(body, "summary", ["payload"])
        req_str(body, "source", ["payload"])
        if not opt_str(body, "severity", ["payload"]):
            raise NormalizeError("is required", ["payload", "severity"])
        if opt_str(body, "severity", ["payload"]).lower() not in SEVERITY:
            raise NormalizeError("must be critical, error, warning or info", ["payload", "severity"])
    summary, source = opt_str(body, "summary", ["payload"]), opt_str(body, "source", ["payload"])
    component = opt_str(body, "component", ["payload"])
    key = f"pagerduty:{dedup}" if dedup else content_key("pagerduty", source, component, summary)
    labels = {k: opt_str(body, k, ["payload"]) for k in ("source", "component", "group", "class") if body.get(k)}
    details = body.get("custom_details")
    if isinstance(details, dict):
        labels.update({f"detail.{k}": v for k, v in details.items() if isinstance(v, (str, int, float, bool))})
    when = parse_time(body.get("timestamp"), ["payload", "timestamp"])
    status = ACTIONS[action]
    return NormalizedAlert(
        source=SOURCE, dedupe_key=key, status=status,
        severity=map_severity(body.get("severity"), SEVERITY, "medium"),
        title=summary or f"PagerDuty {action} for {dedup}", service=component or source, labels=labels,
        raw=payload, starts_at=when, ends_at=when if status == "resolved" else None,
        description=clean(details) if isinstance(details, str) else "")


def _v3(payload: dict) -> NormalizedAlert | Ignored:
    event = payload["event"]
    event_type = clean(event["event_type"])
    if event_type not in V3_EVENTS:
        return Ignored(SOURCE, f"PagerDuty {event_type} events need no action")
    data = require_dict(event.get("data"), ["event", "data"])
    incident_id = req_str(data, "id", ["event", "data"])
    service = data.get("service")
    service_name = opt_str(service, "summary", ["event", "data", "service"]) if isinstance(service, dict) else ""
    priority = data.get("priority")
    priority_name = opt_str(priority, "summary", ["event", "data", "priority"]) if isinstance(priority, dict) else ""
    if priority_name.lower() in PRIORITY:
        severity = PRIORITY[priority_name.lower()]
    else:
        severity = map_severity(data.get("urgency"), URGENCY, "medium")
    labels = {"pagerduty_event": event_type, "pagerduty_incident": incident_id}
    for k in ("urgency", "incident_key", "html_url", "number"):
        if isinstance(data.get(k), (str, int)) and data.get(k) != "":
            labels[k] = data[k]
    if priority_name:
        labels["priority"] = priority_name
    status = V3_EVENTS[event_type]
    when = parse_time(event.get("occurred_at"), ["event", "occurred_at"])
    return NormalizedAlert(
        source=SOURCE, dedupe_key=f"pagerduty:incident:{incident_id}", status=status, severity=severity,
        title=opt_str(data, "title", ["event", "data"]) or opt_str(data, "summary", ["event", "data"])
        or f"PagerDuty incident {incident_id}",
        service=service_name, labels=labels, raw=payload, starts_at=when,
        ends_at=when if status == "resolved" else None)
