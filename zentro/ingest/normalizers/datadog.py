"""Datadog monitor notifications sent by the Webhooks integration.

Datadog's default payload has only ``id``, ``title``, ``body``, ``date``, ``last_updated``,
``event_type`` and ``org``; a useful webhook adds the monitor variables. The fields read here
(any subset, under these names, as Datadog's webhook documentation spells the variables)::

    "id": "$ID", "title": "$EVENT_TITLE", "body": "$EVENT_MSG", "date": "$DATE",
    "last_updated": "$LAST_UPDATED", "event_type": "$EVENT_TYPE",
    "alert_id": "$ALERT_ID", "aggregate": "$AGGREG_KEY",
    "transition": "$ALERT_TRANSITION"  (or "alert_transition"),
    "alert_type": "$ALERT_TYPE", "priority": "$PRIORITY", "alert_priority": "$ALERT_PRIORITY",
    "alert_title": "$ALERT_TITLE", "tags": "$TAGS", "hostname": "$HOSTNAME", "link": "$LINK"

Dedupe key: ``datadog:<aggregate>`` (one per monitor and group), else ``datadog:monitor:<alert_id>``;
a payload with neither cannot be deduplicated and is refused. Resolved when the transition is
"Recovered" or the alert type is "success". Severity: ``alert_priority`` P1 → critical, P2 → high,
P3 → medium, P4/P5 → low; without it ``alert_type`` error → high, warning → medium,
info/success → low. Service: the ``service:`` tag, else the host name is kept as a label only.
"""
from __future__ import annotations

import re
from typing import Any

from zentro.ingest.normalizers.base import (NormalizeError, NormalizedAlert, clean, map_severity, opt_str,
                                            parse_time)

SOURCE = "datadog"
MARKERS = ("alert_transition", "transition", "aggregate", "alert_id", "alert_type", "alert_priority")
PRIORITY = {"p1": "critical", "p2": "high", "p3": "medium", "p4": "low", "p5": "low"}
ALERT_TYPE = {"error": "high", "warning": "medium", "info": "low", "success": "low"}
RESOLVED_TRANSITIONS = {"recovered"}
TITLE_PREFIX = re.compile(r"^\s*\[(?:P\d\]\s*\[)?(?:re-)?(?:triggered|recovered|warn|no data|renotify)[^\]]*\]\s*", re.I)


def looks_like(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    if any(k in payload for k in MARKERS):
        return True
    return "event_type" in payload and ("date" in payload or "last_updated" in payload) and "title" in payload


def parse_tags(value: Any) -> dict:
    """``"env:prod,service:checkout,canary"`` (or a list) → {"env": "prod", "service": "checkout", "canary": ""}."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        parts = value
    else:
        raise NormalizeError("must be a comma-separated string or a list of strings", ["tags"])
    labels: dict[str, str] = {}
    for tag in (p.strip() for p in parts):
        if tag:
            key, _, val = tag.partition(":")
            labels[key] = val
    return labels


def normalize(payload: Any) -> list[NormalizedAlert]:
    if not isinstance(payload, dict):
        raise NormalizeError("a Datadog webhook payload must be a JSON object")
    aggregate, alert_id = opt_str(payload, "aggregate"), opt_str(payload, "alert_id")
    if aggregate:
        key = f"datadog:{aggregate}"
    elif alert_id:
        key = f"datadog:monitor:{alert_id}"
    else:
        raise NormalizeError("a Datadog payload needs aggregate ($AGGREG_KEY) or alert_id ($ALERT_ID) to deduplicate",
                             ["aggregate"])
    transition = opt_str(payload, "alert_transition") or opt_str(payload, "transition")
    alert_type = opt_str(payload, "alert_type").lower()
    resolved = transition.lower() in RESOLVED_TRANSITIONS or alert_type == "success"
    if payload.get("alert_priority"):
        severity = map_severity(payload["alert_priority"], PRIORITY, "medium")
    else:
        severity = map_severity(alert_type or None, ALERT_TYPE, "medium")
    labels = parse_tags(payload.get("tags"))
    hostname = opt_str(payload, "hostname")
    if hostname:
        labels.setdefault("host", hostname)
    for field in ("event_type", "priority", "alert_priority", "alert_type"):
        if payload.get(field):
            labels.setdefault(f"datadog_{field}", opt_str(payload, field))
    if transition:
        labels["datadog_transition"] = transition
    title = opt_str(payload, "alert_title") or TITLE_PREFIX.sub("", opt_str(payload, "title")) or opt_str(payload, "title")
    when = parse_time(payload.get("date"), ["date"]) or parse_time(payload.get("last_updated"), ["last_updated"])
    return [NormalizedAlert(
        source=SOURCE, dedupe_key=key, status="resolved" if resolved else "firing", severity=severity,
        title=title or f"Datadog monitor {alert_id or aggregate}", service=labels.get("service", ""),
        labels=labels, raw=payload, starts_at=when, ends_at=when if resolved else None,
        description=clean(payload.get("body")) if isinstance(payload.get("body"), str) else "")]
